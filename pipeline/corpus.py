"""The tokenizer, n-grams, word index and encoding of pipeline.text, for many reviews
at once, in compiled code (Arrow kernels and numpy), with exactly text.py's results.

text.py's rule (`tokenize`, `terms`, `encode`) is the reference; this module
re-implements it so that equality holds by construction, not by luck:

  - Arrow lowercases with utf8proc, Python with its own Unicode tables (another
    Unicode version, and full case mapping: 'İ' → 'i̇', final sigma). Both map one
    code point at a time, except Python's 'Σ' (final sigma depends on the next
    letters), so they agree on a review whose every code point they lowercase the
    same way. Which code points those are is asked of both engines at run time
    (`_tables`), never written down; a review with any other code point ('İ', 'Σ',
    a letter newer than Python's Unicode, anything outside the Basic Multilingual
    Plane) is tokenized by text.tokenize itself.
  - The typographic apostrophe and the tag pattern are plain substring and RE2
    replacements: the tag pattern means the same in RE2 and Python's re.
  - Words are found in numpy on the UTF-8 bytes. A code point is a word character
    when text.WORD_CHAR (Python's own regex) matches it, a table computed at run
    time; text._WORD's matches are then exactly the runs of word characters joined
    by single apostrophes that have a word character on both sides.

The tests check all of it against text.py on arbitrary Unicode text and on every
real review.

A corpus holds each review's words as integer ids. An n-gram is numbered from the
id of its first n - 1 words and the id of its last word, so word pairs, triples
and their counts never exist as strings, except for the pairs kept in the word
index.
"""
from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterable
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline import text
from pipeline.ragged import row_offsets

BMP = 0x10000  # code points below this take 1 to 3 bytes in UTF-8
SURROGATES = range(0xD800, 0xE000)  # never in valid UTF-8
APOSTROPHE = ord("'")


# ---------------------------------------------------------------- which code points are safe


class _Tables(NamedTuple):
    unsafe: str  # an RE2 class of the code points whose reviews go to text.tokenize
    is_word: np.ndarray  # (BMP,) bool: text.WORD_CHAR matches the code point
    ascii_words: list[tuple[int, int]]  # the same for one-byte characters, as ranges (first, last)


_TABLES_LOCK = threading.Lock()  # vocab tokenizes both splits at once: the tables are built once


def _tables() -> _Tables:
    with _TABLES_LOCK:
        return _built_tables()


@functools.cache
def _built_tables() -> _Tables:
    code_points = np.array([c for c in range(BMP) if c not in SURROGATES])
    chars = list(_decode(code_points))
    python_lower = [c.lower() for c in chars]
    arrow_lower = pc.utf8_lower(pa.array(chars, pa.large_string()))
    same_lower = pc.equal(arrow_lower, pa.array(python_lower, pa.large_string())).to_numpy(zero_copy_only=False)
    safe = np.zeros(BMP, bool)
    safe[code_points] = same_lower  # a lowercase the same in both is one code point, in the BMP
    safe[ord("\u03a3")] = False  # Python lowercases it to 'ς' or 'σ' by what follows it
    unsafe = np.flatnonzero(~safe)
    unsafe = unsafe[(unsafe < SURROGATES.start) | (unsafe >= SURROGATES.stop)]
    unsafe_class = "[" + _re2_class(_runs(unsafe)) + f"\\x{{{BMP:x}}}-\\x{{10ffff}}]"
    is_word = _word_chars("".join(chars), code_points, BMP)
    return _Tables(unsafe_class, is_word, _runs(np.flatnonzero(is_word[:128])))


@functools.cache
def _astral_is_word() -> np.ndarray:
    """text.WORD_CHAR for every code point: only words from text.tokenize reach beyond the BMP."""
    code_points = np.arange(BMP, 0x110000)
    return np.concatenate([_tables().is_word, _word_chars(_decode(code_points), code_points, 0x110000)[BMP:]])


def _decode(code_points: np.ndarray) -> str:
    """The string of these code points (no surrogates), without a Python loop."""
    return code_points.astype("<u4").tobytes().decode("utf-32-le")


def _word_chars(chars: str, code_points: np.ndarray, size: int) -> np.ndarray:
    """Which of these code points Python's regex takes for text.WORD_CHAR, as a (size,) table."""
    # every match is one character: replaced by one that is no word character, it changes
    marked = re.sub(text.WORD_CHAR, "\x01", chars)
    is_word = np.zeros(size, bool)
    is_word[code_points] = np.frombuffer(marked.encode("utf-32-le"), "<u4") != code_points
    return is_word


def _runs(code_points: np.ndarray) -> list[tuple[int, int]]:
    """Sorted code points as ranges of consecutive ones, (first, last)."""
    breaks = np.flatnonzero(np.diff(code_points) != 1) + 1
    return [(int(run[0]), int(run[-1])) for run in np.split(code_points, breaks) if len(run)]


def _re2_class(runs: list[tuple[int, int]]) -> str:
    return "".join(f"\\x{{{a:x}}}" if a == b else f"\\x{{{a:x}}}-\\x{{{b:x}}}" for a, b in runs)


# ---------------------------------------------------------------- tokenizing

CHUNK_BYTES = 1 << 20  # text tokenized at a time: the temporaries take ~10 bytes per byte
CHUNK_WORDS = 1 << 20  # words encoded at a time


def as_arrow(texts: Iterable[str] | pa.Array | pa.ChunkedArray) -> tuple[pa.Array, dict[int, str]]:
    """The texts as one Arrow string array, and those Arrow cannot hold (lone surrogates,
    from Python callers), by position: their place in the array is an empty string."""
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    if isinstance(texts, pa.Array):
        if texts.null_count:
            raise ValueError("a review text is missing (null)")
        return texts.cast(pa.large_string()), {}
    texts = list(texts)
    try:
        return pa.array(texts, pa.large_string()), {}
    except (UnicodeEncodeError, pa.ArrowException):
        odd = {row: review for row, review in enumerate(texts) if not _is_utf8(review)}
        clean = ["" if row in odd else review for row, review in enumerate(texts)]
        return pa.array(clean, pa.large_string()), odd


def _is_utf8(review: str) -> bool:
    try:
        review.encode()
    except UnicodeEncodeError:
        return False
    return True


class _Found(NamedTuple):
    """The words found in a chunk of text: word k is data[starts[k]:ends[k]]."""

    data: np.ndarray
    starts: np.ndarray
    ends: np.ndarray


def _word_chunks(texts: Iterable[str] | pa.Array | pa.ChunkedArray) -> Iterable[tuple[np.ndarray, _Found]]:
    """text.tokenize's words, a chunk of reviews at a time: (words per review, the words)."""
    texts, odd = as_arrow(texts)
    by_python = _needs_python(texts)
    by_python[list(odd)] = True

    def python_words(row: int) -> str:
        # text.tokenize's words, a space between them: split again, they are the same words
        return " ".join(text.tokenize(odd[row] if row in odd else texts[row].as_py()))

    offsets, _ = _utf8_buffers(texts)
    for start, stop in _chunks(offsets, CHUNK_BYTES):
        chunk = _prepare(texts.slice(start, stop - start))
        if by_python[start:stop].any():
            rows = start + np.flatnonzero(by_python[start:stop])
            spaced = pa.array([python_words(row) for row in rows.tolist()], pa.large_string())
            chunk = pc.replace_with_mask(chunk, pa.array(by_python[start:stop]), spaced)
        yield _split_words(*_utf8_buffers(chunk))


def _strings(found: _Found, which: np.ndarray) -> pa.Array:
    """These words as Arrow strings."""
    if not len(which):
        return pa.array([], pa.string())
    if len(found.data) >= 2**31:
        raise ValueError("a review of 2 GB or more")
    # The bytes as strings that are, in turn, a word and what lies between it and the next.
    bounds = np.empty(2 * len(found.starts), np.int32)
    bounds[0::2], bounds[1::2] = found.starts, found.ends
    spans = pa.StringArray.from_buffers(len(bounds) - 1, pa.py_buffer(bounds), pa.py_buffer(found.data))
    return spans.take(pa.array((2 * which).astype(np.int32)))


# A word of up to 8 bytes, read as a little-endian integer and cut to its length, is a key
# no other word has: no byte of a word is 0. Integers are numbered several times faster
# than strings, and 93% of the words in the reviews are that short.
_LOW_BYTES = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [2**64 - 1], np.uint64)


def _packed(found: _Found) -> np.ndarray:
    """Each word's key, 0 for the words longer than 8 bytes."""
    padded = np.zeros(len(found.data) + 8, np.uint8)
    padded[: len(found.data)] = found.data
    eight_bytes_at = np.ndarray((len(found.data),), "<u8", padded, 0, (1,))  # at every byte: the 8 from there
    lengths = found.ends - found.starts
    keys = eight_bytes_at[found.starts]
    keys &= _LOW_BYTES[np.minimum(lengths, 8)]
    keys[lengths > 8] = 0
    return keys


def _unpacked(keys: np.ndarray) -> pa.Array:
    """The words of these keys, as Arrow strings."""
    key_bytes = keys.astype("<u8").view(np.uint8).reshape(-1, 8)
    present = key_bytes != 0  # a word's bytes come first, then zeros
    offsets = row_offsets(present.sum(axis=1)).astype(np.int32)
    return pa.StringArray.from_buffers(len(keys), pa.py_buffer(offsets), pa.py_buffer(key_bytes[present]))


def _chunks(offsets: np.ndarray, size: int) -> Iterable[tuple[int, int]]:
    """Consecutive row ranges [start, stop) of about `size` in offsets' units each."""
    rows = len(offsets) - 1
    bounds = np.unique(np.concatenate([[0], np.searchsorted(offsets, np.arange(size, offsets[-1], size)), [rows]]))
    if rows == 0:
        return []
    return zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True)


def _needs_python(texts: pa.Array) -> np.ndarray:
    """Which reviews hold a code point the compiled path does not lowercase as Python does."""
    needs = np.zeros(len(texts), bool)
    other = np.flatnonzero(~pc.string_is_ascii(texts).to_numpy(zero_copy_only=False))
    if len(other):
        needs[other] = pc.match_substring_regex(texts.take(other), _tables().unsafe).to_numpy(zero_copy_only=False)
    return needs


def _prepare(texts: pa.Array) -> pa.Array:
    """Steps 1 and 2 of text.tokenize: lowercase, typographic apostrophe, tags."""
    lowered = pc.utf8_lower(texts)
    lowered = pc.replace_substring_regex(lowered, "\u2019", "'")  # RE2 finds a literal faster
    return pc.replace_substring_regex(lowered, text.TAG.pattern, " ")


def _utf8_buffers(strings: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, bytes) of a large_string array: string i is bytes[offsets[i]:offsets[i + 1]]."""
    _, offsets_buffer, data_buffer = strings.buffers()
    offsets = np.frombuffer(offsets_buffer, np.int64)[strings.offset : strings.offset + len(strings) + 1]
    data = np.frombuffer(data_buffer, np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
    return offsets - offsets[0], data[offsets[0] : offsets[-1]]


def _split_words(offsets: np.ndarray, data: np.ndarray) -> tuple[np.ndarray, _Found]:
    r"""text._WORD's matches in each string, from its UTF-8 bytes.

    A byte belongs to a word when its character is a word character, or when it is an
    apostrophe between two word characters of the same string; a word is a run of such
    bytes within one string. That is what `[^\W_]+(?:'[^\W_]+)*` finds: greedy runs of
    word characters joined by lone inner apostrophes."""
    in_word = _word_bytes(data)
    apostrophes = np.flatnonzero(data == APOSTROPHE)
    string = np.searchsorted(offsets, apostrophes, side="right") - 1
    inside = apostrophes[(apostrophes > offsets[string]) & (apostrophes + 1 < offsets[string + 1])]
    in_word[inside[in_word[inside - 1] & in_word[inside + 1]]] = True

    first = np.empty_like(in_word)  # a word's first byte: a word byte after none
    first[:1] = in_word[:1]
    np.greater(in_word[1:], in_word[:-1], out=first[1:])
    last = np.empty_like(in_word)  # a word's last byte: a word byte before none
    last[-1:] = in_word[-1:]
    np.greater(in_word[:-1], in_word[1:], out=last[:-1])
    # where one string ends in a word and the next starts with one: two words
    between = offsets[1:-1][(offsets[1:-1] > 0) & (offsets[1:-1] < len(data))]
    between = between[in_word[between - 1] & in_word[between]]
    first[between] = True
    last[between - 1] = True
    starts, ends = np.flatnonzero(first), np.flatnonzero(last) + 1
    return np.diff(np.searchsorted(starts, offsets)), _Found(data, starts, ends)


def _word_bytes(data: np.ndarray) -> np.ndarray:
    """Per byte: is its character a word character (text.WORD_CHAR)?"""
    word = np.zeros(len(data), bool)
    for first, last in _tables().ascii_words:
        word |= (data - np.uint8(first)) <= np.uint8(last - first)  # wraps below `first`
    leads = np.flatnonzero(data >= 0xC0)  # the first byte of each multi-byte character
    if not len(leads):
        return word
    sizes = np.where(data[leads] >= 0xF0, 4, np.where(data[leads] >= 0xE0, 3, 2))
    is_word = _tables().is_word if (sizes < 4).all() else _astral_is_word()
    for size in (2, 3, 4):
        at = leads[sizes == size]
        code_point = data[at].astype(np.int32) & (0xFF >> (size + 1))
        for k in range(1, size):
            code_point = (code_point << 6) | (data[at + k] & 0x3F)
        for k in range(size):
            word[at + k] = is_word[code_point]
    return word


# ---------------------------------------------------------------- corpus and n-grams


class Corpus(NamedTuple):
    """Reviews as word ids: review i's words are words[ids[offsets[i]:offsets[i + 1]]]."""

    offsets: np.ndarray  # int64, one more than there are reviews
    ids: np.ndarray  # int32
    words: pa.Array  # each distinct word once
    ngram_range: tuple[int, int]


def index_corpus(texts: Iterable[str] | pa.Array | pa.ChunkedArray, ngram_range: tuple[int, int] = (1, 1)) -> Corpus:
    lengths, keys, long_words = [np.zeros(0, np.int64)], [np.zeros(0, np.uint64)], []
    for chunk_lengths, found in _word_chunks(texts):
        lengths.append(chunk_lengths)
        keys.append(_packed(found))
        long_words.append(_strings(found, np.flatnonzero(keys[-1] == 0)))
    keys = np.concatenate(keys)
    short = keys != 0
    # short words numbered by their keys, then the long ones, each set in one dictionary
    by_key = pc.dictionary_encode(pa.array(keys[short]))
    by_string = pc.dictionary_encode(pa.chunked_array(long_words, pa.string()))
    ids = np.empty(len(keys), np.int32)
    ids[short] = by_key.indices.to_numpy()
    ids[~short] = len(by_key.dictionary) + np.concatenate(
        [np.zeros(0, np.int32)] + [chunk.indices.to_numpy() for chunk in by_string.chunks]
    )
    long_dictionary = by_string.chunk(0).dictionary if by_string.num_chunks else pa.array([], pa.string())
    words = pa.concat_arrays([_unpacked(by_key.dictionary.to_numpy()), long_dictionary])
    return Corpus(row_offsets(np.concatenate(lengths)), ids, words, tuple(ngram_range))


class Level(NamedTuple):
    """The n-grams of one n: where each starts in the corpus, and its id."""

    n: int
    starts: np.ndarray  # flat word position of each n-gram's first word
    ids: np.ndarray  # int32; -1 for an n-gram the lookup does not know


def levels(offsets: np.ndarray, word_ids: np.ndarray, high: int, base: int, number) -> Iterable[Level]:
    """The n-grams for n = 1 to `high`, in corpus order (review i's words are
    word_ids[offsets[i]:offsets[i + 1]]).

    An n-gram is the pair (id of its first n - 1 words, id of its last word), coded as
    prefix * base + word (base > every word id). `number(n, codes)` gives each code its
    id, -1 for an unknown one; a code is -1 when a part of it is unknown."""
    position = np.int32 if len(word_ids) < 2**31 else np.int64
    starts = np.arange(len(word_ids), dtype=position)
    ids = word_ids
    yield Level(1, starts, ids)
    if high < 2:
        return
    review_end = np.repeat(offsets[1:].astype(position), np.diff(offsets))  # per word position
    for n in range(2, high + 1):
        fits = starts + n <= review_end[starts]
        starts, prefix = starts[fits], ids[fits]
        last = word_ids[starts + n - 1]
        codes = np.where((prefix >= 0) & (last >= 0), prefix.astype(np.int64) * base + last, -1)
        del prefix, last, fits
        ids = number(n, codes)
        yield Level(n, starts, ids)


# ---------------------------------------------------------------- word index


class _Counter:
    """Numbers and counts the distinct codes of each level, keeping each id's code to spell
    the n-grams that make it into the word index."""

    def __init__(self, high: int):
        self.high = high
        self.codes: dict[int, np.ndarray] = {}  # per n, the code of each id
        self.counts: dict[int, np.ndarray] = {}  # per n, how often each id occurs

    def __call__(self, n: int, codes: np.ndarray) -> np.ndarray | None:
        if n == self.high:
            # no longer n-gram is built on these: counts suffice, and numpy's unique
            # finds them faster than a hash table without the ids
            self.codes[n], self.counts[n] = np.unique(codes, return_counts=True)
            return None
        encoded = pc.dictionary_encode(pa.array(codes))
        self.codes[n] = encoded.dictionary.to_numpy()
        ids = encoded.indices.to_numpy()
        self.counts[n] = np.bincount(ids, minlength=len(self.codes[n]))
        return ids


def rank_terms(corpus: Corpus) -> dict[str, int]:
    """The word index, {term: rank}: rank 1 = most frequent; ties broken by the term
    itself, so the ranking does not depend on the order of the reviews.

    Multi-word terms seen only once are left out: there are millions of them, and
    they rank below every term seen twice, so no useful num_words reaches them."""
    return rank(term_frequencies(corpus))


def term_frequencies(corpus: Corpus, every_ngram: bool = False) -> pa.Table:
    """How often each term occurs (columns count, term). Multi-word terms seen once are
    left out unless every_ngram: there are millions of them, and a corpus read in parts
    needs them, since a pair seen once in each part is seen twice in all."""
    low, high = corpus.ngram_range
    base = max(len(corpus.words), 1)
    counter = _Counter(high)
    counter.counts[1] = np.bincount(corpus.ids, minlength=len(corpus.words))
    spelled, counted = [pa.array([], pa.large_string())], [np.zeros(0, np.int64)]
    for level in levels(corpus.offsets, corpus.ids, high, base, counter):
        if level.n < low:
            continue
        counts = counter.counts[level.n]
        chosen = np.arange(len(counts)) if level.n == 1 or every_ngram else np.flatnonzero(counts > 1)
        spelled.append(_spell(corpus.words, counter.codes, base, level.n, chosen))
        counted.append(counts[chosen].astype(np.int64))
    return pa.table({"count": pa.array(np.concatenate(counted)), "term": pa.concat_arrays(spelled)})


def merged_counts(tables: list[pa.Table]) -> pa.Table:
    """term_frequencies of several parts of a corpus, added up term by term."""
    summed = pa.concat_tables(tables).group_by("term").aggregate([("count", "sum")])
    return pa.table({"count": summed["count_sum"], "term": summed["term"]})


def rank(counts: pa.Table) -> dict[str, int]:
    """{term: rank} from term counts: by count, descending, then by the term; multi-word
    terms seen once left out."""
    kept = counts.filter(pc.or_(pc.greater(counts["count"], 1), pc.invert(pc.match_substring(counts["term"], " "))))
    # Arrow orders strings by their UTF-8 bytes, which is the order of their code points,
    # as Python compares str.
    order = pc.sort_indices(kept, sort_keys=[("count", "descending"), ("term", "ascending")])
    ranked = kept["term"].take(order).to_pylist()
    return {term: rank for rank, term in enumerate(ranked, start=1)}


def _spell(words: pa.Array, codes: dict[int, np.ndarray], base: int, n: int, ids: np.ndarray) -> pa.Array:
    """The n-grams with these ids as strings, words joined by a space."""
    if n == 1:
        return words.take(pa.array(ids)).cast(pa.large_string())
    prefix, last = np.divmod(codes[n][ids], base)
    space = pa.scalar(" ", pa.large_string())
    return pc.binary_join_element_wise(
        _spell(words, codes, base, n - 1, prefix), _spell(words, codes, base, 1, last), space
    )


# ---------------------------------------------------------------- encoding


class Encoder:
    """text.encode for whole corpora, for one `index_of` and ngram_range."""

    def __init__(self, index_of: dict[str, int], ngram_range: tuple[int, int] = (1, 1)):
        self.low, self.high = ngram_range
        # Every n-word prefix of a term gets an id per n, so a term is found word by
        # word as the corpus's n-grams are built; a prefix that is no term itself is
        # encoded out-of-vocabulary.
        word_ids: dict[str, int] = {}
        prefix_ids: list[dict] = [word_ids] + [{} for _ in range(1, self.high)]
        index: list[dict[int, int]] = [{} for _ in range(self.high)]
        for term, term_index in index_of.items():
            words = term.split(" ")
            if not self.low <= len(words) <= self.high:
                continue  # text.terms never makes such a term
            prefix = -1
            for n, word in enumerate(words, start=1):
                key = word if n == 1 else (prefix, word_ids.setdefault(word, len(word_ids)))
                prefix = prefix_ids[n - 1].setdefault(key, len(prefix_ids[n - 1]))
            index[len(words) - 1][prefix] = term_index
        self.words = pa.array(list(word_ids), pa.string())
        self.base = max(len(word_ids), 1)
        self.codes = [None] + [
            pa.array([prefix * self.base + word for prefix, word in level], pa.int64()) for level in prefix_ids[1:]
        ]
        # index of each id; id -1 (unknown) reads the last entry, out-of-vocabulary
        self.index = []
        for n in range(1, self.high + 1):
            by_id = np.full(len(prefix_ids[n - 1]) + 1, text.OOV_CHAR, np.int32)
            by_id[list(index[n - 1])] = list(index[n - 1].values())
            self.index.append(by_id)

    def encode_texts(self, texts: Iterable[str] | pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
        return self.encode_corpus(index_corpus(texts, (self.low, self.high)))

    def encode_corpus(self, corpus: Corpus) -> tuple[np.ndarray, np.ndarray]:
        """Every review as text.encode gives it: (offsets, indices) of one flat array."""
        # the corpus's words as the encoder's word ids, -1 for those no term has
        word_ids = self._ids(pc.index_in(corpus.words, value_set=self.words))
        lengths, indices = [], []
        for first, stop in _chunks(corpus.offsets, CHUNK_WORDS):
            offsets = corpus.offsets[first : stop + 1]
            chunk_ids = word_ids[corpus.ids[offsets[0] : offsets[-1]]]
            chunk_lengths, chunk_indices = self._encode(offsets - offsets[0], chunk_ids)
            lengths.append(chunk_lengths)
            indices.append(chunk_indices)
        lengths = np.concatenate([np.zeros(0, np.int64)] + lengths)
        return row_offsets(lengths), np.concatenate([np.zeros(0, np.int32)] + indices)

    def _encode(self, offsets: np.ndarray, word_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lengths = np.diff(offsets)
        per_level = [np.maximum(lengths - n + 1, 0) for n in range(1, self.high + 1)]
        out_offsets = row_offsets(1 + sum(per_level[n - 1] for n in range(self.low, self.high + 1)))
        indices = np.empty(out_offsets[-1], np.int32)
        indices[out_offsets[:-1]] = text.START_CHAR
        # in each review, after the start marker: its n-grams for n = low, then low + 1, …
        shift = out_offsets[:-1] + 1 - offsets[:-1]  # output position - word position
        review_of = np.repeat(np.arange(len(lengths)), lengths)  # per word position
        for level in levels(offsets, word_ids, self.high, self.base, self._lookup):
            if level.n < self.low:
                continue
            indices[level.starts + shift[review_of[level.starts]]] = self.index[level.n - 1][level.ids]
            shift = shift + per_level[level.n - 1]
        return np.diff(out_offsets), indices

    def _lookup(self, n: int, codes: np.ndarray) -> np.ndarray:
        return self._ids(pc.index_in(pa.array(codes), value_set=self.codes[n - 1]))

    @staticmethod
    def _ids(found: pa.Array) -> np.ndarray:
        return pc.fill_null(found, -1).to_numpy().astype(np.int32)
