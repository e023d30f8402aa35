"""What the tests and the benchmark build from pipeline.text and pipeline.corpus, and
the pipeline itself does not."""
from __future__ import annotations

from collections.abc import Iterable

from pipeline import corpus


def build_word_index(texts: Iterable[str], ngram_range: tuple[int, int] = (1, 1)) -> dict[str, int]:
    """The word index the vocab stage builds from these reviews."""
    return corpus.rank_terms(corpus.index_corpus(texts, ngram_range))
