"""Tokenizer, vocabulary and the Keras imdb encoding; shared by vocab and predict.
One review at a time: pipeline.corpus does the same for many at once, in compiled code.

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

import itertools
import re
from collections.abc import Sequence

from pipeline.params import INDEX_FROM

START_CHAR = 1
OOV_CHAR = 2

TAG = re.compile(r"</?[a-z][^<>]*>")
WORD_CHAR = r"[^\W_]"  # a letter or digit of any script: \w without the underscore
_WORD = re.compile(rf"{WORD_CHAR}+(?:'{WORD_CHAR}+)*")


# For ASCII text, the rule's words in a fifth of the regex's time: an apostrophe not between
# two letters or digits is a separator, as is every character but a letter, a digit or an apostrophe
_EDGE_APOSTROPHE = re.compile(r"'(?:(?<![a-z0-9]')|(?![a-z0-9]))")
_ASCII_SEPARATORS = bytes(byte if chr(byte).isalnum() or chr(byte) == "'" else ord(" ") for byte in range(256))


def _prepared(text: str) -> str:
    """Steps 1 and 2 of the rule: lowercase (a typographic apostrophe as `'`), tags as spaces."""
    return TAG.sub(" ", text.lower().replace("\u2019", "'"))


def tokenize(text: str) -> list[str]:
    text = _prepared(text)
    if not text.isascii():
        return _WORD.findall(text)
    if "'" in text:
        text = _EDGE_APOSTROPHE.sub(" ", text)
    return text.encode().translate(_ASCII_SEPARATORS).decode().split()


def words_by_rule(text: str) -> list[str]:
    """tokenize's words, found by the rule's regular expression alone."""
    return _WORD.findall(_prepared(text))


def terms(text: str, ngram_range: tuple[int, int] = (1, 1)) -> list[str]:
    words = tokenize(text)
    low, high = ngram_range
    if (low, high) == (1, 1):
        return words
    return [" ".join(words[i : i + n]) for n in range(low, high + 1) for i in range(len(words) - n + 1)]


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
    found = terms(text, ngram_range)
    return [START_CHAR, *map(index_of.get, found, itertools.repeat(OOV_CHAR, len(found)))]


def reverse_index(word_index: dict[str, int]) -> dict[int, str]:
    return {rank: word for word, rank in word_index.items()}


def decode(sequence: Sequence[int], reverse_word_index: dict[int, str]) -> str:
    """The chapter's decoding: index - 3 is the rank; `?` for padding, start and OOV."""
    return " ".join(reverse_word_index.get(i - INDEX_FROM, "?") for i in sequence)
