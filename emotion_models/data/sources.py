"""Where each enabled dataset lives: a local copy, or a verified download."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from emotion_models.data.datasets import DatasetAdapter, get_adapter
from emotion_models.data.download import DownloadError, download, safe_extract, verify_checksum
from emotion_models.params import DataConfig

log = logging.getLogger(__name__)
COMPLETE_MARKER = ".download-complete.json"


class DatasetUnavailable(RuntimeError):
    """An enabled dataset is neither present locally nor downloadable; the message says what to do."""


@dataclass(frozen=True)
class DatasetSource:
    """A resolved dataset: its folder, how it got there and a fingerprint of its files."""

    name: str
    root: str
    origin: str  # "local" or "download"
    metadata_dir: str | None
    n_files: int
    fingerprint: str
    corrupt: tuple[str, ...] = ()  # local files that fail their published checksum

    def to_dict(self) -> dict:
        return asdict(self)


def _env_name(name: str) -> str:
    return f"EMOTION_{name.upper()}_ROOT"


def resolve_root(name: str, data: DataConfig) -> tuple[Path, str]:
    """The folder of dataset ``name`` and whether it is a "local" copy or a "download" target.

    Precedence: ``$EMOTION_<NAME>_ROOT``, ``data.datasets.<name>.root``, then
    ``($EMOTION_DATA_ROOT or data.root)/<dir>`` if it exists, else ``data.download_dir/<dir>``.
    """
    config = data.datasets[name]
    explicit = os.environ.get(_env_name(name)) or config.root
    if explicit:
        return Path(explicit), "local"
    local = Path(os.environ.get("EMOTION_DATA_ROOT", data.root)) / config.dir
    if local.exists():
        return local, "local"
    return Path(data.download_dir) / config.dir, "download"


def resolve_metadata_dir(name: str, data: DataConfig) -> Path | None:
    config = data.datasets[name]
    if config.metadata_dir is None:
        return None
    path = Path(config.metadata_dir)
    return path if path.is_absolute() else Path(os.environ.get("EMOTION_DATA_ROOT", data.root)) / path


def fingerprint(root: Path) -> tuple[int, str]:
    """Number of files below ``root`` and a hash of their relative paths and sizes."""
    digest = hashlib.sha256()
    count = 0
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        count += 1
        digest.update(f"{path.relative_to(root)}\0{path.stat().st_size}\n".encode())
    return count, digest.hexdigest()


def _verify_local(adapter: DatasetAdapter, root: Path, metadata_dir: Path | None) -> list[str]:
    """Local media files whose published checksum does not match."""
    try:
        known = {Path(f.filename).name: f.checksum for f in adapter.remote_files(metadata_dir) if f.checksum}
    except FileNotFoundError:
        return []
    bad = []
    for path in adapter.media_files(root):
        if path.name in known:
            try:
                verify_checksum(path, known[path.name])
            except DownloadError as exc:
                log.warning("%s", exc)
                bad.append(str(path))
    return bad


def _download_into(adapter: DatasetAdapter, root: Path, metadata_dir: Path | None) -> None:
    if (root / COMPLETE_MARKER).is_file():
        return
    files = adapter.remote_files(metadata_dir)
    if not files:
        raise DatasetUnavailable(adapter.missing_instructions(root))
    root.mkdir(parents=True, exist_ok=True)
    for remote in files:
        if remote.extract:
            archive = download(remote.url, root.parent / ".archives" / adapter.name / remote.filename, remote.checksum)
            safe_extract(archive, root)
            archive.unlink()
        else:
            download(remote.url, root / remote.filename, remote.checksum)
    tmp = root / (COMPLETE_MARKER + ".tmp")
    tmp.write_text(json.dumps({"files": [f.filename for f in files]}))
    os.replace(tmp, root / COMPLETE_MARKER)


def fetch_dataset(name: str, data: DataConfig) -> DatasetSource:
    """Make dataset ``name`` available: use the local copy or download, verify, and fingerprint it."""
    adapter = get_adapter(name)
    root, origin = resolve_root(name, data)
    metadata_dir = resolve_metadata_dir(name, data)
    corrupt: list[str] = []
    if origin == "local":
        if not root.is_dir():
            raise DatasetUnavailable(f"{name}: configured folder {root} does not exist")
        corrupt = _verify_local(adapter, root, metadata_dir)
    else:
        log.info("%s: downloading into %s", name, root)
        _download_into(adapter, root, metadata_dir)
    n_files, digest = fingerprint(root)
    if n_files == 0:
        raise DatasetUnavailable(adapter.missing_instructions(root))
    return DatasetSource(name, str(root.resolve()), origin, str(metadata_dir) if metadata_dir else None,
                         n_files, digest, tuple(corrupt))
