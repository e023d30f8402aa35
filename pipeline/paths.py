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
MODEL_DIR = Path("data/model")
PREDICTIONS_DIR = Path("data/predictions")
METRICS_DIR = Path("metrics")

SPLITS = ("train", "test")

WORD_INDEX = VOCAB_DIR / "word_index.json"
DECODED_SAMPLES = VOCAB_DIR / "decoded_samples.txt"
IDF = FEATURES_DIR / "idf.npy"
MODEL = MODEL_DIR / "model.keras"
TEST_PREDICTIONS = PREDICTIONS_DIR / "test.parquet"

HISTORY = METRICS_DIR / "history.csv"
METRICS = METRICS_DIR / "metrics.json"
ROC = METRICS_DIR / "roc.csv"
CONFUSION = METRICS_DIR / "confusion.csv"
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
