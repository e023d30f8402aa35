"""The logic inside each stage, tested without running the stages."""
import sys
import types
from dataclasses import replace

import numpy as np
import pyarrow as pa
import pytest
from matplotlib.colors import to_rgba

import pipeline
from pipeline import features, history, memo, text, weightings
from pipeline.cli import UserError
from pipeline.params import TrainParams, load_params
from pipeline.stages import evaluate, plot, train, vectorize, vocab
from testbed.features import table_count_matrix
from testbed.project import ROOT

HISTORY = {
    "epoch": [1.0, 2.0, 3.0, 4.0],
    "loss": [0.5, 0.3, 0.2, 0.1],
    "accuracy": [0.8, 0.9, 0.93, 0.96],
    "val_loss": [0.4, 0.3, 0.3, 0.35],
    "val_accuracy": [0.85, 0.88, 0.89, 0.87],
}


def test_validation_split_is_seeded_disjoint_and_complete():
    val_rows, train_rows = train.split_validation(100, 30, seed=1)
    again_val, _ = train.split_validation(100, 30, seed=1)
    other_val, _ = train.split_validation(100, 30, seed=2)
    assert len(val_rows) == 30 and len(train_rows) == 70
    assert sorted(np.concatenate([val_rows, train_rows])) == list(range(100))
    np.testing.assert_array_equal(val_rows, again_val)
    assert not np.array_equal(val_rows, other_val)


def rows_of_the_validation_run(monkeypatch, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(held-out rows, training rows) that the train stage's validation run reads, for model.seed = seed;
    the fit itself is replaced, so TensorFlow never loads."""
    read = {}

    def train_model(model_params, load, epochs, load_validation, live_dir, classes):
        read["train"], read["validation"] = load(), load_validation()

    fake_training = types.SimpleNamespace(train_model=train_model, release_memory=lambda: None)
    monkeypatch.setitem(sys.modules, "pipeline.training", fake_training)
    monkeypatch.setattr(pipeline, "training", fake_training, raising=False)
    monkeypatch.setattr(features, "count_reviews", lambda split: 200)
    monkeypatch.setattr(features, "read_features", lambda split, rows=None: rows)
    monkeypatch.setattr(memo, "fit_key", lambda *args: "key")
    monkeypatch.setattr(memo, "restore", lambda key, folder: False)
    monkeypatch.setattr(memo, "keep", lambda key, folder: None)

    params = load_params(ROOT / "params.yaml")
    params = replace(params, model=replace(params.model, seed=seed), validate=replace(params.validate, val_size=50))
    train.validation_run(params, classes=[0, 1])
    return read["validation"], read["train"]


def test_validation_run_holds_out_the_rows_that_model_seed_picks(monkeypatch):
    val_rows, train_rows = rows_of_the_validation_run(monkeypatch, seed=1)
    assert len(val_rows) == 50 and sorted(np.concatenate([val_rows, train_rows])) == list(range(200))
    np.testing.assert_array_equal(rows_of_the_validation_run(monkeypatch, seed=1)[0], val_rows)
    # Another seed is another experiment: it must not score on the same held-out reviews.
    assert set(rows_of_the_validation_run(monkeypatch, seed=2)[0]) != set(val_rows)


def test_validation_set_as_large_as_the_data_is_refused():
    with pytest.raises(UserError, match=r"validate\.val_size = 100 .*from 1 to 99"):
        train.split_validation(100, 100, seed=1)


def test_history_table_numbers_epochs_from_one_and_best_epoch_is_the_first_lowest_val_loss(tmp_path):
    keras_history = {key: values for key, values in HISTORY.items() if key != "epoch"}
    history.write_history(tmp_path / "h.csv", keras_history)
    rows = (tmp_path / "h.csv").read_text().splitlines()
    assert rows[0] == ",".join(history.COLUMNS)
    assert rows[2] == "2,0.3,0.9,0.3,0.88"
    assert history.best_epoch(HISTORY) == 2


def test_a_history_that_differs_in_the_sixth_decimal_is_published_the_same():
    # epoch 10's val_loss of the chapter's run, on an Intel and on an AMD processor
    intel, amd = {"val_loss": [0.34873]}, {"val_loss": [0.348729]}
    assert history.published(intel) == history.published(amd) == {"val_loss": [0.3487]}


def test_final_epochs_is_the_param_or_the_best_validation_epoch():
    assert train.final_epochs(TrainParams(epochs=4), HISTORY) == 4
    assert train.final_epochs(TrainParams(epochs="best"), HISTORY) == 2


def test_classification_metrics_agree_with_the_confusion_matrix():
    y_true = np.array([0, 0, 0, 1, 1, 1, 1, 0])
    probabilities = np.array([0.1, 0.6, 0.2, 0.9, 0.4, 0.8, 0.5, 0.3])
    report = evaluate.classification_metrics(y_true, probabilities)
    assert report["confusion_matrix"] == {"tn": 3, "fp": 1, "fn": 1, "tp": 3}
    assert report["precision"] == 0.75 and report["recall"] == 0.75 and report["f1"] == 0.75
    assert report["roc_auc"] == 14 / 16  # positive-negative pairs ranked the right way round


def test_metrics_are_scikit_learns():
    from sklearn import metrics as skm

    rng = np.random.default_rng(3)
    y_true = rng.integers(0, 2, 2000)
    probabilities = np.round(np.clip(y_true * 0.2 + rng.random(2000) * 0.8, 0, 1), 2)  # many ties
    y_pred = (probabilities >= 0.5).astype(int)
    report = evaluate.classification_metrics(y_true, probabilities)
    assert report["roc_auc"] == round(skm.roc_auc_score(y_true, probabilities), 6)
    assert report["precision"] == round(skm.precision_score(y_true, y_pred), 6)
    assert report["recall"] == round(skm.recall_score(y_true, y_pred), 6)
    assert report["f1"] == round(skm.f1_score(y_true, y_pred), 6)
    assert list(report["confusion_matrix"].values()) == skm.confusion_matrix(y_true, y_pred).ravel().tolist()
    fpr, tpr, _ = skm.roc_curve(y_true, probabilities, drop_intermediate=False)
    np.testing.assert_array_equal(evaluate.roc_curve(y_true, probabilities), (fpr, tpr))


def test_metrics_of_more_classes_are_scikit_learns():
    from sklearn import metrics as skm

    rng = np.random.default_rng(4)
    y_true = rng.integers(0, 5, 3000)
    probabilities = rng.random((3000, 5)) + np.eye(5)[y_true] * rng.random((3000, 1))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    y_pred = probabilities.argmax(axis=1)
    classes = [1, 2, 3, "four", "five"]
    report = evaluate.test_metrics("binary_crossentropy", y_true, probabilities.astype("float32"), classes)
    assert report["accuracy"] == round(skm.accuracy_score(y_true, y_pred), 6)
    assert report["macro_f1"] == round(skm.f1_score(y_true, y_pred, average="macro"), 6)
    precision, recall, f1, support = skm.precision_recall_fscore_support(y_true, y_pred)
    for i, name in enumerate(classes):
        assert report["per_class"][str(name)] == {
            "precision": round(precision[i], 6), "recall": round(recall[i], 6), "f1": round(f1[i], 6),
            "support": int(support[i]),
        }
    assert report["confusion_matrix"] == skm.confusion_matrix(y_true, y_pred).tolist()
    assert report["loss"] == round(skm.log_loss(y_true, probabilities), 6)
    assert "roc_auc" not in report
    rows = evaluate.confusion_rows(y_true[:3], probabilities[:3], classes)
    assert rows == sorted([[classes[a], classes[p]] for a, p in zip(y_true[:3], y_pred[:3], strict=True)],
                          key=lambda r: (classes.index(r[0]), classes.index(r[1])))


def test_validation_summary_reports_the_best_epoch():
    assert evaluate.validation_summary(HISTORY) == {
        "best_epoch": 2,
        "best_val_loss": 0.3,
        "val_accuracy_at_best": 0.88,
        "max_val_accuracy": 0.89,
        "epochs": 4,
    }


def test_roc_rows_span_the_unit_square_and_never_fall():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 2, 500)
    probabilities = np.clip(y_true * 0.3 + rng.random(500) * 0.7, 0, 1)
    rows = evaluate.roc_rows(y_true, probabilities)
    assert len(rows) == evaluate.ROC_POINTS
    assert rows[0][0] == 0.0 and rows[-1] == [1.0, 1.0]
    tpr = [t for _, t in rows]
    assert tpr == sorted(tpr)
    assert all(value == round(value, history.PUBLISHED_DECIMALS) for row in rows for value in row)


def test_confusion_rows_are_one_sorted_pair_per_review():
    rows = evaluate.confusion_rows(np.array([1, 0, 1, 0]), np.array([0.9, 0.7, 0.2, 0.1]), ["neg", "pos"])
    assert rows == [[0, 0], [0, 1], [1, 0], [1, 1]]


def test_training_curves_are_drawn_as_the_chapter_draws_them():
    figure = plot.training_curve(HISTORY, "loss", "loss", "Training and validation loss", "Loss")
    axes = figure.axes[0]
    training, validation = axes.get_lines()
    assert (training.get_marker(), training.get_linestyle()) == ("o", "None")
    assert validation.get_linestyle() == "-" and validation.get_marker() in ("None", "", None)
    assert to_rgba(training.get_color()) == to_rgba(validation.get_color()) == to_rgba("b")
    assert list(training.get_xdata()) == [1, 2, 3, 4] and list(validation.get_ydata()) == HISTORY["val_loss"]
    assert axes.get_title() == "Training and validation loss"
    assert (axes.get_xlabel(), axes.get_ylabel()) == ("Epochs", "Loss")
    assert [t.get_text() for t in axes.get_legend().get_texts()] == ["Training loss", "Validation loss"]


def test_encoded_table_carries_num_words_into_vectorize():
    sequences = pa.array([[1, 4, 5, 5], [1, 2]], type=pa.list_(pa.int32()))
    table = vocab.encoded_table(pa.array([1, 0], pa.int8()), sequences, num_words=6)
    counts = table_count_matrix(table)
    assert counts.shape == (2, 6)
    assert counts.toarray().tolist() == [[0, 1, 0, 0, 1, 2], [0, 1, 1, 0, 0, 0]]
    binary = weightings.binary(counts)
    assert binary.toarray().tolist() == [[0, 1, 0, 0, 1, 1], [0, 1, 1, 0, 0, 0]]
    twin = vectorize.features_table(table["label"], binary, weightings.named("binary"))
    assert twin.column_names == ["label", "indices"]
    assert twin["indices"].to_pylist() == [[1, 4, 5], [1, 2]]
    assert twin["label"].to_pylist() == [1, 0]


def test_weighted_features_keep_their_values_in_the_parquet_twin():
    sequences = pa.array([[1, 4, 5, 5], [1, 2]], type=pa.list_(pa.int32()))
    counts = table_count_matrix(vocab.encoded_table(pa.array([1, 0], pa.int8()), sequences, num_words=6))
    twin = vectorize.features_table(pa.array([1, 0], pa.int8()), counts, weightings.named("count"))
    assert twin["values"].to_pylist() == [[1.0, 1.0, 2.0], [1.0, 1.0]]


def test_decoded_samples_show_label_and_words():
    raw = pa.table({"id": [7], "label": ["positive"], "text": ["Just brilliant"]})
    word_index = {"just": 1, "brilliant": 2}
    sequences = pa.array([text.encode("Just brilliant", text.word_to_index(word_index, 100))])
    sample = vocab.decoded_samples(raw, sequences, word_index)
    assert sample == "# train review 0: id 7, label positive\n? just brilliant\n"


def test_a_test_split_of_one_class_has_no_roc_curve_rather_than_nan():
    y_true, probabilities = np.ones(5, int), np.linspace(0.1, 0.9, 5)
    report = evaluate.classification_metrics(y_true, probabilities)
    assert report["roc_auc"] is None and evaluate.roc_rows(y_true, probabilities) == []
    # macro-F1 over the classes among the test reviews and predictions, as scikit-learn's
    from sklearn.metrics import f1_score

    y, p = np.array([0, 0, 1, 1]), np.eye(3, dtype="float32")[[0, 1, 1, 1]]
    assert evaluate.multiclass_metrics(y, p, ["a", "b", "c"])["macro_f1"] == round(f1_score(y, [0, 1, 1, 1],
                                                                                            average="macro"), 6)
