"""Change detection: a rescan reads only new or changed files; the model version is cached the same way."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import polars as pl
import pytest

from emotion_models.params import FusionConfig
from emotion_models.scoring import fingerprints
from emotion_models.scoring.fingerprints import FingerprintCache, scan_and_hash, scan_videos
from emotion_models.scoring.model_identity import ModelsUnavailable, checkpoints_digest, model_version
from emotion_models.scoring.outputs import output_key, plan_batch, reject_key

EXTENSIONS = [".mp4", ".flv"]
PAST = time.time() - 3600  # well before the scan: not "racily clean"


@pytest.fixture
def hashed(monkeypatch) -> list[str]:
    """The paths whose content the scan read, in order."""
    calls: list[str] = []
    real = fingerprints.content_hash

    def counting(path):
        calls.append(str(path))
        return real(path)

    monkeypatch.setattr(fingerprints, "content_hash", counting)
    return calls


def make(path: Path, content: bytes, mtime: float = PAST) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    os.utime(path, (mtime, mtime))
    return path


@pytest.fixture
def folder(tmp_path) -> Path:
    inbox = tmp_path / "inbox"
    for i in range(5):
        make(inbox / f"clip{i}.mp4", f"video {i}".encode())
    make(inbox / "nested" / "deeper" / "Clip ü.FLV", b"nested video")
    make(inbox / "notes.txt", b"not a video")
    return inbox


def test_scan_is_recursive_filters_extensions_and_lists_symlinks_under_their_own_path(folder, tmp_path):
    elsewhere = make(tmp_path / "elsewhere" / "real.mp4", b"linked video")
    (folder / "link.mp4").symlink_to(elsewhere)
    (folder / "loop").symlink_to(folder)  # symlinked folders are not followed
    paths = [f.path for f in scan_videos([folder], EXTENSIONS)]
    assert paths == sorted(paths) and len(paths) == len(set(paths)) == 7
    assert str(folder / "link.mp4") in paths and str(elsewhere) not in paths
    assert not any("notes" in p or "loop" in p for p in paths)
    assert str(folder / "nested" / "deeper" / "Clip ü.FLV") in paths
    with pytest.raises(FileNotFoundError, match="input folder not found"):
        scan_videos([folder / "missing"], EXTENSIONS)


def test_rescan_of_unchanged_files_reads_no_file(folder, tmp_path, hashed):
    out = tmp_path / "out"
    first = scan_and_hash([str(folder)], EXTENSIONS, out)
    assert first.hashed == 6 and len(hashed) == 6
    assert first.digests[str(folder / "clip0.mp4")] == hashlib.sha256(b"video 0").hexdigest()
    hashed.clear()
    again = scan_and_hash([str(folder)], EXTENSIONS, out)
    assert hashed == [] and again.hashed == 0
    assert again.digests == first.digests


def test_a_name_that_is_not_utf8_is_cached_and_found_again(folder, tmp_path, hashed):
    odd = make(Path(os.fsdecode(os.fsencode(folder) + b"/copy \xff.mp4")), b"odd name")  # legal on Linux
    out = tmp_path / "out"
    first = scan_and_hash([str(folder)], EXTENSIONS, out)
    assert first.digests[str(odd)] == hashlib.sha256(b"odd name").hexdigest()
    hashed.clear()
    assert scan_and_hash([str(folder)], EXTENSIONS, out).digests == first.digests and hashed == []


def test_changed_size_mtime_or_inode_rehashes_only_that_file(folder, tmp_path, hashed):
    out = tmp_path / "out"
    scan_and_hash([str(folder)], EXTENSIONS, out)
    make(folder / "clip1.mp4", b"video 1, longer now")  # size changes (mtime kept)
    os.utime(folder / "clip2.mp4", (PAST + 10, PAST + 10))  # touched: mtime changes
    replacement = make(folder / "replacement.tmp", b"video X")  # same size and mtime, new inode
    os.replace(replacement, folder / "clip3.mp4")
    hashed.clear()
    scan = scan_and_hash([str(folder)], EXTENSIONS, out)
    assert sorted(Path(p).name for p in hashed) == ["clip1.mp4", "clip2.mp4", "clip3.mp4"]
    assert scan.digests[str(folder / "clip3.mp4")] == hashlib.sha256(b"video X").hexdigest()
    hashed.clear()
    scan_and_hash([str(folder)], EXTENSIONS, out)
    assert hashed == []


def test_files_written_just_now_are_hashed_again_next_time(folder, tmp_path, hashed):
    out = tmp_path / "out"
    (folder / "arriving.mp4").write_bytes(b"still being written")  # mtime: now
    scan_and_hash([str(folder)], EXTENSIONS, out)
    hashed.clear()
    scan_and_hash([str(folder)], EXTENSIONS, out)
    assert [Path(p).name for p in hashed] == ["arriving.mp4"]


def test_hard_links_are_read_once(folder, tmp_path, hashed):
    links = tmp_path / "links"
    links.mkdir()
    for i in range(20):
        os.link(folder / "clip0.mp4", links / f"copy{i}.mp4")
    scan = scan_and_hash([str(links)], EXTENSIONS, tmp_path / "out")
    assert len(hashed) == 1 and scan.hashed == 20
    assert len(set(scan.digests.values())) == 1


def test_cache_forgets_deleted_files_and_keeps_other_folders(folder, tmp_path):
    out = tmp_path / "out"
    other = tmp_path / "other"
    make(other / "elsewhere.mp4", b"another folder")
    scan_and_hash([str(other)], EXTENSIONS, out)
    scan_and_hash([str(folder)], EXTENSIONS, out)
    (folder / "clip4.mp4").unlink()
    scan_and_hash([str(folder)], EXTENSIONS, out)
    cached = {os.fsdecode(p) for p in pl.read_parquet(out / "cache" / "fingerprints.parquet")["path"]}
    assert str(other / "elsewhere.mp4") in cached and str(folder / "clip0.mp4") in cached
    assert str(folder / "clip4.mp4") not in cached


def test_a_damaged_cache_costs_a_rehash_not_a_failure(folder, tmp_path, hashed):
    out = tmp_path / "out"
    make(out / "cache" / "fingerprints.parquet", b"not parquet")
    scan = scan_and_hash([str(folder)], EXTENSIONS, out)
    assert len(hashed) == 6 and None not in scan.digests.values()
    assert FingerprintCache(out).lookup(scan.files[0]) == scan.digests[scan.files[0].path]


def test_unreadable_files_are_reported_not_raised(folder, tmp_path):
    (folder / "broken.mp4").symlink_to(tmp_path / "gone.mp4")
    scan = scan_and_hash([str(folder)], EXTENSIONS, tmp_path / "out")
    broken = str(folder / "broken.mp4")  # listed under its own path
    assert scan.digests[broken] is None and "cannot read file" in scan.errors[broken]


def test_plan_leaves_only_unfinished_files(folder, tmp_path):
    out = tmp_path / "out"
    scan = scan_and_hash([str(folder)], EXTENSIONS, out)
    paths = [f.path for f in scan.files]
    make(out / "videos" / f"{output_key(scan.digests[paths[0]], 'v1')}.parquet", b"")
    make(out / "rejects" / f"{reject_key(paths[1], scan.digests[paths[1]], 'v1')}.parquet", b"")
    plan = plan_batch(scan, out, "v1")
    assert plan.done == 2 and [p for p, _ in plan.todo] == paths[2:]
    assert all(d == scan.digests[p] for p, d in plan.todo)
    assert plan_batch(scan, out, "v2").done == 0  # a new model version scores everything again


GRAPHS = {"face.onnx": b"F" * 700, "audio.onnx": b"A" * 500, "video_face.onnx": b"E" * 300,
          "video_fusion.onnx": b"V" * 1000, "meta.json": b"{}"}


def checkpoints(root: Path) -> Path:
    """A model folder with the files scoring loads (the exported graphs) and the checkpoints."""
    for name, content in GRAPHS.items():
        make(root / "scoring" / name, content)
    for name, content in (("video", b"v" * 100), ("audio", b"a" * 50), ("face", b"f" * 70)):
        make(root / name / "model.pt", content)
    return root


def test_model_version_is_cached_by_the_fingerprints_of_the_files_scoring_loads(tmp_path):
    models, out = checkpoints(tmp_path / "models"), tmp_path / "out"
    expected = hashlib.sha256(b"".join(GRAPHS.values())).hexdigest()
    assert checkpoints_digest(models) == checkpoints_digest(models, out) == expected
    version = model_version(models, FusionConfig(), out)
    face = models / "scoring" / "face.onnx"
    face.write_bytes(b"G" * 700)  # same size; the old mtime put back: the cache cannot tell
    os.utime(face, (PAST, PAST))
    assert checkpoints_digest(models, out) == expected  # proves the cached hash was used, nothing read
    assert model_version(models, FusionConfig(), out) == version
    os.utime(face, (PAST + 5, PAST + 5))
    assert checkpoints_digest(models, out) == hashlib.sha256(
        b"".join({**GRAPHS, "face.onnx": b"G" * 700}.values())).hexdigest()
    assert model_version(models, FusionConfig(), out) != version
    (models / "scoring" / "audio.onnx").unlink()
    with pytest.raises(ModelsUnavailable, match="audio.onnx"):
        model_version(models, FusionConfig(), out)


def test_model_version_covers_the_runtime_the_fusion_choice_and_settings(tmp_path):
    models = checkpoints(tmp_path / "models")
    late = model_version(models)
    assert model_version(models, runtime="torch") != late  # the checkpoints: slightly different numbers
    assert model_version(models, FusionConfig(text_prior_votes=4.0)) != late
    assert model_version(models, FusionConfig(weights={"audio": 0.7})) != late
    (models / "video" / "fusion.json").write_text('{"choice": "learned", "reason": "it won"}')
    assert model_version(models) != late


RESCAN = """
import json, sys
from emotion_models.scoring import fingerprints
calls = []
real = fingerprints.content_hash
fingerprints.content_hash = lambda path: calls.append(path) or real(path)
from flows.scoring import run_scoring
counts = run_scoring(sys.argv[1:2], sys.argv[2], sys.argv[3], sys.argv[4])
print(json.dumps({"counts": counts, "read": len(calls), "model_code": sorted(
    m for m in ("torch", "emotion_models.scoring.score", "faster_whisper", "mediapipe") if m in sys.modules)}))
"""


def test_a_run_with_nothing_new_reads_no_video_and_loads_no_model(folder, tmp_path, prefect_api):
    """Every file already scored by this model version: the flow counts them and submits nothing;
    torch, the models and Whisper are never imported (their checkpoints here are not even loadable)."""
    import json
    import subprocess
    import sys

    from emotion_models.params import load_params
    from tests.conftest import REPO

    models, out = checkpoints(tmp_path / "models"), tmp_path / "out"
    version = model_version(models, load_params(REPO / "params.yaml").video.fusion)
    for path in scan_videos([folder], EXTENSIONS):
        make(out / "videos" / f"{output_key(fingerprints.content_hash(path.path), version)}.parquet", b"")

    def run() -> dict:
        done = subprocess.run([sys.executable, "-c", RESCAN, str(folder), str(out), str(REPO / "params.yaml"),
                               str(models)], capture_output=True, text=True, cwd=tmp_path,
                              env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout.strip().splitlines()[-1])

    first, second = run(), run()
    assert first["counts"] == second["counts"] == {"scored": 0, "skipped": 6, "rejected": 0}
    assert first["read"] == 6 and second["read"] == 0
    assert first["model_code"] == second["model_code"] == []
    assert not (out / "report.html").exists()  # nothing new: no batch report
