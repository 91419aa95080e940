"""Change detection for scheduled folder scans: only new or changed files are read and hashed.

A scan lists the video files below some folders with one ``stat`` each. The fingerprint cache,
``OUT/cache/fingerprints.parquet``, maps each file's (path, size, mtime_ns, inode) to the sha256
of its content as last read; a file whose fingerprint is unchanged keeps its hash without being
opened. A changed size or modification time, or a new inode (a file replaced by a rename, as
rsync and most editors do) makes it new again: it is read and hashed once more. The output
contract does not change: outputs stay keyed by content hash + model version.

A file modified less than ``RACY_SECONDS`` before it was looked at is hashed but not cached: a
second write within the file system's timestamp granularity could change its content and leave
its fingerprint as it was (git's "racily clean" problem). The checkpoints' hash, from which the
model version is made, is cached the same way (emotion_models.scoring.model_identity).

The cache is rewritten atomically after each scan; two runs writing it at once lose at worst
some entries, which the next scan hashes again.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from emotion_models.errors import MissingInput
from emotion_models.files import display_path

RACY_SECONDS = 2.0
CACHE_DIR = "cache"
HASH_THREADS = 4  # reading is mostly waiting for storage; sha256 releases the GIL


@dataclass(frozen=True)
class Fingerprint:
    """What ``stat`` says about a file; ``size`` is -1 when it could not be stat'ed."""

    path: str
    size: int
    mtime_ns: int
    inode: int
    device: int = 0  # only to spot hard links within one scan; not part of the cached key

    @property
    def key(self) -> tuple[int, int, int]:
        return self.size, self.mtime_ns, self.inode

    @classmethod
    def of(cls, path: str | os.PathLike, stat: os.stat_result | None = None) -> Fingerprint:
        try:
            stat = stat or os.stat(path)
        except OSError:
            return cls(str(path), -1, 0, 0)
        return cls(str(path), stat.st_size, stat.st_mtime_ns, stat.st_ino, stat.st_dev)


def content_hash(path: str | os.PathLike) -> str:
    """sha256 of the file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def check_folders(folders: Iterable[str | os.PathLike]) -> None:
    """Raise MissingInput naming the first input folder that is missing or not a folder."""
    for folder in folders:
        if not Path(folder).is_dir():
            raise MissingInput(f"{display_path(folder)}: input folder not found")


def scan_videos(folders: Iterable[str | os.PathLike], extensions: Iterable[str]) -> list[Fingerprint]:
    """Every file below ``folders`` (recursive; symlinked folders are not followed) with a video
    extension, as absolute paths, sorted, without duplicates, stat'ed once. A symbolic link to a file
    is listed under its own path, never its target's (a dangling one too: it cannot be stat'ed)."""
    folders = list(folders)
    check_folders(folders)
    wanted = {e.lower() for e in extensions}
    found: dict[str, Fingerprint] = {}
    for folder in folders:
        pending = [os.path.abspath(folder)]
        while pending:
            try:
                with os.scandir(pending.pop()) as entries:
                    for entry in entries:
                        if entry.is_dir(follow_symlinks=False):
                            pending.append(entry.path)
                        elif (os.path.splitext(entry.name)[1].lower() in wanted and not entry.is_dir()
                              and entry.path not in found):
                            found[entry.path] = Fingerprint.of(entry.path)
            except OSError:
                continue  # an unreadable sub-folder holds nothing we can score
    return [found[p] for p in sorted(found)]


class FingerprintCache:
    """(path, size, mtime_ns, inode) -> content hash, stored under ``OUT/cache/``; paths are kept as
    their bytes (a Linux file name need not be UTF-8)."""

    def __init__(self, out: str | os.PathLike) -> None:
        self.file = Path(out) / CACHE_DIR / "fingerprints.parquet"
        self._entries: dict[str, tuple[tuple[int, int, int], str]] = {}
        if self.file.is_file():
            import polars as pl

            try:
                table = pl.read_parquet(self.file)
            except Exception:  # a damaged cache costs one full rehash, never a failed run
                table = None
            if table is not None:
                self._entries = {os.fsdecode(path): ((size, mtime, inode), digest)
                                 for path, size, mtime, inode, digest in
                                 zip(*(table[c].to_list() for c in ("path", "size", "mtime_ns", "inode",
                                                                    "content_hash")))}

    def lookup(self, fingerprint: Fingerprint) -> str | None:
        """The cached hash when the file is unchanged, else None."""
        entry = self._entries.get(fingerprint.path)
        return entry[1] if entry and fingerprint.size >= 0 and entry[0] == fingerprint.key else None

    def update(self, hashed: dict[Fingerprint, str], scanned_roots: Iterable[str], now_ns: int) -> None:
        """Record this scan: entries below ``scanned_roots`` not seen in it are gone (deleted files),
        entries elsewhere (other folders scored into the same OUT) are kept."""
        roots = tuple(os.path.join(os.path.abspath(r), "") for r in scanned_roots)
        self._entries = {path: entry for path, entry in self._entries.items() if not path.startswith(roots)}
        racy = now_ns - int(RACY_SECONDS * 1e9)
        self._entries.update({f.path: (f.key, digest) for f, digest in hashed.items()
                              if f.size >= 0 and f.mtime_ns < racy})

    def save(self) -> None:
        import polars as pl

        from emotion_models import atomic

        paths = list(self._entries)
        keys = [self._entries[p][0] for p in paths]
        atomic.write_parquet(self.file, pl.DataFrame(
            {"path": [os.fsencode(p) for p in paths], "size": [k[0] for k in keys], "mtime_ns": [k[1] for k in keys],
             "inode": [k[2] for k in keys], "content_hash": [self._entries[p][1] for p in paths]},
            schema={"path": pl.Binary, "size": pl.Int64, "mtime_ns": pl.Int64, "inode": pl.UInt64,
                    "content_hash": pl.Utf8}))


@dataclass
class Scan:
    """The files of one scan with their content hashes (None where the file cannot be read)."""

    files: list[Fingerprint]
    digests: dict[str, str | None]
    hashed: int  # files read and hashed in this scan (new or changed)
    errors: dict[str, str]  # path -> why it could not be read


def scan_and_hash(folders: list[str], extensions: Iterable[str], out: str | os.PathLike,
                  threads: int = HASH_THREADS) -> Scan:
    """Scan ``folders`` and give every file its content hash, reading only files whose fingerprint
    is not in the cache (hard links of one file are read once), then save the cache."""
    started = time.time_ns()
    files = scan_videos(folders, extensions)
    cache = FingerprintCache(out)
    digests = {f.path: cache.lookup(f) for f in files}
    known = {f: digests[f.path] for f in files if digests[f.path] is not None}
    by_inode: dict[tuple, list[Fingerprint]] = {}
    for f in files:
        if digests[f.path] is None and f.size >= 0:
            by_inode.setdefault((f.device, *f.key), []).append(f)
    errors = {f.path: f"{f.path}: cannot read file (stat failed)" for f in files if f.size < 0}

    def read(group: list[Fingerprint]) -> tuple[list[Fingerprint], str | None, str | None]:
        try:
            return group, content_hash(group[0].path), None
        except OSError as exc:
            return group, None, f"{group[0].path}: cannot read file ({exc.strerror or exc})"

    fresh: dict[Fingerprint, str] = {}
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        for group, digest, error in pool.map(read, by_inode.values()):
            for f in group:
                digests[f.path] = digest
                if digest is None:
                    errors[f.path] = error
                else:
                    fresh[f] = digest
    cache.update({**known, **fresh}, folders, started)
    cache.save()
    return Scan(files, digests, sum(len(g) for g in by_inode.values()), errors)
