"""The real download and extraction code against a local HTTP server and generated archives."""

import hashlib
import io
import os
import tarfile
import zipfile

import pytest

from emotion_models.data.download import DownloadError, UnsafeArchiveError, download, safe_extract
from emotion_models.data.sources import DatasetUnavailable, fetch_dataset
from emotion_models.params import load_params
from tests.conftest import RAVDESS, REPO, require_shared
from tests.http_server import FileServer


def make_zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def server():
    with FileServer() as running:
        yield running


def test_download_verifies_and_is_idempotent(server, tmp_path):
    server.files["data.zip"] = make_zip({"a/b.txt": b"hello"})
    dest = download(f"{server.url}/data.zip", tmp_path / "data.zip", sha256(server.files["data.zip"]))
    assert dest.read_bytes() == server.files["data.zip"]
    download(f"{server.url}/data.zip", dest, sha256(server.files["data.zip"]))
    assert len(server.requests) == 1  # present and verified: skipped


def test_wrong_checksum_leaves_nothing(server, tmp_path):
    server.files["data.zip"] = b"not what was published"
    with pytest.raises(DownloadError, match="sha256 mismatch"):
        download(f"{server.url}/data.zip", tmp_path / "data.zip", sha256(b"published"))
    assert list(tmp_path.iterdir()) == []


def test_cut_connection_fails_then_resumes_with_range(server, tmp_path):
    body = bytes(range(256)) * 1000
    server.files["big.bin"] = body
    server.cut_once.add("big.bin")
    with pytest.raises(DownloadError):
        download(f"{server.url}/big.bin", tmp_path / "big.bin", sha256(body))
    assert not (tmp_path / "big.bin").exists()
    partial = (tmp_path / "big.bin.part").stat().st_size
    assert 0 < partial < len(body)
    download(f"{server.url}/big.bin", tmp_path / "big.bin", sha256(body))
    assert (tmp_path / "big.bin").read_bytes() == body
    assert server.requests[-1] == ("big.bin", f"bytes={partial}-")


def test_http_error_names_the_url(server, tmp_path):
    with pytest.raises(DownloadError, match="missing.zip"):
        download(f"{server.url}/missing.zip", tmp_path / "missing.zip")


@pytest.mark.parametrize("bad_name", ["../escape.txt", "/etc/evil.txt", "a/../../escape.txt"])
def test_zip_entries_escaping_the_target_are_refused(tmp_path, bad_name):
    archive = tmp_path / "evil.zip"
    archive.write_bytes(make_zip({"ok.txt": b"ok", bad_name: b"evil"}))
    with pytest.raises(UnsafeArchiveError, match="would escape"):
        safe_extract(archive, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.zip"]


def test_tar_links_are_refused(tmp_path):
    archive = tmp_path / "links.tar"
    with tarfile.open(archive, "w") as handle:
        link = tarfile.TarInfo("passwd")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        handle.addfile(link)
    with pytest.raises(UnsafeArchiveError, match="is a link"):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_truncated_archive_leaves_no_partial_folder(tmp_path):
    data = make_zip({f"f{i}.txt": bytes(1000) * (i + 1) for i in range(5)})
    archive = tmp_path / "cut.zip"
    archive.write_bytes(data[: len(data) // 2])
    with pytest.raises(UnsafeArchiveError, match="cut.zip"):
        safe_extract(archive, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.zip"]
    tar_data = io.BytesIO()
    with tarfile.open(fileobj=tar_data, mode="w:gz") as handle:
        info = tarfile.TarInfo("x.bin")
        info.size = 100000
        handle.addfile(info, io.BytesIO(os.urandom(100000)))
    archive = tmp_path / "cut.tar.gz"
    archive.write_bytes(tar_data.getvalue()[:50000])
    with pytest.raises(UnsafeArchiveError):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_ravdess_download_flow_end_to_end(server, tmp_path, monkeypatch):
    """The RAVDESS adapter's Zenodo download, served locally, extracts and scans like the real one."""
    require_shared()
    wavs = sorted((RAVDESS / "Actor_03").glob("*.wav"))[:5]
    server.files["Audio_Speech_Actors_01-24.zip"] = make_zip({f"Actor_03/{p.name}": p.read_bytes() for p in wavs})
    server.files["Audio_Song_Actors_01-24.zip"] = make_zip({})
    monkeypatch.setattr("emotion_models.data.datasets.ravdess.ZENODO", server.url + "/{name}")
    monkeypatch.delenv("EMOTION_DATA_ROOT", raising=False)
    params = load_params(REPO / "params.yaml")
    data = params.data.model_copy(update={"root": str(tmp_path / "nowhere"), "download_dir": str(tmp_path / "raw")})
    source = fetch_dataset("ravdess_audio", data)
    assert source.origin == "download" and source.n_files == 6  # 5 clips + completion marker
    again = fetch_dataset("ravdess_audio", data)
    assert again.fingerprint == source.fingerprint
    assert len(server.requests) == 2  # the second fetch downloaded nothing
    assert not (tmp_path / "raw" / ".archives" / "ravdess_audio" / "Audio_Speech_Actors_01-24.zip").exists()


def test_gated_dataset_says_what_to_place_where(tmp_path, monkeypatch):
    monkeypatch.delenv("EMOTION_DATA_ROOT", raising=False)
    params = load_params(REPO / "params.yaml")
    data = params.data.model_copy(update={"root": str(tmp_path), "download_dir": str(tmp_path / "raw")})
    with pytest.raises(DatasetUnavailable, match=r"fer2013.csv.*EMOTION_FER2013_ROOT"):
        fetch_dataset("fer2013", data)
