"""imdb-predict: new reviews scored with the vocabulary and model a small pipeline built.

The pipeline is built once for the module (`dvc repro` on a generated archive, in a
fresh repository); each test then runs the command in that project, in process
(`predict.cli`) or as the installed console script.
"""
import collections
import dataclasses
import hashlib
import io
import json
import os
import pty
import select
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from pipeline import inference
from pipeline.commands import predict
from pipeline.params import load_params
from pipeline.stages import evaluate
from testbed.archives import official_extras, review_members, write_archive
from testbed.project import make_project
from tests.test_pipeline import PER_FOLDER, SMALL

ROOT = Path(__file__).resolve().parents[1]

# Every sentiment word of the generated reviews is in the vocabulary (34 words), and the
# model is trained long enough to tell them apart (test accuracy 0.95).
PREDICT_PARAMS = {
    **SMALL,
    "vocab": {"num_words": 40},
    "model": {"batch_size": 16, "learning_rate": 0.01},
    "train": {"epochs": 10},
}
GOOD = "A wonderful film. Brilliant!"
BAD = "Boring and awful, the plot was a mess"
NO_KNOWN_WORD = "Xyzzy 🎬 ☃"


def built_project(root: Path, **changes):
    """The small pipeline the scoring tests use, run: generated reviews, PREDICT_PARAMS and changes."""
    archive = write_archive(root / "aclImdb_v1.tar.gz", {**review_members(PER_FOLDER, seed=5), **official_extras()})
    project = make_project(root / "project", archive, **{**PREDICT_PARAMS, **changes})
    project.repro()
    return project


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return built_project(tmp_path_factory.mktemp("predict"))


@pytest.fixture(scope="module")
def improved_project(tmp_path_factory):
    """The same reviews through every non-default feature: word pairs, TF-IDF, NB scaling."""
    return built_project(
        tmp_path_factory.mktemp("predict-improved"),
        vocab={"num_words": 300, "ngram_range": [1, 2]},
        vectorize={"weighting": "tfidf"},
        model={**PREDICT_PARAMS["model"], "nb_scaling": True},
    )


@pytest.fixture
def in_project(project, monkeypatch):
    monkeypatch.chdir(project.path)
    return project


def call(capsys, *argv, stdin: bytes | None = None, monkeypatch=None):
    """Runs the command in process: (exit status, stdout, stderr)."""
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8"))
    with pytest.raises(SystemExit) as stopped:
        predict.cli(list(argv))
    out, err = capsys.readouterr()
    return stopped.value.code, out, err


def records(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines()]


def write(path, text: str | bytes):
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return str(path)


# ---------------------------------------------------------------- scoring


@pytest.mark.e2e
def test_reviews_given_as_arguments_get_a_probability_and_a_label(in_project, capsys):
    status, out, err = call(capsys, GOOD, BAD)
    assert status == 0 and err == ""
    good, bad = out.splitlines()
    assert good.startswith("positive  0.") and good.endswith(GOOD)
    assert bad.startswith("negative  0.") and bad.endswith(BAD)
    assert float(good.split()[1]) > 0.8 and float(bad.split()[1]) < 0.2


@pytest.mark.e2e
def test_a_file_stdin_and_arguments_give_the_same_scores(in_project, capsys, monkeypatch, tmp_path):
    status, out, _ = call(capsys, "--json", GOOD, BAD)
    assert status == 0
    from_arguments = records(out)
    assert [r["arg"] for r in from_arguments] == [1, 2]
    assert [r["label"] for r in from_arguments] == ["positive", "negative"]

    lines = f"{GOOD}\n\n   \n{BAD}\r\n"  # blank lines are not reviews; CRLF is a line end
    reviews = write(tmp_path / "reviews.txt", lines)
    for argv, stdin in [(["--file", reviews], None), ([], lines.encode()), (["--file", "-"], lines.encode())]:
        status, out, err = call(capsys, "--json", *argv, stdin=stdin, monkeypatch=monkeypatch)
        assert status == 0 and err == ""
        scored = records(out)
        assert [r["line"] for r in scored] == [1, 4]
        assert [r["probability"] for r in scored] == [r["probability"] for r in from_arguments]

    status, out, _ = call(capsys, "--file", reviews)
    assert out.splitlines()[0].startswith("line 1  positive  ")
    assert out.splitlines()[1].startswith("line 4  negative  ")


@pytest.mark.e2e
def test_json_lines_input_is_read_by_its_text_field_and_echoes_ids(in_project, capsys, monkeypatch, tmp_path):
    lines = "\n".join(json.dumps(r) for r in [{"id": "a1", "text": GOOD, "stars": 9}, {"text": BAD}]) + "\n"
    for argv, stdin in [
        (["--file", write(tmp_path / "reviews.jsonl", lines)], None),  # by its suffix
        (["--file", write(tmp_path / "reviews.txt", lines)], None),  # by its first line
        ([], lines.encode()),  # stdin, by its first line
    ]:
        status, out, err = call(capsys, "--json", *argv, stdin=stdin, monkeypatch=monkeypatch)
        assert status == 0 and err == ""
        first, second = records(out)
        assert first["line"] == 1 and first["id"] == "a1" and first["label"] == "positive"
        assert second["line"] == 2 and "id" not in second and second["label"] == "negative"
        assert set(first) == {"line", "id", "probability", "label", "words", "known_words"}
        assert first["words"] == first["known_words"] == 4

    # --input-format lines: the same file is read as plain text, one review per line
    _, out, _ = call(capsys, "--json", "--input-format", "lines", "--file", str(tmp_path / "reviews.jsonl"))
    assert len(records(out)) == 2


@pytest.mark.e2e
def test_the_probability_is_the_float32_the_model_gives(in_project, capsys):
    _, out, _ = call(capsys, "--json", GOOD)
    probability = records(out)[0]["probability"]
    assert str(np.float32(probability)) == repr(probability)  # the float32's shortest decimal
    _, out, _ = call(capsys, GOOD)
    assert out.split()[1] == f"{probability:.4f}"


@pytest.mark.e2e
@pytest.mark.parametrize("built", ["project", "improved_project"])
def test_scoring_the_test_reviews_reproduces_the_evaluate_stage(built, request, monkeypatch, capsys, tmp_path):
    in_project = request.getfixturevalue(built)
    monkeypatch.chdir(in_project.path)
    raw = pq.read_table(in_project.path / "data/raw/test.parquet")
    reviews = tmp_path / "test.jsonl"
    rows = zip(raw["id"].to_pylist(), raw["text"].to_pylist(), strict=True)
    reviews.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in rows), encoding="utf-8")
    status, out, _ = call(capsys, "--json", "--file", str(reviews))
    assert status == 0
    scored = records(out)
    labels = np.array(raw["label"].to_pylist())
    predicted = np.array([r["label"] for r in scored])
    metrics = json.loads((in_project.path / "metrics/metrics.json").read_text())["test"]
    assert round(float((predicted == labels).mean()), 6) == metrics["accuracy"]
    evaluated = pq.read_table(in_project.path / "data/predictions/test.parquet")["probability"].to_numpy()
    np.testing.assert_array_equal(np.array([r["probability"] for r in scored], dtype=np.float32), evaluated)


@pytest.mark.e2e
def test_small_chunks_give_the_same_scores(in_project, capsys, monkeypatch, tmp_path):
    reviews = write(tmp_path / "r.txt", "\n".join([GOOD, BAD, "the film", GOOD + " " + BAD] * 3) + "\n")
    _, whole, _ = call(capsys, "--json", "--file", reviews)
    monkeypatch.setattr(predict, "CHUNK_REVIEWS", 2)
    monkeypatch.setattr(predict, "CHUNK_CHARS", 40)
    _, chunked, _ = call(capsys, "--json", "--file", reviews)
    assert chunked == whole and len(records(whole)) == 12


@pytest.mark.e2e
def test_any_unicode_is_accepted_and_a_review_without_a_known_word_gets_a_note(in_project, capsys, tmp_path):
    mixed_text = "Ce film était WONDERFUL — brilliant ✨"
    status, out, err = call(capsys, "--json", NO_KNOWN_WORD, mixed_text, "\udcff odd bytes")
    assert status == 0 and err == ""
    unknown, mixed, odd = records(out)
    assert unknown["known_words"] == 0 and unknown["words"] == 1 and "vocabulary" in unknown["note"]
    assert mixed["known_words"] == 3 and "note" not in mixed  # film, wonderful, brilliant
    assert 0.0 <= odd["probability"] <= 1.0
    status, out, _ = call(capsys, NO_KNOWN_WORD)
    assert out.splitlines()[1].startswith("  note: none of its words is in the vocabulary")

    # \n alone ends a line: other Unicode line breaks stay inside the review; a BOM is dropped
    text = "\ufeff" + GOOD + "\u2028" + BAD + "\x85" + GOOD + "\n" + BAD + "\n"
    status, out, _ = call(capsys, "--json", "--file", write(tmp_path / "u.txt", text))
    first, second = records(out)
    assert first["words"] == 4 + 8 + 4 and second["line"] == 2


# ---------------------------------------------------------------- --explain


@pytest.mark.e2e
def test_explain_lists_the_words_that_push_each_way(in_project, capsys):
    status, out, _ = call(capsys, "--explain", "--json", "wonderful boring film", "--top", "1")
    assert status == 0
    (record,) = records(out)
    assert [e["word"] for e in record["explain"]["positive"]] == ["wonderful"]
    assert [e["word"] for e in record["explain"]["negative"]] == ["boring"]

    # an effect is the probability minus the probability of the review without the word
    _, out, _ = call(capsys, "--json", "wonderful boring film", "boring film", "wonderful film")
    full, without_wonderful, without_boring = (r["probability"] for r in records(out))
    assert record["explain"]["positive"][0]["effect"] == pytest.approx(full - without_wonderful, abs=1e-6)
    assert record["explain"]["negative"][0]["effect"] == pytest.approx(full - without_boring, abs=1e-6)

    _, out, _ = call(capsys, "--explain", GOOD, NO_KNOWN_WORD)
    lines = out.splitlines()
    assert lines[0].startswith("positive  ")
    assert lines[1].startswith("  towards positive: ") and "wonderful +0." in lines[1]
    assert lines[2].startswith("  towards negative: ")
    assert lines[3].startswith("negative  ") or lines[3].startswith("positive  ")
    assert lines[4].startswith("  note: ")
    assert lines[5:] == ["  towards positive: (none)", "  towards negative: (none)"]


@pytest.mark.e2e
def test_explain_does_not_change_the_scores(in_project, capsys, tmp_path, monkeypatch):
    reviews = write(tmp_path / "r.txt", "\n".join([GOOD, BAD, NO_KNOWN_WORD, "film " * 30]) + "\n")
    _, plain, _ = call(capsys, "--json", "--file", reviews)
    monkeypatch.setattr(inference, "EXPLAIN_NONZEROS", 10)  # one forward pass per review or two
    _, explained, _ = call(capsys, "--json", "--explain", "--file", reviews)
    for a, b in zip(records(plain), records(explained), strict=True):
        assert a == {k: v for k, v in b.items() if k != "explain"}
    explain = records(explained)[3]["explain"]
    assert [e["word"] for direction in ("positive", "negative") for e in explain[direction]] == ["film"]


# ---------------------------------------------------------------- errors


BUNDLE = "data/bundle/imdb-sentiment.npz"
DIGEST = "data/bundle/params.sha256"


def bare_copy(project, path, leave_out=()):
    """What predict reads of a project (dvc.yaml to find it, params, the bundle), copied."""
    for name in ("dvc.yaml", "params.yaml", BUNDLE, DIGEST):
        if name not in leave_out:
            (path / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(project.path / name, path / name)
    return path


def one_error(status, out, err, expected):
    assert status == 2 and out == ""
    assert err.splitlines() == [f"error: {expected}"]


@pytest.mark.e2e
def test_a_missing_model_says_how_to_get_it(project, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(bare_copy(project, tmp_path, leave_out=[BUNDLE]))
    one_error(
        *call(capsys, GOOD),
        f"missing {BUNDLE}: run `dvc repro` to build it, or `dvc pull` if the project has a remote",
    )


def test_outside_the_project_the_error_says_where_it_looked(capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    one_error(
        *call(capsys, GOOD),
        f"no model to score with: {tmp_path} is not inside the project (no dvc.yaml here or above); "
        f"run imdb-predict in the project, or give --model PATH (a bundle such as {BUNDLE})",
    )


@pytest.mark.e2e
def test_the_project_is_found_from_a_subdirectory_and_any_bundle_scores_from_anywhere(
    in_project, capsys, monkeypatch, tmp_path
):
    _, at_root, _ = call(capsys, "--json", GOOD, BAD)
    deeper = in_project.path / "data" / "raw"
    monkeypatch.chdir(deeper)
    _, below, _ = call(capsys, "--json", GOOD, BAD)
    assert below == at_root

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    moved = shutil.copy(in_project.path / BUNDLE, tmp_path / "my-model.npz")
    monkeypatch.chdir(elsewhere)
    _, with_model, _ = call(capsys, "--json", "--model", str(moved), GOOD, BAD)
    assert with_model == at_root
    one_error(*call(capsys, "--model", str(tmp_path / "none.npz"), GOOD), f"{tmp_path / 'none.npz'}: no such file")


@pytest.mark.e2e
def test_empty_input_is_an_error(in_project, capsys, monkeypatch, tmp_path):
    empty = write(tmp_path / "empty.txt", "\n  \n")
    hint = "(give review text as arguments, --file PATH, or on stdin)"
    one_error(*call(capsys, "--file", empty), f"no review to score in {empty} {hint}")
    one_error(*call(capsys, stdin=b"", monkeypatch=monkeypatch), f"no review to score in stdin {hint}")
    one_error(*call(capsys, " ", ""), f"no review to score in the arguments {hint}")


@pytest.mark.e2e
def test_an_unreadable_file_is_an_error(in_project, capsys, tmp_path):
    nope = tmp_path / "nope.txt"
    one_error(*call(capsys, "--file", str(nope)), f"{nope}: no such file")
    one_error(*call(capsys, "--file", str(tmp_path)), f"{tmp_path} is a directory, not a file of reviews: "
              "expected a regular file")
    # a device, directly or through a symlink, and a FIFO no one writes to: refused before any read
    (tmp_path / "zero").symlink_to("/dev/zero")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path, kind in (("/dev/zero", "a character device"), (tmp_path / "zero", "a character device"),
                       (fifo, "a FIFO")):
        one_error(*call(capsys, "--file", str(path)), f"{path} is {kind}, not a file of reviews: "
                  f"expected a regular file (or - to read stdin: imdb-predict < {path})")


@pytest.mark.e2e
def test_invalid_json_lines_are_named_and_the_others_scored(in_project, capsys, tmp_path):
    lines = [
        json.dumps({"text": GOOD}),
        '{"text": "unterminated',
        json.dumps(["not", "an", "object"]),
        json.dumps({"review": BAD}),
        json.dumps({"text": 5}),
        json.dumps({"text": BAD}),
    ]
    reviews = write(tmp_path / "r.jsonl", "\n".join(lines) + "\n")
    status, out, err = call(capsys, "--json", "--file", reviews)
    assert status == 1
    assert [r["line"] for r in records(out)] == [1, 6]
    assert err.splitlines() == [
        f"error: {reviews} line 2: invalid JSON: Unterminated string starting at (column 10); line skipped",
        f'error: {reviews} line 3: expected a JSON object with a "text" string; line skipped',
        f'error: {reviews} line 4: expected a JSON object with a "text" string; line skipped',
        f'error: {reviews} line 5: expected a JSON object with a "text" string; line skipped',
    ]

    reviews = write(tmp_path / "bad.jsonl", "{oops\n[]\n")
    status, out, err = call(capsys, "--file", reviews)
    assert status == 2 and out == ""
    assert err.splitlines()[-1] == f"error: no review could be scored: every line of {reviews} was skipped"


@pytest.mark.e2e
def test_a_line_that_is_not_utf8_is_skipped(in_project, capsys, tmp_path):
    reviews = write(tmp_path / "r.txt", GOOD.encode() + b"\nbad \xff byte\n" + BAD.encode() + b"\n")
    status, out, err = call(capsys, "--json", "--file", reviews)
    assert status == 1 and [r["line"] for r in records(out)] == [1, 3]
    assert err == f"error: {reviews} line 2: not UTF-8 text (byte 0xff at byte 5); line skipped\n"


@pytest.mark.e2e
def test_params_changed_since_the_last_repro_are_a_warning_and_the_model_scores_as_built(
    project, capsys, monkeypatch, tmp_path
):
    monkeypatch.chdir(bare_copy(project, tmp_path))
    _, as_built, _ = call(capsys, GOOD)
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    params["vocab"]["num_words"] = 30
    params["model"]["units"] = 1_000_000_000  # what a refused `dvc exp run -S` leaves behind
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    status, out, err = call(capsys, GOOD)
    assert status == 0 and out == as_built
    assert err.splitlines() == [
        f"warning: params.yaml is not what {BUNDLE} was built with: vocab.num_words = 30 (built with 40); "
        "model.units = 1000000000 (built with 16); it scores as built (`dvc repro` rebuilds it from params.yaml)"
    ]
    (tmp_path / "params.yaml").write_text("vocab: [unclosed\n")
    status, out, err = call(capsys, GOOD)
    assert status == 0 and out == as_built
    assert err.splitlines() == [
        f"warning: params.yaml is not valid YAML at line 2; {BUNDLE} scores with the params it was built with"
    ]
    # a bundle named with --model carries its own params: params.yaml is not its business
    status, out, err = call(capsys, "--model", BUNDLE, GOOD)
    assert status == 0 and out == as_built and err == ""


@pytest.mark.e2e
def test_params_yaml_as_evaluate_found_it_is_not_parsed_again_and_any_other_is(project, tmp_path):
    # YAML's import alone is a sixth of scoring one review: while params.yaml has the bytes
    # evaluate recorded beside the bundle, it is known to match without parsing it
    copy = bare_copy(project, tmp_path)
    assert (copy / DIGEST).read_text() == hashlib.sha256((copy / "params.yaml").read_bytes()).hexdigest() + "\n"
    check = (
        "import sys; from pipeline.commands import predict; status = predict.main([" + repr(GOOD) + "]); "
        "print('yaml' in sys.modules)"
    )

    def parsed_params() -> str:
        result = subprocess.run([sys.executable, "-c", check], cwd=copy, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        return result.stdout.splitlines()[-1]

    assert parsed_params() == "False"
    (copy / "params.yaml").write_text((copy / "params.yaml").read_text() + "# a comment\n")
    assert parsed_params() == "True"  # other bytes: parsed, and (the same values) no warning
    (copy / DIGEST).write_text("")
    assert parsed_params() == "True"


def test_evaluate_records_the_params_digest_only_for_params_the_bundle_was_built_with(tmp_path):
    params = load_params(ROOT / "params.yaml")
    bundle = inference.Bundle(params.vocab, params.vectorize, params.model, params.train, vocabulary=[], layers=[])
    path = tmp_path / "params.yaml"
    shutil.copy(ROOT / "params.yaml", path)
    assert evaluate.matching_params_digest(bundle, path) == hashlib.sha256(path.read_bytes()).hexdigest()
    path.write_text(path.read_text().replace("units: 16", "units: 32"))
    assert evaluate.matching_params_digest(bundle, path) == ""
    path.write_text("model: [unclosed\n")
    assert evaluate.matching_params_digest(bundle, path) == ""


@pytest.mark.e2e
def test_a_damaged_model_is_an_error(project, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(bare_copy(project, tmp_path))
    model = tmp_path / BUNDLE
    model.write_bytes(model.read_bytes()[:1000])  # cut short
    one_error(*call(capsys, GOOD), f"{BUNDLE} is not a valid model bundle (File is not a zip file)")
    with zipfile.ZipFile(model, "w") as archive:  # a zip, but no model in it
        archive.writestr("readme.txt", "hello")
    one_error(*call(capsys, GOOD), f"{BUNDLE} is not a valid model bundle: missing metadata.json")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--top", "0", "x"], "argument --top: expected an integer >= 1, got '0' (see imdb-predict --help)"),
        (["--file", "a.txt", "x"], "give reviews as arguments or with --file, not both (see imdb-predict --help)"),
        (["--nope"], "unrecognized arguments: --nope (see imdb-predict --help)"),
    ],
)
def test_bad_options_are_one_line(capsys, argv, message):
    one_error(*call(capsys, *argv), message)


# ---------------------------------------------------------------- as a user runs it


@pytest.mark.e2e
def test_the_installed_command_prints_only_scores(project):
    result = project.run("imdb-predict", GOOD, BAD)
    assert result.stderr == ""
    assert [line.split()[0] for line in result.stdout.splitlines()] == ["positive", "negative"]

    result = project.run(sys.executable, "-m", "pipeline.commands.predict", "--file", "nowhere.txt", check=False)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == "error: nowhere.txt: no such file\n"


@pytest.mark.e2e
def test_from_a_terminal_each_review_is_scored_as_it_is_typed(project):
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        ["imdb-predict"], cwd=project.path, env=project.env, stdin=follower,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    os.close(follower)
    try:
        prompt = process.stderr.readline().decode()
        assert prompt == "imdb-predict: type a review and press Enter (Ctrl-D to end)\n"
        os.write(leader, (GOOD + "\n").encode())
        ready, _, _ = select.select([process.stdout], [], [], 60)  # answered before the input ends
        assert ready
        assert process.stdout.readline().decode().startswith("positive  ")
        os.write(leader, (BAD + "\n").encode() + b"\x04")  # Ctrl-D
        out, err = process.communicate(timeout=60)
    finally:
        os.close(leader)
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0 and err == b""
    assert out.decode().startswith("negative  ")


# ---------------------------------------------------------------- pieces, without a model


def test_json_lines_and_plain_lines_are_told_apart():
    def read(data: bytes, name="stdin", fmt="auto"):
        return list(predict.from_lines(io.BytesIO(data), name, fmt))

    assert read(b'{"text": "a"}\n') == [predict.InputReview(1, "a")]
    assert read(b'\n{"text": "a", "id": 3}\n') == [predict.InputReview(2, "a", 3)]
    assert read(b"{a film}\n") == [
        predict.Skipped(1, "invalid JSON: Expecting property name enclosed in double quotes (column 2)")
    ]
    assert read(b"{a film}\n", fmt="lines") == [predict.InputReview(1, "{a film}")]
    assert read(b"a film\n{not json}\n") == [predict.InputReview(1, "a film"), predict.InputReview(2, "{not json}")]
    assert read(b"a film\n", name="r.JSONL") == [predict.Skipped(1, "invalid JSON: Expecting value (column 1)")]
    not_an_object = predict.Skipped(1, 'expected a JSON object with a "text" string')
    assert read(b'"just a string"\n', fmt="jsonl") == [not_an_object]
    assert read(b"no newline at the end") == [predict.InputReview(1, "no newline at the end")]


def test_chunks_are_bounded_by_reviews_and_by_characters(capsys):
    items = [predict.InputReview(i, "x" * 10) for i in range(1, 8)]
    skipped = collections.Counter()
    assert [len(c) for c in predict.chunks(items, 3, "s", skipped, chars=1000)] == [3, 3, 1]
    assert [len(c) for c in predict.chunks(items, 100, "s", skipped, chars=25)] == [3, 3, 1]
    mixed = [items[0], predict.Skipped(2, "why"), items[2]]
    assert [len(c) for c in predict.chunks(mixed, 100, "s", skipped)] == [2]
    assert skipped == {"lines": 1}  # counted, not kept
    assert capsys.readouterr().err == "error: s line 2: why; line skipped\n"


def test_strongest_words_are_sorted_by_size_then_alphabetically():
    words = np.array([4, 5, 6, 7, 8])
    effects = np.array([0.2, -0.3, 0.2, 0.0, 0.5], dtype=np.float32)
    word_of = {4: "b", 5: "awful", 6: "a", 7: "the", 8: "great"}
    top = predict.strongest(words, effects, word_of, top=2)
    assert [w for w, _ in top["positive"]] == ["great", "a"]
    assert [w for w, _ in top["negative"]] == ["awful"]


def test_params_yaml_is_compared_with_the_params_the_model_was_built_with():
    params = load_params(ROOT / "params.yaml")
    bundle = inference.Bundle(
        params.vocab, params.vectorize, params.model, dataclasses.replace(params.train, epochs=6),
        vocabulary=[], layers=[],
    )
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["train"]["epochs"] = "best"  # an epoch number once trained: no difference
    assert inference.params_differences(bundle, raw) == []
    raw["vocab"]["ngram_range"] = [1, 2]
    raw["vectorize"]["weighting"] = "tfidf"
    del raw["model"]["seed"]
    raw["download"]["reviews_per_folder"] = 3  # not a param the bundle records
    assert inference.params_differences(bundle, raw) == [
        "vocab.ngram_range = [1, 2] (built with [1, 1])",
        "vectorize.weighting = tfidf (built with binary)",
        "model.seed = absent (built with 113)",
    ]
    every_key_it_records = 3 + 1 + 11 + 1
    assert len(inference.params_differences(bundle, ["not", "a", "mapping"])) == every_key_it_records


@given(st.text(alphabet=" \t\n\u00a0\u2028ab", max_size=400))
def test_the_preview_collapses_as_if_the_whole_review_were_split(review):
    whole = " ".join(review.split())
    expected = whole if len(whole) <= predict.PREVIEW else whole[: predict.PREVIEW - 1].rstrip() + "…"
    assert predict.preview(review) == expected


def test_the_preview_is_one_short_line():
    assert predict.preview("a\n b\t c") == "a b c"
    long = predict.preview("word " * 100)
    assert len(long) <= predict.PREVIEW and long.endswith("…")
    assert predict.preview("bad \udcff") == "bad \\udcff"
