"""What a user can hand us stays within pipeline/limits.py, whatever it is: a bundle's bytes and
members mutated at random, arbitrary input streams, devices and FIFOs where a file is
expected. Each case runs imdb-predict in a child process under a memory limit, and must
end with exit status 0, 1 (lines skipped) or 2, each error one line, no traceback, and
a peak memory within the budget."""
from __future__ import annotations

import io
import json
import time
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline import cli, inference, limits, weightings
from pipeline.commands import predict
from pipeline.params import ModelParams, TrainParams, VectorizeParams, VocabParams
from testbed.limited import predict as predict_command
from testbed.limited import run_limited
from tests.test_predict import built_project

NUM_WORDS = 200
VOCABULARY = [f"word{rank}" for rank in range(1, NUM_WORDS - 3)]
REVIEW = "word1 word2 word3 a wonderful film"
FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def real_bundle(weighting: str = "tfidf") -> bytes:
    rng = np.random.default_rng(0)
    model = ModelParams(
        hidden_layers=1, units=8, activation="relu", optimizer="rmsprop", learning_rate=0.001,
        loss="binary_crossentropy", batch_size=512, seed=1, dropout=0.0, l2=0.0, nb_scaling=False,
    )
    layers = [
        inference.Layer(rng.standard_normal((NUM_WORDS, 8), dtype=np.float32), np.zeros(8, np.float32), "relu"),
        inference.Layer(rng.standard_normal((8, 1), dtype=np.float32), np.zeros(1, np.float32), "sigmoid"),
    ]
    bundle = inference.Bundle(
        VocabParams(NUM_WORDS, 0, (1, 2)), VectorizeParams(weighting), model, TrainParams(4), VOCABULARY, layers,
        idf=np.linspace(1, 3, NUM_WORDS, dtype=np.float32) if weightings.named(weighting).uses_idf else None,
        metrics={"accuracy": 1},
    )
    stream = io.BytesIO()
    inference.write_bundle(stream, bundle)
    return stream.getvalue()


GOOD = real_bundle()


def members_of(data: bytes) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return [(info.filename, archive.read(info)) for info in archive.infolist()]


def zipped(members: list[tuple[str, bytes]]) -> bytes:
    stream = io.BytesIO()
    with zipfile.ZipFile(stream, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members:
            archive.writestr(zipfile.ZipInfo(name), data)
    return stream.getvalue()


def scored_with(tmp_path, data: bytes, *args: str):
    path = tmp_path / "bundle.npz"
    path.write_bytes(data)
    return run_limited(predict_command("--model", str(path), *args, REVIEW))


def test_the_bundle_the_mutations_start_from_scores(tmp_path):
    result = scored_with(tmp_path, GOOD)
    assert result.ended_cleanly() and result.status == 0 and result.stdout.startswith(("positive", "negative"))


@FUZZ
@given(edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255), st.sampled_from("xid")),
                      min_size=1, max_size=8),
       cut=st.one_of(st.none(), st.floats(0, 1)))
def test_a_bundle_with_bytes_flipped_inserted_deleted_or_cut_ends_cleanly(tmp_path, edits, cut):
    data = bytearray(GOOD)
    for where, value, how in edits:
        at = int(where * len(data))
        if how == "x":
            data[at] ^= value or 1
        elif how == "i":
            data[at:at] = bytes([value]) * (1 + value)
        else:
            del data[at : at + 1 + value]
    if cut is not None:
        data = data[: int(cut * len(data))]
    assert scored_with(tmp_path, bytes(data)).ended_cleanly()


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=30,
)


def _mutated_metadata(metadata: dict, path: list[str], value) -> bytes:
    node = metadata
    for key in path[:-1]:
        node = node.setdefault(key, {}) if isinstance(node, dict) else node
    if isinstance(node, dict):
        node[path[-1]] = value
    return json.dumps(metadata, allow_nan=True).encode()


METADATA_KEYS = st.sampled_from([
    ["format_version"], ["activations"], ["params"], ["params", "vocab"], ["params", "vocab", "num_words"],
    ["params", "vocab", "ngram_range"], ["params", "vectorize", "weighting"], ["params", "model", "units"],
    ["params", "model", "hidden_layers"], ["metrics"], ["extra"],
])


@FUZZ
@given(
    member=st.integers(0, 7),
    change=st.one_of(
        st.tuples(st.just("bytes"), st.binary(max_size=300)),
        st.tuples(st.just("metadata"), st.tuples(METADATA_KEYS, JSON_VALUES)),
        st.tuples(st.just("repeat"), st.none()),
        st.tuples(st.just("drop"), st.none()),
        st.tuples(st.just("rename"), st.text(max_size=12)),
        st.tuples(st.just("nest"), st.integers(1, 100_000)),
        st.tuples(st.just("lines"), st.integers(0, 3_000_000)),
    ),
)
def test_a_bundle_with_a_member_replaced_repeated_dropped_or_renamed_ends_cleanly(tmp_path, member, change):
    members = members_of(GOOD)
    name, data = members[member % len(members)]
    how, value = change
    if how == "bytes":
        members[member % len(members)] = (name, value)
    elif how == "metadata":
        metadata = json.loads(dict(members)["metadata.json"])
        members[0] = ("metadata.json", _mutated_metadata(metadata, *value))
    elif how == "repeat":
        members.append((name, data))
    elif how == "drop":
        del members[member % len(members)]
    elif how == "rename":
        members[member % len(members)] = (value or "x", data)
    elif how == "nest":
        members[0] = ("metadata.json", b"[" * value + b"]" * value)
    else:
        members[1] = ("vocabulary.txt", b"\n" * value)
    result = scored_with(tmp_path, zipped(members))
    assert result.ended_cleanly()
    assert result.status in (0, 2)


LINES = st.lists(
    st.one_of(
        st.binary(max_size=200),
        st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
        JSON_VALUES.map(lambda v: json.dumps(v).encode()),
        st.builds(lambda t, i: json.dumps({"text": t, "id": i}).encode(), st.text(max_size=50), JSON_VALUES),
        st.integers(1, 200_000).map(lambda n: b"[" * n + b"]" * n),
        st.integers(1, 3000).map(lambda n: b"\x00\x1b[2J" * n),
    ),
    max_size=12,
)


@FUZZ
@given(lines=LINES, ending=st.sampled_from([b"\n", b"\r\n", b""]), fmt=st.sampled_from(["auto", "lines", "jsonl"]),
       explain=st.booleans())
def test_an_arbitrary_input_stream_ends_cleanly(tmp_path, lines, ending, fmt, explain):
    (tmp_path / "bundle.npz").write_bytes(GOOD)
    args = ["--model", str(tmp_path / "bundle.npz"), "--input-format", fmt, "--max-review-bytes", "4096"]
    result = run_limited(predict_command(*args, *(["--explain"] if explain else [])), stdin=b"\n".join(lines) + ending)
    assert result.ended_cleanly()


def test_an_endless_line_stops_at_the_limit_with_one_line(tmp_path):
    (tmp_path / "bundle.npz").write_bytes(GOOD)
    with open("/dev/zero", "rb") as zeros:
        result = run_limited(predict_command("--model", str(tmp_path / "bundle.npz")), stdin=zeros)
    assert result.ended_cleanly() and result.status == 2
    assert result.stderr == (
        "error: stdin line 1 is longer than 1 MB, the longest review allowed (--max-review-bytes N raises it)\n"
    )
    # the lines before it are scored and printed first; a raised limit lets a long line through
    long_line = b"word1 " * 400_000  # 2.4 MB
    result = run_limited(predict_command("--model", str(tmp_path / "bundle.npz")), stdin=b"word2\n" + long_line)
    assert result.status == 2 and result.stdout.startswith("line 1 ") and "stdin line 2 is longer" in result.stderr
    raised = ("--max-review-bytes", str(3 << 20))
    result = run_limited(predict_command("--model", str(tmp_path / "bundle.npz"), *raised), stdin=long_line)
    assert result.ended_cleanly() and result.status == 0 and len(result.stdout.splitlines()) == 1


def test_an_argument_over_the_limit_is_one_line(tmp_path):
    (tmp_path / "bundle.npz").write_bytes(GOOD)
    result = run_limited(predict_command("--model", str(tmp_path / "bundle.npz"), "--max-review-bytes", "10",
                                         "short", "a review longer than ten bytes"))
    assert result.status == 2 and result.stdout == ""
    assert result.stderr == (
        "error: argument 2 is longer than 10 bytes, the longest review allowed (--max-review-bytes N raises it)\n"
    )


def test_a_deeply_nested_json_line_is_skipped_and_the_others_scored(tmp_path):
    (tmp_path / "bundle.npz").write_bytes(GOOD)
    lines = [json.dumps({"text": "word1"}), "[" * 100_000 + "]" * 100_000, json.dumps({"text": "word2", "id": [[1]]})]
    result = run_limited(predict_command("--model", str(tmp_path / "bundle.npz"), "--json"),
                         stdin="\n".join(lines).encode())
    assert result.status == 1 and [json.loads(line)["line"] for line in result.stdout.splitlines()] == [1, 3]
    assert result.stderr == "error: stdin line 2: invalid JSON: nested deeper than 32 levels; line skipped\n"


def test_a_long_review_with_many_words_is_explained_within_the_budget(tmp_path):
    # every word of the vocabulary, many times over: one occluded copy of the review per word
    (tmp_path / "bundle.npz").write_bytes(GOOD)
    review = " ".join(VOCABULARY * 110)  # under 1 MB, 21,000 words
    result = run_limited(predict_command("--model", str(tmp_path / "bundle.npz"), "--explain"), stdin=review.encode())
    assert result.ended_cleanly() and result.status == 0 and "towards positive" in result.stdout


def test_review_text_reaches_a_terminal_with_its_control_characters_escaped():
    shown = cli.for_terminal("a\x00b\x1b]0;title\x07 \u202egnp.exe\nline two\x9b")
    assert shown == "a\\x00b\\x1b]0;title\\x07 \\u202egnp.exe\nline two\\x9b"
    assert cli.for_terminal("plain text, ümlauts, 日本語\n") == "plain text, ümlauts, 日本語\n"


@pytest.mark.parametrize("value, message", [
    ("[" * 10_000 + "]" * 10_000, "nested deeper than 32 levels"),
    (json.dumps({"a": json.loads("[" * 32 + "]" * 32)}), "nested deeper than 32 levels"),  # 33 levels
    ("[" + "9" * 5000 + "]", "Exceeds the limit (4300 digits)"),
    ("{oops", "Expecting property name enclosed in double quotes (column 2)"),
    (b"\xff", "not UTF-8 (byte 1)"),
])
def test_one_json_reader_refuses_what_it_should_not_take(value, message):
    with pytest.raises(limits.JsonError, match=message.replace("(", r"\(").replace(")", r"\)")):
        limits.parse_json(value)
    assert limits.parse_json(json.dumps([[[[1]]]]), max_depth=4) == [[[[1]]]]
    with pytest.raises(limits.JsonError):
        limits.parse_json(json.dumps([[[[1]]]]), max_depth=3)


# ---------------------------------------------------------------- a refused experiment, as a user meets it


@pytest.fixture(scope="module")
def committed_project(tmp_path_factory):
    project = built_project(tmp_path_factory.mktemp("refused"))
    project.run("git", "add", "-A")
    project.run("git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "a run")
    return project


REFUSED = "error: params.yaml: model.units = 1000000000 is not allowed; expected an integer from 1 to 65,536"


@pytest.mark.e2e
def test_a_refused_experiment_leaves_a_model_that_scores_and_a_workspace_that_comes_back(committed_project):
    project = committed_project
    as_built = project.run("imdb-predict", "A wonderful film").stdout
    for how in (["--temp"], ["--queue"]):  # a copy of the project: the workspace is not touched
        project.dvc("exp", "run", *how, "-S", "model.units=1000000000", check=False)
    project.dvc("queue", "start")
    assert _wait_failed(project)
    assert project.run("git", "status", "--porcelain").stdout == ""
    assert "up to date" in project.dvc("status").stdout

    refused = project.dvc("exp", "run", "-S", "model.units=1000000000", check=False)
    assert refused.returncode != 0 and REFUSED in refused.stdout + refused.stderr
    assert "Traceback" not in refused.stdout + refused.stderr
    # the workspace keeps the bad value and has lost validate's outputs, but the bundle scores as built
    scored = project.run("imdb-predict", "A wonderful film")
    assert scored.stdout == as_built and scored.stderr.startswith("warning: params.yaml is not what")
    # and the README's way back
    project.run("git", "checkout", "params.yaml")
    project.dvc("checkout")
    assert "up to date" in project.dvc("status").stdout
    assert project.run("imdb-predict", "A wonderful film").stderr == ""


def _wait_failed(project, seconds: float = 120) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = project.dvc("queue", "status").stdout
        if "Failed" in status and "Running" not in status and "Queued" not in status:
            return True
        time.sleep(1)
    return False


def test_explain_scores_a_review_too_large_to_explain_and_says_why(tmp_path, capsys, monkeypatch):
    (tmp_path / "bundle.npz").write_bytes(GOOD)
    # "word1": 1 word x (2 terms, with the start, x 8 units + 8 later weights) = 24 multiplications;
    # the other: 4 words x (6 terms, with the start and the out-of-vocabulary pairs, x 8 + 8) = 224
    monkeypatch.setattr(limits, "MAX_EXPLAIN_OPERATIONS", 100)
    with pytest.raises(SystemExit) as stopped:
        predict.cli(["--model", str(tmp_path / "bundle.npz"), "--explain", "word1", "word1 word2 word3 word4"])
    lines = capsys.readouterr().out.splitlines()
    assert stopped.value.code == 0
    assert [line.startswith("  note: not explained") for line in lines] == [False, False, False, False, True]


# ---------------------------------------------------------------- found by attacking the limits


def zip_member_claiming(data: bytes, name: str, size: int) -> bytes:
    """The zip with the central directory's unpacked size of member `name` set to size."""
    entry = data.index(b"PK\x01\x02")
    while data[entry + 46 : entry + 46 + len(name)] != name.encode():
        entry = data.index(b"PK\x01\x02", entry + 1)
    return data[: entry + 24] + size.to_bytes(4, "little") + data[entry + 28 :]


def test_a_member_that_inflates_past_its_claim_is_read_no_further_than_the_claim(tmp_path):
    members = dict(members_of(GOOD))
    stream = io.BytesIO()
    with zipfile.ZipFile(stream, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name), b"\n".join([data] + [b"x" * 4096] * 65536) if name ==
                             "vocabulary.txt" else data, compress_type=zipfile.ZIP_DEFLATED)
    bomb = zip_member_claiming(stream.getvalue(), "vocabulary.txt", len(members["vocabulary.txt"]))
    result = scored_with(tmp_path, bomb)  # 256 MB inflating from a member that claims 1.2 kB
    assert result.ended_cleanly() and result.status == 2 and "Bad CRC-32 for file 'vocabulary.txt'" in result.stderr
    assert result.peak_bytes < 200e6


@pytest.mark.parametrize("compression", [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_compression_a_bundle_never_uses_is_refused_before_anything_is_inflated(tmp_path, compression):
    stream = io.BytesIO()
    with zipfile.ZipFile(stream, "w", compression) as archive:
        for name, data in members_of(GOOD):
            archive.writestr(name, data)
    path = tmp_path / "bundle.npz"
    path.write_bytes(stream.getvalue())
    with pytest.raises(inference.BundleError, match=r"metadata\.json is compressed or encrypted in a way a bundle "):
        inference.read_bundle(path)
    encrypted = bytearray(GOOD)
    at = encrypted.index(b"PK\x01\x02")
    encrypted[at + 8] |= 0x1  # the central directory's "encrypted" flag of the first member
    path.write_bytes(bytes(encrypted))
    with pytest.raises(inference.BundleError, match=r"is compressed or encrypted in a way a bundle never is"):
        inference.read_bundle(path)


def test_zip64_records_are_refused_before_zipfile_reads_their_list_of_members(tmp_path):
    stream = io.BytesIO()
    with zipfile.ZipFile(stream, "w") as archive:
        for name, data in members_of(GOOD):
            archive.writestr(name, data)
    data = stream.getvalue()
    end = data.rindex(b"PK\x05\x06")
    # a zip64 locator before the end record, as zipfile writes one for large archives
    locator = b"PK\x06\x07" + bytes(4) + (end).to_bytes(8, "little") + (1).to_bytes(4, "little")
    path = tmp_path / "bundle.npz"
    path.write_bytes(data[:end] + locator + data[end:])
    with pytest.raises(inference.BundleError, match=r"it has zip64 records, which no bundle needs$"):
        inference.read_bundle(path)


def test_a_model_wide_enough_to_fill_memory_on_a_chunk_is_scored_a_block_of_rows_at_a_time(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    units = limits.MAX_UNITS
    model = ModelParams(
        hidden_layers=1, units=units, activation="relu", optimizer="rmsprop", learning_rate=0.001,
        loss="binary_crossentropy", batch_size=512, seed=1, dropout=0.0, l2=0.0, nb_scaling=False,
    )
    layers = [
        inference.Layer(rng.standard_normal((NUM_WORDS, units), dtype=np.float32), np.zeros(units, np.float32), "relu"),
        inference.Layer(rng.standard_normal((units, 1), dtype=np.float32), np.zeros(1, np.float32), "sigmoid"),
    ]
    wide = inference.Bundle(VocabParams(NUM_WORDS, 0, (1, 1)), VectorizeParams("binary"), model, TrainParams(4),
                            VOCABULARY, layers)
    path = tmp_path / "wide.npz"
    with open(path, "wb") as stream:
        inference.write_bundle(stream, wide)
    # 2,048 reviews at once would take 512 MB per array of activations
    result = run_limited(predict_command("--model", str(path)), stdin=b"word1 word2\n" * 2048)
    assert result.ended_cleanly() and result.status == 0 and len(result.stdout.splitlines()) == 2048
    # and by blocks or whole, the same numbers to the bit
    x = inference.Scorer(wide).features([np.array([1, 4, 5 + i % 50], np.int32) for i in range(300)])
    whole = inference.forward(layers, x)
    monkeypatch.setattr(limits, "FORWARD_ACTIVATIONS", units * 7)
    np.testing.assert_array_equal(inference.forward(layers, x), whole)


def test_errors_on_a_terminal_show_control_characters_escaped(monkeypatch, capsys):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    cli.say("error: \x1b[31mred\x1b]0;title\x07: no such file", terminal)
    assert terminal.getvalue() == "error: \\x1b[31mred\\x1b]0;title\\x07: no such file\n"
    plain = io.StringIO()
    cli.say("error: \x1b[31m", plain)  # a file or a pipe gets the bytes as they are
    assert plain.getvalue() == "error: \x1b[31m\n"


def test_review_bytes_past_what_can_be_tokenized_and_numbers_json_lacks_are_one_line(tmp_path):
    (tmp_path / "bundle.npz").write_bytes(GOOD)
    model = ("--model", str(tmp_path / "bundle.npz"))
    result = run_limited(predict_command(*model, "--max-review-bytes", "1" + "0" * 40, "a film"))
    assert result.status == 2 and result.stderr.startswith("error: argument --max-review-bytes: at most 16,777,216")
    lines = b'{"text": "word1", "id": 1e99999}\n{"text": "word2", "id": NaN}\n{"text": "word3", "id": 7}\n'
    result = run_limited(predict_command(*model, "--json"), stdin=lines)
    assert result.status == 1 and [json.loads(line)["id"] for line in result.stdout.splitlines()] == [7]
    assert result.stderr.splitlines() == [
        "error: stdin line 1: invalid JSON: the number 1e99999 is out of range; line skipped",
        "error: stdin line 2: invalid JSON: NaN is not a JSON number; line skipped",
    ]


def test_the_end_record_is_found_as_zipfile_finds_it_so_its_list_size_is_checked(tmp_path):
    # an end record whose own fields spell "PK\x05\x06" (entries 0x4B50, directory 0x00100605 bytes):
    # searched from the end, that looks like a later record cut short; zipfile takes the last 22 bytes
    record = b"PK\x05\x06" + bytes(4) + (0x4B50).to_bytes(2, "little") * 2 + (0x00100605).to_bytes(4, "little")
    record += bytes(4) + bytes(2)  # the directory's offset, an empty comment
    assert record[10:14] == b"PK\x05\x06" and len(record) == 22
    with pytest.raises(inference.BundleError, match=r"its list of members takes 1,050,117 bytes, more than the 64 kB"):
        inference._check_directory(tmp_path / "b.npz", io.BytesIO(bytes(100) + record))
