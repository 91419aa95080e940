"""A user's labelled folders: ``<label>/<file>`` or ``<speaker>/<label>/<file>`` below the data root,
in any audio container. Label folder names are matched in lower case through data.folder_labels in
params.yaml (angry, happy, joy, sad...); a name it does not know is a reject that says so.

Speakers keep evaluation honest: in the two-level layout the top folder is the speaker. In the flat
layout nothing says who speaks, so each file is its own unknown speaker (``?<label>/<file stem>``):
nothing is ever pooled per speaker (per-speaker normalisation keeps the single-clip path), and in a
manifest the files are test only (fixed split), never trained on beside possibly the same voices."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from emotion_models.data.datasets.base import AUDIO_EXTENSIONS, Clip, DatasetAdapter, NameParseError, Reject
from emotion_models.labels import DROP, FOLDER_LABELS
from emotion_models.params import DataConfig

LAYOUTS = "<label>/<file> or <speaker>/<label>/<file>"


class LabelledFolders(DatasetAdapter):
    name = "folders"
    corpus = "folders"
    modality = "audio"
    extensions = AUDIO_EXTENSIONS
    homepage = "data.folder_labels in params.yaml for the label folder names"
    gated = f"Put your own clips in label folders ({LAYOUTS}) below one folder."

    def __init__(self, labels: dict[str, str] = FOLDER_LABELS) -> None:
        self.labels = {folder.lower(): emotion for folder, emotion in labels.items()}

    def configured(self, data: DataConfig) -> LabelledFolders:
        return LabelledFolders(data.folder_labels)

    def scan(self, root: Path, metadata_dir: Path | None = None) -> Iterator[Clip | Reject]:
        """Every media file below ``root``, labelled by its folders relative to ``root``."""
        for path in self.media_files(root):
            try:
                yield self.parse_relative(path, path.relative_to(root).parts)
            except NameParseError as exc:
                yield Reject(str(path), str(exc))

    def parse(self, path: Path) -> Clip:
        """Label a file from ``path`` relative to the data root: ``label/file`` or ``speaker/label/file``."""
        return self.parse_relative(path, path.parts)

    def parse_relative(self, path: Path, parts: tuple[str, ...]) -> Clip:
        """Label ``path`` from ``parts``, its folders and name below the data root."""
        if len(parts) not in (2, 3):
            raise NameParseError(f"'{path}': {len(parts) - 1} folders deep below the data root; expected {LAYOUTS}")
        folder = parts[-2]
        emotion = self.labels.get(folder.strip().lower())
        if emotion is None:
            raise NameParseError(f"'{path}': label folder '{folder}' is not in data.folder_labels "
                                 f"(known: {', '.join(sorted(self.labels))})")
        if emotion == DROP:
            raise NameParseError(f"'{path}': label folder '{folder}' is dropped by data.folder_labels")
        if len(parts) == 3:
            return Clip(path=str(path), speaker_id=parts[0], emotion=emotion, attributes={"label_folder": folder})
        return Clip(path=str(path), speaker_id=f"?{folder}/{path.stem}", emotion=emotion,
                    attributes={"label_folder": folder}, fixed_split="test")
