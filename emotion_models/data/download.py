"""HTTP download with resume and checksum, and archive extraction that cannot escape its folder.

Every write goes to a temporary name first and is renamed into place only when complete and
verified, so an interrupted run never leaves a file or folder that looks finished.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

import requests

CHUNK = 1 << 20
NETWORK_CHUNK = 1 << 16  # small, so a cut connection keeps most of what arrived


class DownloadError(RuntimeError):
    """A download failed or its content does not match the published checksum."""


class UnsafeArchiveError(RuntimeError):
    """An archive entry would land outside the target folder, or the archive is corrupt."""


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    digest = hashlib.new(algorithm)
    with path.open("rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def verify_checksum(path: Path, checksum: str | None) -> None:
    """Raise DownloadError unless ``path`` matches ``checksum`` ("sha256:<hex>" / "md5:<hex>")."""
    if checksum is None:
        return
    algorithm, _, expected = checksum.partition(":")
    actual = file_digest(path, algorithm)
    if actual != expected.lower():
        raise DownloadError(f"{path}: {algorithm} mismatch (expected {expected}, got {actual})")


def download(url: str, dest: Path, checksum: str | None = None, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest``, resuming a previous partial download, then verify it.

    A present file that verifies is not downloaded again. A partial download lives in
    ``dest.part`` and is continued with an HTTP Range request; a corrupt result is deleted.
    """
    dest = Path(dest)
    if dest.is_file():
        try:
            verify_checksum(dest, checksum)
            return dest
        except DownloadError:
            dest.unlink()
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    try:
        with requests.get(url, stream=True, timeout=timeout, headers=headers) as response:
            if response.status_code == 416:  # the part is already complete
                pass
            else:
                response.raise_for_status()
                resumed = offset and response.status_code == 206
                expected = response.headers.get("Content-Length")
                written = 0
                with part.open("ab" if resumed else "wb") as handle:
                    for block in response.iter_content(NETWORK_CHUNK):
                        handle.write(block)
                        written += len(block)
                if expected is not None and written != int(expected):
                    raise DownloadError(f"{url}: connection closed after {written} of {expected} bytes")
    except requests.RequestException as exc:
        raise DownloadError(f"{url}: {exc}") from exc
    try:
        verify_checksum(part, checksum)
    except DownloadError:
        part.unlink()
        raise
    os.replace(part, dest)
    return dest


def _check_member(name: str, target: Path) -> None:
    posix = PurePosixPath(name.replace("\\", "/"))
    if posix.is_absolute() or ".." in posix.parts or (posix.parts and posix.parts[0].endswith(":")):
        raise UnsafeArchiveError(f"entry '{name}' would escape {target}")


def safe_extract(archive: Path, target: Path) -> Path:
    """Unpack a zip or tar archive into ``target``, refusing entries that escape it.

    Absolute paths, ``..`` components and links are refused. Extraction happens in a temporary
    sibling folder that is renamed to ``target`` only on success (contents are merged into an
    existing ``target``); on any error nothing is left behind.
    """
    archive, target = Path(archive), Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        if zipfile.is_zipfile(archive):
            _extract_zip(archive, staging)
        elif tarfile.is_tarfile(archive):
            _extract_tar(archive, staging)
        else:
            raise UnsafeArchiveError(f"{archive}: not a zip or tar archive (truncated or corrupt?)")
        if target.exists():
            for item in staging.iterdir():
                destination = target / item.name
                if destination.exists():
                    shutil.rmtree(destination) if destination.is_dir() else destination.unlink()
                os.replace(item, destination)
            staging.rmdir()
        else:
            os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _extract_zip(archive: Path, staging: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as handle:
            for info in handle.infolist():
                _check_member(info.filename, staging)
                mode = (info.external_attr >> 16) & 0o170000
                if mode == 0o120000:
                    raise UnsafeArchiveError(f"{archive}: entry '{info.filename}' is a symbolic link")
            bad = handle.testzip()
            if bad is not None:
                raise UnsafeArchiveError(f"{archive}: entry '{bad}' is corrupt (CRC mismatch)")
            handle.extractall(staging)
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise UnsafeArchiveError(f"{archive}: corrupt or truncated zip ({exc})") from exc


def _extract_tar(archive: Path, staging: Path) -> None:
    try:
        with tarfile.open(archive) as handle:
            members = handle.getmembers()
            for member in members:
                _check_member(member.name, staging)
                if member.issym() or member.islnk():
                    raise UnsafeArchiveError(f"{archive}: entry '{member.name}' is a link")
                if not (member.isfile() or member.isdir()):
                    raise UnsafeArchiveError(f"{archive}: entry '{member.name}' is not a file or folder")
            handle.extractall(staging, members=members, filter="data")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise UnsafeArchiveError(f"{archive}: corrupt or truncated tar ({exc})") from exc
