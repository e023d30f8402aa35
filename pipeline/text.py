"""Tokenizer, vocabulary and the Keras imdb encoding; shared by vocab and predict.

The tokenizer rule (Keras never published how it built its word index; this
matches what can be observed in it):
  1. lowercase;
  2. HTML tags such as `<br />` become a space;
  3. a word is a run of letters and digits, with inner apostrophes kept
     (`everyone's`, `don't`); a typographic apostrophe counts as `'`.
Everything else (punctuation, underscores, quotes at word edges) separates words.

With an ngram_range other than (1, 1), a review's terms are its n-grams for each n
in the range, words joined by a space (`not good`), in order: all unigrams, then
all bigrams, and so on.
"""
from __future__ import annotations

import re
from array import array
from collections import defaultdict
from collections.abc import Iterable, Sequence
from itertools import count
from typing import NamedTuple

import numpy as np

from pipeline.features import row_offsets
from pipeline.params import INDEX_FROM

START_CHAR = 1
OOV_CHAR = 2

_TAG = re.compile(r"</?[a-z][^<>]*>")
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")


def tokenize(text: str) -> list[str]:
    text = _TAG.sub(" ", text.lower().replace("\u2019", "'"))
    return _WORD.findall(text)


def terms(text: str, ngram_range: tuple[int, int] = (1, 1)) -> list[str]:
    words = tokenize(text)
    low, high = ngram_range
    if (low, high) == (1, 1):
        return words
    return [" ".join(words[i : i + n]) for n in range(low, high + 1) for i in range(len(words) - n + 1)]


class Corpus(NamedTuple):
    """Reviews as term ids; ids number the terms in order of first appearance."""

    offsets: np.ndarray  # review i is ids[offsets[i]:offsets[i + 1]]
    ids: np.ndarray
    terms: list[str]  # the term of each id


def index_corpus(texts: Iterable[str], ngram_range: tuple[int, int] = (1, 1)) -> Corpus:
    """Tokenizes every review once; counting and encoding then work on integer arrays."""
    id_of: defaultdict[str, int] = defaultdict(count().__next__)  # a new term gets the next id
    ids = array("i")
    lengths = array("q")
    for text in texts:
        review = [id_of[term] for term in terms(text, ngram_range)]
        ids.extend(review)
        lengths.append(len(review))
    return Corpus(row_offsets(np.frombuffer(lengths, np.int64)), np.frombuffer(ids, np.int32), list(id_of))


def rank_terms(corpus: Corpus) -> dict[str, int]:
    """{term: rank}, rank 1 = most frequent; ties broken by the term itself, so
    the ranking does not depend on the order of the reviews.

    Multi-word terms seen only once are left out: there are millions of them, and
    they rank below every term seen twice, so no useful num_words reaches them.
    """
    counts = np.bincount(corpus.ids, minlength=len(corpus.terms)).tolist()
    kept = [(term, n) for term, n in zip(corpus.terms, counts, strict=True) if n > 1 or " " not in term]
    ranked = sorted(kept, key=lambda item: (-item[1], item[0]))
    return {term: rank for rank, (term, _) in enumerate(ranked, start=1)}


def build_word_index(texts: Iterable[str], ngram_range: tuple[int, int] = (1, 1)) -> dict[str, int]:
    return rank_terms(index_corpus(texts, ngram_range))


def encode_corpus(corpus: Corpus, index_of: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """Every review encoded as `encode` does, as (offsets, indices) of one flat array."""
    lookup = np.fromiter((index_of.get(term, OOV_CHAR) for term in corpus.terms), np.int32, len(corpus.terms))
    offsets = corpus.offsets + np.arange(len(corpus.offsets))  # room for each review's start marker
    indices = np.empty(offsets[-1], np.int32)
    is_start = np.zeros(offsets[-1], bool)
    is_start[offsets[:-1]] = True
    indices[is_start] = START_CHAR
    indices[~is_start] = lookup[corpus.ids]
    return offsets, indices


def word_to_index(word_index: dict[str, int], num_words: int, skip_top: int = 0) -> dict[str, int]:
    """The index each kept word is encoded as (rank + 3).

    Kept: index < num_words, so the largest index is num_words - 1, and rank > skip_top
    (the `skip_top` most frequent words become out-of-vocabulary, as Keras documents it;
    unlike Keras's code, the start marker is never replaced).
    """
    return {
        word: rank + INDEX_FROM
        for word, rank in word_index.items()
        if rank > skip_top and rank + INDEX_FROM < num_words
    }


def encode(text: str, index_of: dict[str, int], ngram_range: tuple[int, int] = (1, 1)) -> list[int]:
    return [START_CHAR] + [index_of.get(term, OOV_CHAR) for term in terms(text, ngram_range)]


def encode_texts(
    texts: Iterable[str], index_of: dict[str, int], ngram_range: tuple[int, int] = (1, 1)
) -> tuple[np.ndarray, np.ndarray]:
    """Each review encoded with `encode`, as (offsets, indices) of one flat array."""
    indices = array("i")
    lengths = array("q")
    for text in texts:
        review = encode(text, index_of, ngram_range)
        indices.extend(review)
        lengths.append(len(review))
    return row_offsets(np.frombuffer(lengths, np.int64)), np.frombuffer(indices, np.int32)


def reverse_index(word_index: dict[str, int]) -> dict[int, str]:
    return {rank: word for word, rank in word_index.items()}


def decode(sequence: Sequence[int], reverse_word_index: dict[int, str]) -> str:
    """The chapter's decoding: index - 3 is the rank; `?` for padding, start and OOV."""
    return " ".join(reverse_word_index.get(i - INDEX_FROM, "?") for i in sequence)
