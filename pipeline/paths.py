"""Every file the stages exchange, relative to the project root (where dvc.yaml is).

DVC runs each stage with the project root as working directory, so relative
paths keep the pipeline movable (clones, `dvc exp run --queue` copies).
"""
from pathlib import Path

PARAMS = Path("params.yaml")

RAW_DIR = Path("data/raw")
VOCAB_DIR = Path("data/vocab")
ENCODED_DIR = Path("data/encoded")
FEATURES_DIR = Path("data/features")
VALIDATION_DIR = Path("data/validation")
MODEL_DIR = Path("data/model")
EVALUATION_DIR = Path("data/evaluation")
PREDICTIONS_DIR = Path("data/predictions")
BUNDLE_DIR = Path("data/bundle")
METRICS_DIR = Path("metrics")
# Fits made before, kept by what determines them (pipeline/memo.py): not DVC's, not git's.
MEMO_DIR = Path("data/memo")

SPLITS = ("train", "test")

WORD_INDEX = VOCAB_DIR / "word_index.json"
CLASSES = VOCAB_DIR / "classes.json"  # the training split's labels, sorted: a label is an index in it
DECODED_SAMPLES = VOCAB_DIR / "decoded_samples.txt"
IDF = FEATURES_DIR / "idf.npy"
MODEL = MODEL_DIR / "model.keras"
# The inference bundle (pipeline/inference.py): as trained, then with its test
# metrics, the artifact imdb-predict reads and `dvc artifacts get` hands out.
TRAINED_BUNDLE = MODEL_DIR / "bundle.npz"
BUNDLE = BUNDLE_DIR / "imdb-sentiment.npz"
# The sha256 of the params.yaml evaluate found BUNDLE built with (empty if it was not):
# imdb-predict parses params.yaml to compare it with the bundle only when it differs.
BUNDLE_PARAMS_DIGEST = BUNDLE_DIR / "params.sha256"
TEST_PREDICTIONS = PREDICTIONS_DIR / "test.parquet"

# train and evaluate write DVC-cached files, so DVC's run-cache can restore those
# stages (it skips any stage with an uncached output); plot publishes git-tracked
# copies in metrics/, so results diff in a plain clone.
# DVCLive's record of each epoch, as the fits run (pipeline/history.py reads it).
VALIDATION_LIVE = VALIDATION_DIR / "live"
TRAINING_LIVE = MODEL_DIR / "live"
RUN_METRICS = EVALUATION_DIR / "metrics.json"
RUN_ROC = EVALUATION_DIR / "roc.csv"
RUN_CONFUSION = EVALUATION_DIR / "confusion.csv"

HISTORY = METRICS_DIR / "history.csv"
METRICS = METRICS_DIR / "metrics.json"
ROC = METRICS_DIR / "roc.csv"
CONFUSION = METRICS_DIR / "confusion.csv"
PUBLISHED = {RUN_METRICS: METRICS, RUN_ROC: ROC, RUN_CONFUSION: CONFUSION}  # copied as they are
LOSS_FIGURE = METRICS_DIR / "loss.png"
ACCURACY_FIGURE = METRICS_DIR / "accuracy.png"


def raw(split: str) -> Path:
    return RAW_DIR / f"{split}.parquet"


def encoded(split: str) -> Path:
    return ENCODED_DIR / f"{split}.parquet"


def features_npz(split: str) -> Path:
    return FEATURES_DIR / f"{split}.npz"


def features_parquet(split: str) -> Path:
    return FEATURES_DIR / f"{split}.parquet"


def labels(split: str) -> Path:
    """The split's labels on their own: the model stages read these, not the parquet
    twin, so a clone that runs only them fetches a few kilobytes instead of its copy
    of the matrix."""
    return FEATURES_DIR / f"{split}-labels.npy"
