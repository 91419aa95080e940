"""FER2013 in either of its releases:

- the Kaggle image folders: ``train/<emotion>/Training_*.jpg``, ``test/<emotion>/PublicTest_*.jpg``
  (and ``PrivateTest_*.jpg`` where present); the folder is the label and the file-name prefix is
  the csv release's ``Usage``;
- the csv release: one ``fer2013.csv`` (emotion, pixels as 2304 space-separated grey values, Usage).

``Usage`` fixes the split, as the challenge did: Training images train (validation is drawn from
them), PublicTest and PrivateTest images are test images. FER2013 has no subject ids: every image
is treated as its own subject, so speaker-independent splits cannot guard against the same
person appearing twice. Kaggle: https://www.kaggle.com/datasets/msambare/fer2013 (image folders),
'challenges-in-representation-learning-facial-expression-recognition-challenge' (csv).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path

from emotion_models.data.datasets.base import Clip, DatasetAdapter, NameParseError, Reject, lookup

EMOTIONS = {"0": "anger", "1": "disgust", "2": "fear", "3": "happy", "4": "sad", "5": "surprise", "6": "neutral"}
FOLDER_EMOTIONS = {"angry": "anger", "anger": "anger", "disgust": "disgust", "fear": "fear", "happy": "happy",
                   "neutral": "neutral", "sad": "sad", "surprise": "surprise"}
USAGE_SPLITS = {"Training": "train", "PublicTest": "test", "PrivateTest": "test"}
CSV_NAME = "fer2013.csv"
ROW_SEP = "#row="
NAME = re.compile(r"^(?P<usage>Training|PublicTest|PrivateTest)_(?P<number>\d+)$")


def fer2013_row_path(csv_path: Path, row: int) -> str:
    """The manifest path of one FER2013 image: the csv plus its row number."""
    return f"{csv_path}{ROW_SEP}{row}"


def parse_fer2013_name(path: Path) -> Clip:
    """Label one image of the Kaggle folders: folder = emotion, ``Usage_N`` name = split; own subject."""
    match = NAME.match(path.stem)
    if match is None:
        raise NameParseError(f"'{path.name}' does not match FER2013 {{Training,PublicTest,PrivateTest}}_N")
    emotion = lookup(FOLDER_EMOTIONS, path.parent.name.lower(), "emotion folder", path)
    # The Kaggle release has a few equal names in two emotion folders (different images).
    return Clip(path=str(path), speaker_id=f"{path.parent.name}-{path.stem}", emotion=emotion,
                attributes={"usage": match["usage"]}, fixed_split=USAGE_SPLITS[match["usage"]])


class Fer2013(DatasetAdapter):
    name = "fer2013"
    corpus = "fer2013"
    modality = "face"
    extensions = (".jpg", ".jpeg", ".png")
    homepage = "https://www.kaggle.com/c/challenges-in-representation-learning-facial-expression-recognition-challenge"
    gated = (f"FER2013 is a Kaggle download (account needed): place its train/ and test/ image folders, "
             f"or {CSV_NAME}, in one folder.")

    def parse(self, path: Path) -> Clip:
        return parse_fer2013_name(path)

    def aligned_face(self, path: Path) -> bool:
        """Every FER2013 image (file or csv row) is a 48x48 face crop."""
        return True

    def scan(self, root: Path, metadata_dir: Path | None = None) -> Iterator[Clip | Reject]:
        csv_path = root / CSV_NAME
        if csv_path.is_file():
            yield from self._scan_csv(csv_path)
        else:
            yield from super().scan(root, metadata_dir)

    def _scan_csv(self, csv_path: Path) -> Iterator[Clip | Reject]:
        with csv_path.open(newline="") as handle:
            for row_number, row in enumerate(csv.DictReader(handle)):
                path = fer2013_row_path(csv_path, row_number)
                emotion = EMOTIONS.get((row.get("emotion") or "").strip())
                usage = (row.get("Usage") or "").strip()
                pixels = (row.get("pixels") or "").split()
                if emotion is None:
                    yield Reject(path, f"unknown emotion code '{row.get('emotion')}'")
                elif usage not in USAGE_SPLITS:
                    yield Reject(path, f"unknown Usage '{usage}' (expected {', '.join(USAGE_SPLITS)})")
                elif len(pixels) != 48 * 48:
                    yield Reject(path, f"expected 2304 pixel values, found {len(pixels)}")
                else:
                    yield Clip(path=path, speaker_id=f"img{row_number:05d}", emotion=emotion,
                               attributes={"usage": usage}, fixed_split=USAGE_SPLITS[usage])
