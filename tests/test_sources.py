"""Labeled texts of your own: the table and folders sources, and more than two classes.

The boundary is real when every source writes the same data/raw from the same
reviews: a generated archive's reviews, exported to each table format and to folders
per class, must give the bytes the archive gives, and the same metrics.
"""
from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from pipeline.cli import UserError, run
from pipeline.stages import download
from testbed.archives import official_extras, review_members, write_archive
from testbed.project import make_project
from tests.test_pipeline import PER_FOLDER, SMALL

ROOT = Path(__file__).resolve().parents[1]
FORMATS = {"csv": "reviews.csv", "tsv": "reviews.tsv", "jsonl": "reviews.jsonl", "parquet": "reviews.parquet"}
TABLE = {"source": "table", "split_column": "split", "id_column": "id"}


def export(raw: dict[str, pa.Table], folder: Path) -> dict[str, dict]:
    """The raw splits as each table format and as folders; {name: download params for it}."""
    rows = [
        {"id": row["id"], "text": row["text"], "label": row["label"], "split": split}
        for split, table in raw.items()
        for row in table.to_pylist()
    ]
    for fmt, name in FORMATS.items():
        path = folder / name
        if fmt in ("csv", "tsv"):
            with open(path, "w", newline="", encoding="utf-8") as stream:
                writer = csv.DictWriter(stream, fieldnames=list(rows[0]), delimiter="\t" if fmt == "tsv" else ",")
                writer.writeheader()
                writer.writerows(rows)
        elif fmt == "jsonl":
            path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
        else:
            pq.write_table(pa.Table.from_pylist(rows), path)
    for row in rows:
        file = folder / "reviews" / row["split"] / row["label"] / f"{row['id']}.txt"
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_bytes(row["text"].encode("utf-8"))
    return {fmt: {**TABLE, "path": name} for fmt, name in FORMATS.items()} | {
        "folders": {"source": "folders", "path": "reviews"}
    }


def download_stage(project: Path, monkeypatch, capsys, **download_params) -> tuple[int, str]:
    """The download stage in `project` with these download params: (exit status, stderr)."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["download"].update(download_params)
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(project)
    try:
        run(download.main)
        status = 0
    except SystemExit as stopped:
        status = stopped.code
    return status, capsys.readouterr().err


@pytest.fixture
def archive(tmp_path):
    return write_archive(tmp_path / "aclImdb_v1.tar.gz", {**review_members(6, seed=2), **official_extras()})


def test_every_source_writes_the_bytes_the_archive_gives(tmp_path, archive, monkeypatch, capsys):
    monkeypatch.setenv("IMDB_ARCHIVE", str(archive))
    assert download_stage(tmp_path, monkeypatch, capsys, reviews_per_folder=6)[0] == 0
    expected = {split: (tmp_path / f"data/raw/{split}.parquet").read_bytes() for split in ("train", "test")}
    raw = {split: pq.read_table(tmp_path / f"data/raw/{split}.parquet") for split in expected}
    sources = export(raw, tmp_path)
    for name, params in sources.items():
        status, err = download_stage(tmp_path, monkeypatch, capsys, **params)
        assert status == 0, f"{name}: {err}"
        for split, data in expected.items():
            assert (tmp_path / f"data/raw/{split}.parquet").read_bytes() == data, f"{name} {split}"


def test_a_table_without_a_split_holds_out_a_seeded_stratified_share(tmp_path, monkeypatch, capsys):
    labels = ["a"] * 50 + ["b"] * 30 + ["c"] * 20
    pq.write_table(pa.table({"text": [f"text {i}" for i in range(100)], "label": labels, "extra": list(range(100))}),
                   tmp_path / "t.parquet")
    written = []
    for seed in (1, 1, 2):
        assert download_stage(tmp_path, monkeypatch, capsys, source="table", path="t.parquet", seed=seed,
                              test_size=0.2)[0] == 0
        test = pq.read_table(tmp_path / "data/raw/test.parquet")
        written.append(test)
        assert [test["label"].to_pylist().count(c) for c in "abc"] == [10, 6, 4]  # 20% of each class
        assert test.column_names == ["id", "label", "text", "extra"]  # further columns travel
        assert test["extra"].to_pylist() == test["id"].to_pylist()  # with their rows
    assert written[0].equals(written[1]) and not written[0].equals(written[2])
    train = pq.read_table(tmp_path / "data/raw/train.parquet")
    assert sorted(train["id"].to_pylist() + written[-1]["id"].to_pylist()) == list(range(100))


def _parquet(columns: dict) -> bytes:
    stream = io.BytesIO()
    pq.write_table(pa.table(columns), stream)
    return stream.getvalue()


BAD_TABLES = {
    "a missing column": ("t.csv", "id,review,label\n1,good,pos\n", {},
                         "t.csv has no column 'text' (download.text_column); its columns: id, review, label"),
    "an empty file": ("t.csv", "", {}, "t.csv is not a readable csv file after row 0: Empty CSV file"),
    "a header alone": ("t.csv", "text,label\n", {}, "t.csv has no rows: expected a header and one labeled text"),
    "an empty text": ("t.csv", "text,label\ngood,pos\n,neg\n", {}, "t.csv row 2 (after the header) has no text"),
    "a missing label": ("t.jsonl", '{"text": "good", "label": "pos"}\n{"text": "bad"}\n', {},
                        "t.jsonl line 2 has no label"),
    "mixed label types": ("t.jsonl", '{"text": "good", "label": 1}\n{"text": "bad", "label": "neg"}\n', {},
                          "download.source = table (t.jsonl): the labels mix integers (1) and text ('neg')"),
    "a nested field": ("t.jsonl", '{"text": "good", "label": "pos", "meta": {"a": [1]}}\n', {},
                       "t.jsonl line 1: the field 'meta' is nested"),
    "JSON nested too deeply": ("t.jsonl", '{"text": "good", "label": "pos", "meta": ' + "[" * 5000 + "]" * 5000 + "}\n",
                               {}, "t.jsonl line 1 is not JSON a review may be (nested deeper than 32 levels)"),
    "ids that collide": ("t.csv", "i,text,label\n1,good,pos\n1,also good,pos\n", {"id_column": "i"},
                         "two reviews have the id '1' and the label 'pos': expected each review once"),
    "an integer beyond 64 bits": ("t.jsonl", '{"text": "good", "label": 18446744073709551615}\n', {},
                                  "t.jsonl line 1: the label is '18446744073709551615'; expected text or an integer"),
    "a boolean id": ("t.jsonl", '{"text": "good", "label": "pos", "i": true}\n', {"id_column": "i"},
                     "t.jsonl line 1: the id is 'True'; expected text or an integer"),
    "two columns of one name": ("t.csv", "text,label,label\ngood,pos,neg\n", {},
                                "t.csv has two columns named 'label'"),
    "a ragged row": ("t.csv", "text,label\ngood,pos\nbad,neg,extra\n", {},
                     "t.csv is not a readable csv file after row 0: CSV parse error: Expected 2 columns, got 3"),
    "text that is not UTF-8": ("t.csv", b"text,label\ngood,pos\nb\xffd,neg\n", {},
                               "t.csv is not a readable csv file after row 0: In CSV column #0: CSV conversion "
                               "error to string: invalid UTF8 data"),
    "an unknown split": ("t.csv", "text,label,part\ngood,pos,train\nbad,neg,dev\n", {"split_column": "part"},
                         "t.csv row 2 (after the header): the split is 'dev'; expected train or test"),
    "no test rows": ("t.csv", "text,label,part\ngood,pos,train\nbad,neg,train\n", {"split_column": "part"},
                     "download.source = table (t.csv): the test split has no reviews"),
    "a column that clashes": ("t.csv", "id,text,label\n1,good,pos\n", {},
                              "t.csv has a column 'id' that is not download.id_column (none): data/raw names its own"),
    "float labels": ("t.parquet", _parquet({"text": ["good", "bad"], "label": [1.5, 2.5]}), {},
                     "t.parquet: the labels (label) are double; expected text or integers"),
    "a column of timestamps": ("t.parquet", _parquet({"text": ["good"], "label": ["pos"], "when": [
        __import__("datetime").datetime(2020, 1, 1)]}), {},
                               "t.parquet: the column 'when' holds timestamp[us]; columns that travel to data/raw"),
    "an unknown extension": ("t.txt", "text,label\n", {}, "download.path = t.txt: cannot tell the format from .txt"),
}


@pytest.mark.parametrize("case", list(BAD_TABLES))
def test_a_bad_table_is_one_line_naming_the_file_the_row_and_what_was_expected(tmp_path, monkeypatch, capsys, case):
    name, content, params, message = BAD_TABLES[case]
    (tmp_path / name).write_bytes(content.encode() if isinstance(content, str) else content)
    status, err = download_stage(tmp_path, monkeypatch, capsys, source="table", path=name, **params)
    assert status == 2 and len(err.splitlines()) == 1 and message in err, err
    assert not (tmp_path / "data").exists()  # nothing written


BAD_FOLDERS = {
    "a stray file in a class folder": ({"train/pos/1.txt": b"good", "train/pos/notes.md": b"x"},
                                       "train/pos/notes.md does not belong in a class folder"),
    "a file where a class folder belongs": ({"train/pos/1.txt": b"good", "train/readme.txt": b"x"},
                                            "train/readme.txt is a file where a class folder belongs"),
    "a folder that is no split": ({"train/pos/1.txt": b"good", "dev/pos/2.txt": b"x"},
                                  "dev does not belong in"),
    "no train folder": ({"test/pos/1.txt": b"good"}, "has no train folder"),
    "text that is not UTF-8": ({"train/pos/1.txt": b"good", "train/neg/2.txt": b"b\xffd"},
                               "train/neg/2.txt is not UTF-8 text (byte 2): save it as UTF-8"),
    "an empty text": ({"train/pos/1.txt": b"good", "train/neg/2.txt": b"\xef\xbb\xbf \r\n"},
                      "train/neg/2.txt has no text"),
    "a class folder of no texts": ({"train/pos/1.txt": b"good", "train/neg/.keep": b""},
                                   "train/neg holds no texts"),
    "a file name that is not UTF-8": ({"train/pos/1.txt": b"good", b"train/neg/\xff.txt": b"bad"},
                                      "the name is not UTF-8: rename it"),
}


@pytest.mark.parametrize("case", list(BAD_FOLDERS))
def test_bad_folders_are_one_line_naming_the_path(tmp_path, monkeypatch, capsys, case):
    files, message = BAD_FOLDERS[case]
    for name, data in files.items():
        path = Path(os.fsdecode(os.path.join(os.fsencode(tmp_path / "texts"), os.fsencode(name))))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (tmp_path / "texts" / ".DS_Store").write_bytes(b"ignored: a dot file")
    status, err = download_stage(tmp_path, monkeypatch, capsys, source="folders", path="texts")
    assert status == 2 and len(err.splitlines()) == 1 and message in err, err


def test_folders_without_a_test_split_hold_one_out(tmp_path, monkeypatch, capsys):
    for label, count in (("alpha", 10), ("beta", 10), ("gamma", 5)):
        for number in range(count):
            path = tmp_path / "texts" / "train" / label / f"{label}-{number}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"{label} words {number}")
    status, err = download_stage(tmp_path, monkeypatch, capsys, source="folders", path="texts", test_size=0.2)
    assert status == 0, err
    test = pq.read_table(tmp_path / "data/raw/test.parquet")
    assert test.schema.field("id").type == pa.string()  # file names that are not numbers
    assert sorted(test["label"].to_pylist()) == ["alpha", "alpha", "beta", "beta", "gamma"]


# ---------------------------------------------------------------- end to end


@pytest.mark.e2e
def test_each_source_gives_the_archives_metrics(tmp_path):
    archive = write_archive(tmp_path / "aclImdb_v1.tar.gz", {**review_members(PER_FOLDER, seed=5), **official_extras()})
    reference = make_project(tmp_path / "imdb", archive, **SMALL)
    reference.repro()
    metrics = (reference.path / "metrics/metrics.json").read_bytes()
    raw = {split: pq.read_table(reference.path / f"data/raw/{split}.parquet") for split in ("train", "test")}
    for name in (*FORMATS, "folders"):
        project = make_project(tmp_path / name, archive, **SMALL)
        sources = export(raw, project.path / "datasets")
        project.set_params(download={**sources[name], "path": f"datasets/{sources[name]['path']}"})
        project.repro()
        assert (project.path / "metrics/metrics.json").read_bytes() == metrics, name
        for split in raw:
            raw_file = f"data/raw/{split}.parquet"
            assert (project.path / raw_file).read_bytes() == (reference.path / raw_file).read_bytes()


@pytest.mark.e2e
def test_the_example_tickets_train_a_classifier_of_four_classes(tmp_path):
    archive = write_archive(tmp_path / "unused.tar.gz", {})
    project = make_project(
        tmp_path / "project", archive,
        download={"source": "table", "path": "datasets/tickets.csv", "id_column": "id"},
        vocab={"num_words": 200}, validate={"val_size": 200, "epochs": 6}, train={"epochs": 6},
        model={"batch_size": 64, "learning_rate": 0.01},
    )
    (project.path / "datasets" / "tickets.csv").write_bytes((ROOT / "datasets/tickets.csv").read_bytes())
    project.repro()
    classes = ["billing", "bug", "login", "shipping"]
    assert json.loads((project.path / "data/vocab/classes.json").read_text()) == classes
    test = json.loads((project.path / "metrics/metrics.json").read_text())["test"]
    assert set(test) == {"loss", "accuracy", "macro_f1", "per_class", "confusion_matrix"}
    assert list(test["per_class"]) == classes and len(test["confusion_matrix"]) == 4
    held_out = pq.read_table(project.path / "data/raw/test.parquet")
    assert sum(map(sum, test["confusion_matrix"])) == held_out.num_rows  # a fifth of each class of 1,200
    assert 230 <= held_out.num_rows <= 250
    assert test["accuracy"] > 0.5  # four classes: chance is about 0.25
    assert (project.path / "metrics/roc.csv").read_text() == "fpr,tpr\n"  # no ROC curve for four classes
    confusion = (project.path / "metrics/confusion.csv").read_text().splitlines()
    assert confusion[0] == "actual,predicted" and {row.split(",")[0] for row in confusion[1:]} == set(classes)
    assert held_out.column_names == ["id", "label", "text", "channel"]

    scored = project.run("imdb-predict", "--json", "--top-k", "2", "my invoice charged twice, refund please")
    record = json.loads(scored.stdout)
    assert record["label"] in classes and list(record["probabilities"])[0] == record["label"]
    assert len(record["probabilities"]) == 2 and record["probability"] == record["probabilities"][record["label"]]
    text = project.run("imdb-predict", "--top-k", "3", "--explain", "the app crash error again").stdout.splitlines()
    label = text[0].split()[0]
    assert text[1].startswith("  top: " + label) and text[2].startswith(f"  towards {label}:")
    assert text[3].startswith(f"  towards other than {label}:")

    refused = project.set_params(model={"nb_scaling": True}) or project.dvc("repro", check=False)
    assert refused.returncode != 0 and "error: params.yaml: model.nb_scaling = true needs two classes" in (
        refused.stdout + refused.stderr)


def test_the_scale_benchmarks_table_holds_the_reviews_its_archive_holds(tmp_path, monkeypatch, capsys):
    from bench import scale

    real = {
        (split, folder): scale.Source([(2, 8 if folder == "pos" else 2)], [f"{folder} {split} one.", "two!"])
        for split in ("train", "test") for folder in ("neg", "pos")
    }
    monkeypatch.setattr(scale, "REAL_PER_FOLDER", 3)
    scale.write_archive(tmp_path / "a.tar.gz", real, 1)
    monkeypatch.setenv("IMDB_ARCHIVE", str(tmp_path / "a.tar.gz"))
    assert download_stage(tmp_path, monkeypatch, capsys, reviews_per_folder=3)[0] == 0
    from_archive = pq.read_table(tmp_path / "data/raw/train.parquet")
    scale.write_table(tmp_path / "corpus.csv", real, 1)
    table = {"source": "table", "path": "corpus.csv", "id_column": "id", "split_column": "split"}
    assert download_stage(tmp_path, monkeypatch, capsys, **table)[0] == 0
    from_table = pq.read_table(tmp_path / "data/raw/train.parquet")
    assert from_table.drop_columns(["rating"]).equals(from_archive) and from_table.num_rows == 6


def test_the_classes_are_the_training_splits_and_a_test_label_outside_them_is_one_line(tmp_path, monkeypatch):
    from pipeline.stages import vocab

    monkeypatch.chdir(tmp_path)
    (tmp_path / "data/raw").mkdir(parents=True)

    def raw(train_labels, test_labels):
        for split, labels in (("train", train_labels), ("test", test_labels)):
            pq.write_table(pa.table({"id": list(range(len(labels))), "label": labels, "text": ["t"] * len(labels)}),
                           tmp_path / f"data/raw/{split}.parquet")

    raw([10, 2, 7, 2], [7, 10])
    assert vocab.split_classes().to_pylist() == [2, 7, 10]  # numbers by value
    raw(["pos", "Neg", "neu", "neu"], ["pos"])
    assert vocab.split_classes().to_pylist() == ["Neg", "neu", "pos"]  # text by code point
    raw(["pos", "pos"], ["pos"])
    with pytest.raises(UserError, match=r"train\.parquet: the training split has a single class \('pos'\): a "
                       r"classifier needs two or more$"):
        vocab.split_classes()
    raw(["pos", "neg"], ["pos", "meh", "meh", "bad"])
    with pytest.raises(UserError, match=r"test\.parquet: labels never seen in training: 'meh' \(2 reviews\), 'bad' "
                       r"\(1 reviews\); a model can only predict the training split's classes \(2\)$"):
        vocab.split_classes()


def test_a_label_column_of_ids_or_a_model_too_large_for_its_classes_is_one_line(tmp_path, monkeypatch):
    import dataclasses

    from pipeline import labels, limits
    from pipeline.params import load_params
    from pipeline.stages import vocab

    monkeypatch.chdir(tmp_path)
    (tmp_path / "data/raw").mkdir(parents=True)
    many = [f"ticket-{n}" for n in range(limits.MAX_CLASSES + 1)]  # a label per row: the id column, by mistake
    for split in ("train", "test"):
        pq.write_table(pa.table({"id": list(range(len(many))), "label": many, "text": ["t"] * len(many)}),
                       tmp_path / f"data/raw/{split}.parquet")
    with pytest.raises(UserError, match=r"has 1,001 classes, more than the 1,000 a classifier may have .* is "
                       r"download\.label_column the label\?$"):
        vocab.split_classes()
    model = load_params(ROOT / "params.yaml").model
    assert labels.model_problem(model, list(range(46)), 10000) is None  # section 3.5's 46 topics
    wide = dataclasses.replace(model, units=5000, hidden_layers=1)  # 50 million weights: params allow it
    assert labels.model_problem(wide, ["neg", "pos"], 10000) is None
    assert "1,000 classes with these params has 55,006,000 weights; at most 53,687,091" in labels.model_problem(
        wide, list(range(1000)), 10000)  # and a unit per class takes it past the budget
    assert labels.model_problem(model, ["neg", "pos"], 10000) is None


def test_folder_ids_are_integers_only_as_written_and_both_splits_are_written_or_neither(
    tmp_path, monkeypatch, capsys
):
    for split, name, text in (("train", "1", "good"), ("train", "01", "also good"), ("test", "1", "fine"),
                              ("train", "2", "bad")):
        label = "neg" if text == "bad" else "pos"
        (tmp_path / "texts" / split / label).mkdir(parents=True, exist_ok=True)
        (tmp_path / "texts" / split / label / f"{name}.txt").write_text(text)
    (tmp_path / "texts/test/neg").mkdir()
    (tmp_path / "texts/test/neg/3.txt").write_text("poor")
    status, err = download_stage(tmp_path, monkeypatch, capsys, source="folders", path="texts")
    assert status == 0, err
    train = pq.read_table(tmp_path / "data/raw/train.parquet")
    assert train["id"].to_pylist() == ["01", "1", "2"]  # text ids, since 01 is one: 01.txt and 1.txt are two
    before = {split: (tmp_path / f"data/raw/{split}.parquet").read_bytes() for split in ("train", "test")}
    (tmp_path / "texts/test/neg/4.txt").write_bytes(b"\xff")  # the test split fails, after train was read
    status, err = download_stage(tmp_path, monkeypatch, capsys, source="folders", path="texts")
    assert status == 2 and "4.txt is not UTF-8" in err
    assert {split: (tmp_path / f"data/raw/{split}.parquet").read_bytes() for split in before} == before


def test_a_tsv_has_no_quoting_and_many_classes_are_held_out_in_linear_time(tmp_path, monkeypatch, capsys):
    (tmp_path / "t.tsv").write_text('text\tlabel\n"I loved it\tpos\nmeh" said nobody\tneg\nfine\tpos\nok\tneg\n')
    status, err = download_stage(tmp_path, monkeypatch, capsys, source="table", path="t.tsv", test_size=0.5)
    assert status == 0, err
    texts = pq.read_table(tmp_path / "data/raw/train.parquet")["text"].to_pylist()
    texts += pq.read_table(tmp_path / "data/raw/test.parquet")["text"].to_pylist()
    assert sorted(texts) == sorted(['"I loved it', 'meh" said nobody', "fine", "ok"])  # quotes are text
    classes = 50_000  # three reviews each: a holdout per class, which a loop over classes made quadratic
    rows = [f"text {n},c{n % classes}" for n in range(3 * classes)]
    (tmp_path / "many.csv").write_text("text,label\n" + "\n".join(rows) + "\n")
    status, err = download_stage(tmp_path, monkeypatch, capsys, source="table", path="many.csv", test_size=0.34)
    assert status == 0, err
    assert pq.read_table(tmp_path / "data/raw/test.parquet").num_rows == classes  # one of each class's three


def test_a_dataset_of_more_reviews_than_the_limit_is_one_line(tmp_path, monkeypatch, capsys):
    from pipeline import limits

    monkeypatch.setattr(limits, "MAX_REVIEWS", 5)
    (tmp_path / "t.csv").write_text("text,label\n" + "".join(f"t{n},{n % 2}\n" for n in range(6)))
    status, err = download_stage(tmp_path, monkeypatch, capsys, source="table", path="t.csv")
    assert status == 2 and "more than 5 reviews: a dataset may have at most that many" in err


def test_a_rare_class_is_held_out_too_and_later_json_fields_are_checked(tmp_path, monkeypatch, capsys):
    rows = "".join(f"pos {n},pos\n" for n in range(100)) + "neg 1,neg\nneg 2,neg\n"
    (tmp_path / "t.csv").write_text("text,label\n" + rows)
    assert download_stage(tmp_path, monkeypatch, capsys, source="table", path="t.csv", test_size=0.2)[0] == 0
    test = pq.read_table(tmp_path / "data/raw/test.parquet")["label"].to_pylist()
    assert test.count("neg") == 1 and test.count("pos") == 20  # 20% of 2 rounds to 0: one is held out anyway
    lines = ['{"text": "good", "label": "pos"}', '{"text": "bad", "label": "neg", "id": 5}']
    (tmp_path / "t.jsonl").write_text("\n".join(lines) + "\n")
    status, err = download_stage(tmp_path, monkeypatch, capsys, source="table", path="t.jsonl")
    assert status == 2 and "t.jsonl line 2 has a field 'id' that is not download.id_column" in err
    (tmp_path / "t.jsonl").write_text('{"text": "bad \\ud800", "label": "neg"}\n')
    status, err = download_stage(tmp_path, monkeypatch, capsys, source="table", path="t.jsonl")
    assert status == 2 and "t.jsonl line 1: the text holds '\\ud800', a lone surrogate, which is not text" in err
