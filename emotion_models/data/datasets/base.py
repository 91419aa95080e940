"""What every dataset adapter provides: where the data comes from and how names carry labels."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from emotion_models.params import DataConfig

Modality = Literal["audio", "face", "video"]
# Audio containers an audio adapter accepts (the media layer decodes them all with PyAV), the
# lossless ones first: where one clip comes in two containers, the first is kept.
AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".m4a", ".aac")


class NameParseError(ValueError):
    """A file name or folder does not follow the dataset's label convention."""


@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset's official distribution."""

    url: str
    filename: str  # relative to the dataset folder
    checksum: str | None = None  # "sha256:<hex>" or "md5:<hex>" where the publisher gives one
    extract: bool = False  # an archive to unpack into the dataset folder


@dataclass(frozen=True)
class Clip:
    """One labelled sample as an adapter sees it (emotion is a classic or extra emotion name)."""

    path: str
    speaker_id: str
    emotion: str
    speaker_sex: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    # A split the corpus itself fixes (FER2013's Usage): "test", or "train" (training or validation,
    # drawn by speaker). None: the seeded speaker split decides.
    fixed_split: Literal["train", "test"] | None = None


@dataclass(frozen=True)
class Reject:
    """A file the adapter could not label, with the reason."""

    path: str
    reason: str


class DatasetAdapter(ABC):
    """Parses one dataset in its original layout; knows its official source."""

    name: str
    corpus: str  # speakers are shared across adapters of one corpus (RAVDESS audio and video)
    modality: Modality
    extensions: tuple[str, ...]
    homepage: str
    gated: str | None = None  # how to obtain the data by hand, when it cannot be downloaded

    def configured(self, data: DataConfig) -> DatasetAdapter:
        """This adapter with the parameters it takes from ``data`` (the labelled folders' label map);
        most adapters take none."""
        return self

    def remote_files(self, metadata_dir: Path | None) -> list[RemoteFile]:
        """The files to download, empty for gated datasets."""
        return []

    def media_files(self, root: Path) -> Iterator[Path]:
        """Every candidate media file below ``root``, in a stable order."""
        for path in sorted(root.rglob("*")):
            if path.suffix.lower() in self.extensions and path.is_file() and not path.name.startswith("."):
                yield path

    @abstractmethod
    def parse(self, path: Path) -> Clip:
        """Label one file from its name (and folders); raise NameParseError if impossible."""

    def scan(self, root: Path, metadata_dir: Path | None = None) -> Iterator[Clip | Reject]:
        """Yield a Clip or a Reject for every media file below ``root``."""
        self.load_metadata(root, metadata_dir)
        for path in self.media_files(root):
            try:
                yield self.parse(path)
            except NameParseError as exc:
                yield Reject(str(path), str(exc))

    def load_metadata(self, root: Path, metadata_dir: Path | None) -> None:
        """Read side files (demographics) before scanning; most datasets have none."""

    def missing_instructions(self, target: Path) -> str:
        """One paragraph telling a user how to obtain a gated dataset."""
        return (
            f"{self.name}: data not found at {target}. {self.gated} "
            f"Then set data.datasets.{self.name}.root in params.yaml (or the environment "
            f"variable EMOTION_{self.name.upper()}_ROOT) to that folder. See {self.homepage}"
        )

    def aligned_face(self, path: Path) -> bool:
        """Whether the image at ``path`` is already an aligned face crop (taken whole, never searched
        for a face); video frames and full photos are not."""
        return False


def split_stem(path: Path, sep: str, count: int, convention: str) -> list[str]:
    """Split a file stem into exactly ``count`` fields or raise NameParseError."""
    parts = path.stem.split(sep)
    if len(parts) != count:
        raise NameParseError(f"'{path.name}' does not match {convention}")
    return parts


def lookup(table: dict[str, str], key: str, what: str, path: Path) -> str:
    """``table[key]`` or a NameParseError naming the unknown field."""
    try:
        return table[key]
    except KeyError:
        raise NameParseError(f"'{path.name}': unknown {what} code '{key}'") from None
