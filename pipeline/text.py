"""Tokenizer, vocabulary and the Keras imdb encoding; shared by vocab and predict.

The tokenizer rule (Keras never published how it built its word index; this
matches what can be observed in it):
  1. lowercase;
  2. HTML tags such as `<br />` become a space;
  3. a word is a run of letters and digits, with inner apostrophes kept
     (`everyone's`, `don't`); a typographic apostrophe counts as `'`.
Everything else (punctuation, underscores, quotes at word edges) separates words.
"""
from __future__ import annotations

import re
from collections import Counter
from typing import Iterable, Sequence

START_CHAR = 1
OOV_CHAR = 2
INDEX_FROM = 3

_TAG = re.compile(r"</?[a-z][^<>]*>")
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")


def tokenize(text: str) -> list[str]:
    text = _TAG.sub(" ", text.lower().replace("\u2019", "'"))
    return _WORD.findall(text)


def build_word_index(texts: Iterable[str]) -> dict[str, int]:
    """{word: rank}, rank 1 = most frequent; ties broken by the word itself, so
    the ranking does not depend on the order of the reviews."""
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(tokenize(text))
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return {word: rank for rank, (word, _) in enumerate(ranked, start=1)}


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


def encode(text: str, index_of: dict[str, int]) -> list[int]:
    return [START_CHAR] + [index_of.get(word, OOV_CHAR) for word in tokenize(text)]


def reverse_index(word_index: dict[str, int]) -> dict[int, str]:
    return {rank: word for word, rank in word_index.items()}


def decode(sequence: Sequence[int], reverse_word_index: dict[int, str]) -> str:
    """The chapter's decoding: index - 3 is the rank; `?` for padding, start and OOV."""
    return " ".join(reverse_word_index.get(i - INDEX_FROM, "?") for i in sequence)
