from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from pipeline import corpus, text
from testbed.text import build_word_index


def test_tokenize_lowercases_drops_tags_and_keeps_inner_apostrophes():
    review = "This film's GREAT.<br /><br />Everyone's 'favourite' <i>must-see</i>, isn\u2019t it?"
    assert text.tokenize(review) == [
        "this", "film's", "great", "everyone's", "favourite", "must", "see", "isn't", "it",
    ]


def test_tokenize_keeps_letters_of_any_script_and_digits():
    assert text.tokenize("Amélie (2001) était 最高") == ["amélie", "2001", "était", "最高"]


def test_tokenize_splits_on_underscores_and_edge_apostrophes():
    assert text.tokenize("snake_case 'quoted' rock'n'roll") == ["snake", "case", "quoted", "rock'n'roll"]


def test_word_index_ranks_by_frequency_then_word():
    word_index = build_word_index(["b a c", "a b", "a d"])
    assert word_index == {"a": 1, "b": 2, "c": 3, "d": 4}


def test_word_index_does_not_depend_on_review_order():
    reviews = ["the cat sat", "a dog sat", "the end"]
    assert build_word_index(reviews) == build_word_index(reversed(reviews))


def test_encoding_follows_keras_conventions():
    word_index = {"the": 1, "movie": 2, "great": 3, "rare": 4}
    index_of = text.word_to_index(word_index, num_words=6)
    # rank + 3; with num_words=6 only indices 4 and 5 (ranks 1 and 2) are kept
    assert text.encode("The movie great rare unseen", index_of) == [1, 4, 5, 2, 2, 2]


def test_largest_index_is_num_words_minus_one():
    word_index = {f"w{rank}": rank for rank in range(1, 100)}
    index_of = text.word_to_index(word_index, num_words=50)
    assert max(index_of.values()) == 49
    assert min(index_of.values()) == 4


def test_skip_top_turns_the_most_frequent_words_out_of_vocabulary():
    word_index = {"the": 1, "and": 2, "great": 3}
    index_of = text.word_to_index(word_index, num_words=100, skip_top=2)
    assert text.encode("the and great", index_of) == [text.START_CHAR, 2, 2, 6]


def test_decode_gives_back_the_words_with_question_marks_for_markers():
    word_index = build_word_index(["this film was just brilliant", "this film"])
    index_of = text.word_to_index(word_index, num_words=10000)
    sequence = text.encode("This film was just brilliant, unknownword!", index_of)
    decoded = text.decode(sequence, text.reverse_index(word_index))
    assert decoded == "? this film was just brilliant ?"


@given(st.text())
def test_tokens_are_words_and_tokenizing_them_again_changes_nothing(review):
    tokens = text.tokenize(review)
    for token in tokens:
        assert token and not any(c.isspace() or c == "_" for c in token)
        assert not token.startswith("'") and not token.endswith("'")
    assert text.tokenize(" ".join(tokens)) == tokens


@given(st.lists(st.text(max_size=40), max_size=8), st.integers(min_value=4, max_value=30))
def test_every_encoded_index_is_a_marker_or_a_kept_rank(reviews, num_words):
    word_index = build_word_index(reviews)
    index_of = text.word_to_index(word_index, num_words)
    for review in reviews:
        sequence = text.encode(review, index_of)
        assert sequence[0] == text.START_CHAR
        assert len(sequence) == len(text.tokenize(review)) + 1
        assert all(i == text.OOV_CHAR or 4 <= i < num_words for i in sequence[1:])


def test_terms_add_word_pairs_after_the_words():
    assert text.terms("Not good, not bad", (1, 2)) == ["not", "good", "not", "bad", "not good", "good not", "not bad"]
    assert text.terms("Not good, not bad", (2, 3)) == [
        "not good",
        "good not",
        "not bad",
        "not good not",
        "good not bad",
    ]
    assert text.terms("Not good", (1, 1)) == text.tokenize("Not good")


def test_word_pairs_seen_once_are_left_out_but_single_words_are_kept():
    word_index = build_word_index(["not good at all", "not good"], (1, 2))
    assert "not good" in word_index and "good at" not in word_index
    assert "all" in word_index and "at" in word_index
    assert word_index["not good"] < word_index["all"]  # seen twice ranks before seen once


def test_encoding_with_word_pairs_appends_their_indices():
    word_index = build_word_index(["not good", "not good"], (1, 2))
    index_of = text.word_to_index(word_index, num_words=100)
    encoded = text.encode("Not good at all", index_of, (1, 2))
    # terms: not, good, at, all, "not good", "good at", "at all"; only three are known
    assert encoded == [1, index_of["not"], index_of["good"], 2, 2, index_of["not good"], 2, 2]


@given(st.text(), st.integers(min_value=4, max_value=60))
def test_decoding_an_encoded_review_gives_back_its_kept_words(review, num_words):
    word_index = build_word_index([review])
    index_of = text.word_to_index(word_index, num_words)
    decoded = text.decode(text.encode(review, index_of), text.reverse_index(word_index))
    kept = [word if word in index_of else "?" for word in text.tokenize(review)]
    assert decoded == " ".join(["?"] + kept)


@given(st.lists(st.text(max_size=30), max_size=8), st.randoms(use_true_random=False))
def test_word_ranks_are_consecutive_by_frequency_whatever_the_review_order(reviews, rng):
    word_index = build_word_index(reviews)
    shuffled = list(reviews)
    rng.shuffle(shuffled)
    assert build_word_index(shuffled) == word_index
    assert sorted(word_index.values()) == list(range(1, len(word_index) + 1))
    counts = Counter(word for review in reviews for word in text.tokenize(review))
    by_rank = sorted(word_index, key=word_index.get)
    assert [counts[word] for word in by_rank] == sorted(counts.values(), reverse=True)


@given(
    st.lists(st.text(alphabet=st.sampled_from("ab c'<>Dé\u2019"), max_size=30), max_size=6),
    st.lists(st.text(alphabet=st.sampled_from("ab c'<>Dé\u2019"), max_size=30), max_size=6),
    st.sampled_from([(1, 1), (1, 2), (2, 3)]),
    st.integers(min_value=4, max_value=12),
)
def test_encoding_a_whole_corpus_equals_encoding_each_review(train, test, ngram_range, num_words):
    indexed_train = corpus.index_corpus(train, ngram_range)
    index_of = text.word_to_index(corpus.rank_terms(indexed_train), num_words)
    encoder = corpus.Encoder(index_of, ngram_range)
    for reviews, indexed in ((train, indexed_train), (test, corpus.index_corpus(test, ngram_range))):
        offsets, indices = encoder.encode_corpus(indexed)
        encoded = [indices[offsets[i] : offsets[i + 1]].tolist() for i in range(len(reviews))]
        assert encoded == [text.encode(review, index_of, ngram_range) for review in reviews]


@given(st.text(st.sampled_from("aZ09_'\u2019 \t<>/b-.é\x0b\x1c"), max_size=40))
def test_the_ascii_route_finds_the_rules_words(review):
    # tokenize takes ASCII text another way, several times faster than the regular expression
    assert text.tokenize(review) == text.words_by_rule(review)
