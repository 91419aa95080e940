"""FER2013: one ``fer2013.csv`` (emotion, pixels as 2304 space-separated grey values, Usage).
It has no subject ids: every image is treated as its own subject, so speaker-independent
splits cannot guard against the same person appearing twice. Kaggle:
https://www.kaggle.com/datasets/msambare/fer2013 (the csv release: 'challenges-in-representation-learning-facial-expression-recognition-challenge')."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from emotion_models.data.datasets.base import Clip, DatasetAdapter, NameParseError, Reject

EMOTIONS = {"0": "anger", "1": "disgust", "2": "fear", "3": "happy", "4": "sad", "5": "surprise", "6": "neutral"}
CSV_NAME = "fer2013.csv"
ROW_SEP = "#row="


def fer2013_row_path(csv_path: Path, row: int) -> str:
    """The manifest path of one FER2013 image: the csv plus its row number."""
    return f"{csv_path}{ROW_SEP}{row}"


class Fer2013(DatasetAdapter):
    name = "fer2013"
    corpus = "fer2013"
    modality = "face"
    extensions = (".csv",)
    homepage = "https://www.kaggle.com/c/challenges-in-representation-learning-facial-expression-recognition-challenge"
    gated = f"FER2013 is a Kaggle download (account needed): place {CSV_NAME} in one folder."

    def parse(self, path: Path) -> Clip:  # rows, not files, are samples
        raise NameParseError(f"'{path.name}': FER2013 samples are rows of {CSV_NAME}")

    def scan(self, root: Path, metadata_dir: Path | None = None) -> Iterator[Clip | Reject]:
        csv_path = root / CSV_NAME
        if not csv_path.is_file():
            yield Reject(str(csv_path), f"{CSV_NAME} not found in {root}")
            return
        with csv_path.open(newline="") as handle:
            for row_number, row in enumerate(csv.DictReader(handle)):
                path = fer2013_row_path(csv_path, row_number)
                emotion = EMOTIONS.get((row.get("emotion") or "").strip())
                pixels = (row.get("pixels") or "").split()
                if emotion is None:
                    yield Reject(path, f"unknown emotion code '{row.get('emotion')}'")
                elif len(pixels) != 48 * 48:
                    yield Reject(path, f"expected 2304 pixel values, found {len(pixels)}")
                else:
                    yield Clip(path=path, speaker_id=f"img{row_number:05d}", emotion=emotion,
                               attributes={"usage": (row.get("Usage") or "").strip()})
