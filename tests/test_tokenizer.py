"""The compiled tokenizer (pipeline.corpus) against the reference rule in pipeline.text.

text.tokenize, text.terms and text.encode are the reference; every batch result must be
exactly theirs, on arbitrary Unicode text and on every real review."""
import os
import re
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline import corpus, text
from testbed.archives import read_archive
from testbed.text import build_word_index

ARCHIVE = os.environ.get("IMDB_ARCHIVE")

# Characters where Python and Arrow (utf8proc) part ways, or where the rule has an edge:
# 'İ' lowercases to two code points, 'Σ' by what follows it, U+A7CB is newer than
# Python's Unicode, combining marks are no word characters, KELVIN SIGN lowercases to 'k'.
TRICKY = list(
    "aZ09_'\u2019 \t\n<>/!.-,\"ßİıΣσςǅǄ\u0301\u0307\u00a0\u2028\u212a\ua7cb\u1c89"
    "\U0001d400\U0001f600é\u00c9日本\u0663\u00b2\u2167"
) + ["<br />", "</i>", "<a href='x'>", "<B>", "don't", "''", "'s", "\u2019s", "Σ ", "AΣ", "AΣB"]

unicode_text = st.text(st.characters(exclude_categories=()), max_size=60)  # every category, surrogates too
tricky_text = st.lists(st.sampled_from(TRICKY), max_size=25).map("".join)
reviews = st.lists(st.one_of(unicode_text, tricky_text, st.text(max_size=80)), max_size=8)
ngram_ranges = st.sampled_from([(1, 1), (1, 2), (2, 2), (2, 3), (1, 3)])
settle = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


def reference_word_index(texts, ngram_range=(1, 1)):
    """The word index counted with a Counter of text.terms, as the compiled corpus.rank_terms must."""
    counts = Counter(term for review in texts for term in text.terms(review, ngram_range))
    kept = [(term, n) for term, n in counts.items() if n > 1 or " " not in term]
    ranked = sorted(kept, key=lambda item: (-item[1], item[0]))
    return {term: rank for rank, (term, _) in enumerate(ranked, start=1)}


def batch_tokens(texts):
    """Each review's words as the compiled tokenizer finds them."""
    tokens = []
    for lengths, found in corpus._word_chunks(texts):
        words = corpus._strings(found, np.arange(len(found.starts))).to_pylist()
        bounds = np.concatenate([[0], np.cumsum(lengths)])
        tokens += [words[bounds[i] : bounds[i + 1]] for i in range(len(lengths))]
    return tokens


def compiled_fraction(texts):
    """The share of reviews the compiled tokenizer handles without text.tokenize's help."""
    texts, odd = corpus.as_arrow(texts)
    by_python = corpus._needs_python(texts)
    by_python[list(odd)] = True
    return 1 - float(by_python.mean()) if len(texts) else 1.0


def batch_encoded(texts, index_of, ngram_range):
    offsets, indices = corpus.Encoder(index_of, ngram_range).encode_texts(texts)
    return [indices[offsets[i] : offsets[i + 1]].tolist() for i in range(len(offsets) - 1)]


@settle
@given(reviews)
def test_batch_tokens_equal_the_reference_tokenizer(texts):
    assert batch_tokens(texts) == [text.tokenize(review) for review in texts]


@settle
@given(reviews, ngram_ranges)
def test_batch_word_index_equals_the_reference_counting(texts, ngram_range):
    # twice the reviews: multi-word terms seen more than once make it into the index
    texts = texts + texts[: len(texts) // 2]
    assert build_word_index(texts, ngram_range) == reference_word_index(texts, ngram_range)


@settle
@given(reviews, reviews, ngram_ranges, st.integers(min_value=4, max_value=40), st.integers(min_value=0, max_value=3))
def test_batch_encoding_equals_encoding_each_review(train, test, ngram_range, num_words, skip_top):
    word_index = reference_word_index(train + train, ngram_range)
    index_of = text.word_to_index(word_index, num_words, min(skip_top, max(num_words - 5, 0)))
    for texts in (train, test):
        assert batch_encoded(texts, index_of, ngram_range) == [text.encode(r, index_of, ngram_range) for r in texts]


@settle
@given(reviews, st.dictionaries(st.one_of(st.text(max_size=12), tricky_text), st.integers(3, 50), max_size=12))
def test_encoding_with_terms_text_never_makes_encodes_them_as_text_does(texts, index_of):
    # terms with capitals, double spaces, edge spaces, four words, nothing at all
    index_of = {**index_of, "A": 5, "a  b": 6, " a": 7, "a b c d": 8, "": 9}
    for ngram_range in ((1, 1), (1, 3), (2, 3)):
        assert batch_encoded(texts, index_of, ngram_range) == [text.encode(r, index_of, ngram_range) for r in texts]


def test_every_code_point_tokenizes_as_the_reference_does():
    # each code point beside itself, inside a word, around an apostrophe, after a capital
    # sigma, in a tag: all of the BMP, where the compiled path works, and a sample beyond
    code_points = [c for c in range(0x10000) if not 0xD800 <= c < 0xE000] + list(range(0x10000, 0x110000, 17))
    reviews = [f"{chr(c)}x{chr(c)}{chr(c)}'{chr(c)} Σ{chr(c)} <b{chr(c)}>A{chr(c)}" for c in code_points]
    assert batch_tokens(reviews) == [text.tokenize(review) for review in reviews]


def test_word_character_table_is_pythons_regex_for_every_code_point():
    table = corpus._astral_is_word()
    word_char = re.compile(text.WORD_CHAR)
    expected = np.array([c not in range(0xD800, 0xE000) and bool(word_char.fullmatch(chr(c))) for c in range(0x110000)])
    assert np.array_equal(table, expected)


def test_the_reviews_arrow_lowercases_differently_go_to_python():
    # 'İ' → 'i̇' in Python, 'i' in Arrow; 'Σ' depends on what follows; astral code points
    # are beyond the table; plain ASCII and Latin-1 stay compiled
    texts = ["İstanbul", "ΟΔΟΣ ΟΔΟΣ.", "x\U0001d400", "Plain text", "Amélie était là"]
    assert corpus._needs_python(pa.array(texts, pa.large_string())).tolist() == [True, True, True, False, False]
    assert batch_tokens(texts) == [text.tokenize(review) for review in texts]


def test_lone_surrogates_are_tokenized_by_python():
    texts = ["ok \ud800 fine", "plain"]
    assert batch_tokens(texts) == [text.tokenize(review) for review in texts]


def test_reviews_spanning_several_chunks_keep_their_order(monkeypatch):
    monkeypatch.setattr(corpus, "CHUNK_BYTES", 16)
    monkeypatch.setattr(corpus, "CHUNK_WORDS", 3)
    texts = ["one two three", "", "four<br />five's six", "İ seven", "eight", "nine ten eleven twelve thirteen"]
    assert batch_tokens(texts) == [text.tokenize(review) for review in texts]
    index_of = text.word_to_index(reference_word_index(texts * 2, (1, 2)), 40)
    assert batch_encoded(texts, index_of, (1, 2)) == [text.encode(r, index_of, (1, 2)) for r in texts]


def test_an_arrow_column_tokenizes_like_a_list_of_strings():
    texts = ["A <i>fine</i> film", "Don\u2019t", "", "ΑΣ"]
    column = pa.chunked_array([pa.array(texts[:2]), pa.array(texts[2:])])
    assert batch_tokens(column) == batch_tokens(texts) == [text.tokenize(review) for review in texts]


def test_scoring_one_review_does_not_load_arrow_compute():
    import subprocess

    check = "import sys, pipeline.inference; sys.exit('pyarrow.compute' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", check], cwd=Path(__file__).resolve().parents[1]).returncode == 0


@pytest.mark.realdata
@pytest.mark.skipif(not ARCHIVE, reason="set IMDB_ARCHIVE to a copy of aclImdb_v1.tar.gz to run on the real reviews")
def test_every_real_review_tokenizes_as_the_reference_does():
    texts = [review.text for review in read_archive(Path(ARCHIVE)).reviews]
    assert len(texts) == 50_000
    for start in range(0, len(texts), 5000):  # a slice at a time: every word as a str is a lot
        some = texts[start : start + 5000]
        tokens = [text.tokenize(review) for review in some]
        assert batch_tokens(some) == tokens
        assert tokens == [text.words_by_rule(review) for review in some]
    # nearly every real review takes the compiled path from start to end
    assert compiled_fraction(texts) > 0.99
