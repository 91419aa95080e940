"""CREMA-D: ``AAAA_SSS_EEE_LL`` (actor 1001-1091, sentence, emotion, level).
Sex comes from ``VideoDemographics.csv``. https://github.com/CheyneyComputerScience/CREMA-D"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from emotion_models.data.datasets.base import (
    AUDIO_EXTENSIONS,
    Clip,
    DatasetAdapter,
    NameParseError,
    RemoteFile,
    lookup,
    split_stem,
)

EMOTIONS = {"ANG": "anger", "DIS": "disgust", "FEA": "fear", "HAP": "happy", "NEU": "neutral", "SAD": "sad"}
LEVELS = {"LO", "MD", "HI", "XX"}
CONVENTION = "CREMA-D AAAA_SSS_EEE_LL"
MEDIA_URL = "https://media.githubusercontent.com/media/CheyneyComputerScience/CREMA-D/master/{path}"
RAW_URL = "https://raw.githubusercontent.com/CheyneyComputerScience/CREMA-D/master/{path}"
DEMOGRAPHICS = "VideoDemographics.csv"
LFS_MANIFEST = "lfs_manifest.csv"


def parse_crema_d_name(path: Path, sexes: dict[str, str] | None = None) -> Clip:
    """Label a CREMA-D clip from its four-field name."""
    actor, sentence, emotion_code, level = split_stem(path, "_", 4, CONVENTION)
    if not (actor.isdigit() and 1001 <= int(actor) <= 1091):
        raise NameParseError(f"'{path.name}': actor '{actor}' is outside 1001-1091")
    emotion = lookup(EMOTIONS, emotion_code, "emotion", path)
    if level not in LEVELS:
        raise NameParseError(f"'{path.name}': unknown level '{level}'")
    return Clip(
        path=str(path),
        speaker_id=f"actor{actor}",
        speaker_sex=(sexes or {}).get(actor),
        emotion=emotion,
        attributes={"sentence": sentence, "level": level},
    )


def read_demographics(csv_path: Path) -> dict[str, str]:
    """Actor id -> 'male'/'female' from CREMA-D's VideoDemographics.csv."""
    with csv_path.open(newline="") as handle:
        return {row["ActorID"]: row["Sex"].strip().lower() for row in csv.DictReader(handle)}


def read_lfs_manifest(metadata_dir: Path, folder: str) -> list[RemoteFile]:
    """Media files of one CREMA-D folder with their published sha256."""
    manifest = metadata_dir / LFS_MANIFEST
    if not manifest.is_file():
        raise FileNotFoundError(f"{manifest}: CREMA-D checksum manifest not found (set metadata_dir)")
    with manifest.open(newline="") as handle:
        return [
            RemoteFile(MEDIA_URL.format(path=row["path"]), row["path"], checksum=f"sha256:{row['sha256']}")
            for row in csv.DictReader(handle)
            if row["path"].startswith(folder + "/")
        ]


class _CremaD(DatasetAdapter):
    corpus = "crema_d"
    homepage = "https://github.com/CheyneyComputerScience/CREMA-D"
    folder: str
    _sexes: dict[str, str] = {}

    def remote_files(self, metadata_dir: Path | None) -> list[RemoteFile]:
        if metadata_dir is None:
            raise FileNotFoundError(f"{self.name}: set metadata_dir to a folder holding {LFS_MANIFEST}")
        return [RemoteFile(RAW_URL.format(path=DEMOGRAPHICS), DEMOGRAPHICS)] + read_lfs_manifest(
            metadata_dir, self.folder
        )

    def load_metadata(self, root: Path, metadata_dir: Path | None) -> None:
        for folder in (root, metadata_dir):
            if folder is not None and (folder / DEMOGRAPHICS).is_file():
                self._sexes = read_demographics(folder / DEMOGRAPHICS)
                return
        self._sexes = {}

    def parse(self, path: Path) -> Clip:
        return parse_crema_d_name(path, self._sexes)


class CremaDAudio(_CremaD):
    name = "crema_d_audio"
    modality = "audio"
    extensions = AUDIO_EXTENSIONS
    folder = "AudioWAV"

    def media_files(self, root: Path) -> Iterator[Path]:
        """Each clip once: CREMA-D ships AudioWAV/ and AudioMP3/ copies of one clip name; the
        first container of AUDIO_EXTENSIONS (lossless before MP3) is kept."""
        kept: dict[str, Path] = {}
        for path in super().media_files(root):
            other = kept.get(path.stem)
            if other is None or self.extensions.index(path.suffix.lower()) < self.extensions.index(other.suffix.lower()):
                kept[path.stem] = path
        yield from sorted(kept.values())


class CremaDVideo(_CremaD):
    name = "crema_d_video"
    modality = "video"
    extensions = (".flv",)
    folder = "VideoFlash"
