"""Where each stage reads and writes, relative to the project root (mirrored in dvc.yaml)."""

from pathlib import Path

DATA = Path("data")
SOURCES = DATA / "raw" / "sources.json"
MANIFEST = DATA / "manifest.parquet"
REJECTS = DATA / "rejects.parquet"
COMPOSED = DATA / "composed"
FEATURES = DATA / "features"
MODELS = Path("models")
REPORTS = Path("reports")
# Face backbones measured on the same splits by scripts/face_experiments.py (the face report shows them)
FACE_BACKBONE_MEASUREMENTS = Path("docs/measurements/face_backbones.json")


def features_dir(model: str) -> Path:
    return FEATURES / model


def model_dir(model: str) -> Path:
    return MODELS / model


def report_dir(model: str) -> Path:
    return REPORTS / model
