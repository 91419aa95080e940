"""RAF-DB (basic): ``EmoLabel/list_patition_label.txt`` lines ``train_00001.jpg 5`` with codes
1 Surprise, 2 Fear, 3 Disgust, 4 Happiness, 5 Sadness, 6 Anger, 7 Neutral; images in
``Image/aligned/<name>_aligned.jpg`` or ``Image/original/<name>``. No subject ids: each image
is its own subject. The aligned images are face crops (taken whole, never searched for a face).
Access on request: http://www.whdeng.cn/raf/model1.html"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from emotion_models.data.datasets.base import Clip, DatasetAdapter, NameParseError, Reject

EMOTIONS = {"1": "surprise", "2": "fear", "3": "disgust", "4": "happy", "5": "sad", "6": "anger", "7": "neutral"}
LABEL_FILE = Path("EmoLabel") / "list_patition_label.txt"  # sic: the dataset's spelling


def image_candidates(root: Path, name: str) -> list[Path]:
    stem = Path(name).stem
    return [root / "Image" / "aligned" / f"{stem}_aligned.jpg", root / "Image" / "original" / name]


class RafDb(DatasetAdapter):
    name = "raf_db"
    corpus = "raf_db"
    modality = "face"
    extensions = (".jpg",)
    homepage = "http://www.whdeng.cn/raf/model1.html"
    gated = "RAF-DB is released on request to its authors: unpack the 'basic' folder (EmoLabel/, Image/)."

    def aligned_face(self, path: Path) -> bool:
        """Image/aligned/ holds the official aligned 100x100 crops; Image/original/ the full photos."""
        return path.parent.name == "aligned"

    def parse(self, path: Path) -> Clip:
        raise NameParseError(f"'{path.name}': RAF-DB labels come from {LABEL_FILE}")

    def scan(self, root: Path, metadata_dir: Path | None = None) -> Iterator[Clip | Reject]:
        label_file = root / LABEL_FILE
        if not label_file.is_file():
            yield Reject(str(label_file), f"label list {LABEL_FILE} not found in {root}")
            return
        for line_number, line in enumerate(label_file.read_text().splitlines(), start=1):
            fields = line.split()
            if not fields:
                continue
            where = f"{label_file}:{line_number}"
            if len(fields) != 2 or fields[1] not in EMOTIONS:
                yield Reject(where, f"expected '<image> <1-7>', got '{line.strip()}'")
                continue
            image = next((p for p in image_candidates(root, fields[0]) if p.is_file()), None)
            if image is None:
                yield Reject(where, f"image {fields[0]} not found under Image/aligned or Image/original")
                continue
            yield Clip(path=str(image), speaker_id=Path(fields[0]).stem, emotion=EMOTIONS[fields[1]],
                       attributes={"official_split": fields[0].split("_")[0]})
