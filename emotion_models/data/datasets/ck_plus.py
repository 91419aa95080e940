"""CK+: either the CK+48 crops (``<emotion>/Sxxx_sss_fffffff.png``, the folder is the label) or
the original release (``cohn-kanade-images/Sxxx/sss/*.png`` with ``Emotion/Sxxx/sss/*_emotion.txt``
labelling the peak frame). Subject = ``Sxxx``. Registration: https://www.jeffcohn.net/Resources/"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from emotion_models.data.datasets.base import Clip, DatasetAdapter, NameParseError, Reject, lookup

FOLDER_EMOTIONS = {
    "anger": "anger", "contempt": "contempt", "disgust": "disgust", "fear": "fear",
    "happy": "happy", "happiness": "happy", "sadness": "sad", "sad": "sad", "surprise": "surprise",
    "neutral": "neutral",
}
# Emotion/*.txt codes of the original release.
CODE_EMOTIONS = {"0": "neutral", "1": "anger", "2": "contempt", "3": "disgust", "4": "fear",
                 "5": "happy", "6": "sad", "7": "surprise"}
NAME = re.compile(r"^(?P<subject>S\d{3})_(?P<sequence>\d{3})_(?P<frame>\d{8})$")
ORIGINAL_FRAMES = "cohn-kanade-images"  # the original release's 640x490 frames


def parse_ck_plus_name(path: Path) -> Clip:
    """Label a CK+48 image: folder = emotion, name prefix = subject."""
    match = NAME.match(path.stem)
    if match is None:
        raise NameParseError(f"'{path.name}' does not match CK+ Sxxx_sss_ffffffff")
    emotion = lookup(FOLDER_EMOTIONS, path.parent.name.lower(), "emotion folder", path)
    return Clip(path=str(path), speaker_id=match["subject"], emotion=emotion,
                attributes={"sequence": match["sequence"], "frame": match["frame"]})


class CkPlus(DatasetAdapter):
    name = "ck_plus"
    corpus = "ck_plus"
    modality = "face"
    extensions = (".png",)
    homepage = "https://www.jeffcohn.net/Resources/"
    gated = ("CK+ is distributed after registration: place the CK+48 folders (anger, contempt, ...) "
             "or the original cohn-kanade-images/ and Emotion/ folders below one folder.")

    def scan(self, root: Path, metadata_dir: Path | None = None) -> Iterator[Clip | Reject]:
        if (root / "Emotion").is_dir():
            yield from self._scan_original(root)
        else:
            yield from super().scan(root, metadata_dir)

    def parse(self, path: Path) -> Clip:
        return parse_ck_plus_name(path)

    def aligned_face(self, path: Path) -> bool:
        """CK+48 images are 48x48 face crops; the original release's frames (cohn-kanade-images/) are not."""
        return ORIGINAL_FRAMES not in path.parts

    def _scan_original(self, root: Path) -> Iterator[Clip | Reject]:
        for label_file in sorted((root / "Emotion").rglob("*_emotion.txt")):
            stem = label_file.name.removesuffix("_emotion.txt")
            image = root / ORIGINAL_FRAMES / label_file.parent.relative_to(root / "Emotion") / f"{stem}.png"
            try:
                code = str(int(float(label_file.read_text().strip())))
                match = NAME.match(stem)
                if match is None:
                    raise NameParseError(f"'{label_file.name}' does not match CK+ Sxxx_sss_ffffffff")
                if not image.is_file():
                    raise NameParseError(f"'{label_file}': labelled frame {image} is missing")
                emotion = lookup(CODE_EMOTIONS, code, "emotion", label_file)
            except (NameParseError, ValueError) as exc:
                yield Reject(str(label_file), str(exc))
                continue
            yield Clip(path=str(image), speaker_id=match["subject"], emotion=emotion,
                       attributes={"sequence": match["sequence"], "frame": match["frame"]})
