"""The `emotion` command line as users call it, in a trained project."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CK_PLUS, CREMA_D_VIDEO, RAVDESS, SAVEE

pytestmark = pytest.mark.slow  # runs on the CI-sized `dvc repro` (pipeline_project)

EMOTION = str(Path(sys.executable).parent / "emotion")
NATIVE_LOG = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d", re.MULTILINE)  # absl/glog lines (MediaPipe)


def emotion(project: Path, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([EMOTION, *args], cwd=project, capture_output=True, text=True, timeout=900,
                            env={**os.environ, "COLUMNS": "120"})
    assert result.returncode == 0, f"emotion {' '.join(args)}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def test_evaluate_audio_on_a_dataset_copy(pipeline_project, tmp_path):
    copy = tmp_path / "ravdess-two-actors"
    for actor in ("Actor_11", "Actor_12"):
        shutil.copytree(RAVDESS / actor, copy / actor)
    (copy / "Actor_12" / "broken.wav").write_bytes(b"RIFF")
    out = tmp_path / "metrics.json"
    printed = emotion(pipeline_project, "evaluate", "audio", "--data-root", str(copy), "--out", str(out)).stdout
    metrics = json.loads(out.read_text())
    assert metrics["n"] == 120 and sum(map(sum, metrics["confusion"])) == 120
    assert metrics["accuracy"] == pytest.approx(sum(metrics["confusion"][c][c] for c in range(5)) / 120)
    assert set(metrics["per_class"]) == {"Sad/Fear", "Neutral", "Happy", "Angry", "Surprise/Disgust"}
    assert [r["path"] for r in metrics["rejects"]] == [str(copy / "Actor_12" / "broken.wav")]
    assert "accuracy" in printed and "Surprise/Disgust" in printed


def test_evaluate_audio_on_a_folder_of_savee_flac_files(pipeline_project, tmp_path):
    copy = tmp_path / "savee-jk"  # SAVEE's flat naming, FLAC: as a user's copy of speaker JK would be
    copy.mkdir()
    for clip in sorted(SAVEE.glob("DC_*01.flac")):
        shutil.copy(clip, copy / clip.name.replace("DC_", "JK_"))
    out = tmp_path / "savee.json"
    emotion(pipeline_project, "evaluate", "audio", "--data-root", str(copy), "--dataset", "savee_audio", "--out", str(out))
    metrics = json.loads(out.read_text())
    assert metrics["n"] == 7 and metrics["rejects"] == []  # a, d, f, h, n, sa, su
    assert metrics["per_dataset"]["savee_audio"]["n"] == 7


def test_evaluate_face_on_a_dataset_copy(pipeline_project, tmp_path):
    out = tmp_path / "face.json"
    emotion(pipeline_project, "evaluate", "face", "--data-root", str(CK_PLUS), "--dataset", "ck_plus", "--out", str(out))
    assert json.loads(out.read_text())["n"] == 594


def test_predict_image_audio_and_video_as_json(pipeline_project):
    image = json.loads(emotion(pipeline_project, "predict", str(CK_PLUS / "happy" / "S010_006_00000013.png"),
                               "--json").stdout)
    assert image["model"] == "face" and abs(sum(image["probabilities"].values()) - 1) < 1e-4
    audio = json.loads(emotion(pipeline_project, "predict", str(next(RAVDESS.rglob("*.wav"))), "--json").stdout)
    assert audio["model"] == "audio" and len(audio["probabilities"]) == 5
    video = json.loads(emotion(pipeline_project, "predict", str(next(CREMA_D_VIDEO.glob("*.flv"))), "--json").stdout)
    assert video["model"] == "video" and len(video["windows"]) == 1
    assert video["prediction"] in {"Sad/Fear", "Neutral", "Happy", "Angry", "Surprise/Disgust"}
    assert video["fusion"]["method"] == "late" and set(video["fusion"]["weights"]) == {"audio", "face", "text"}
    window = video["windows"][0]
    for view in ("fused", "audio", "face", "text", "video"):
        assert f"{view}_happy" in window
    assert abs(sum(window[f"fused_{s}"] for s in ("sad_fear", "neutral", "happy", "angry", "surprise_disgust")) - 1) < 1e-4


def test_predict_video_shows_the_fused_estimate_and_every_view(pipeline_project, tmp_path):
    from tests.test_scoring import tone_over_test_pattern

    clip = next(CREMA_D_VIDEO.glob("*.flv"))
    printed = emotion(pipeline_project, "predict", str(clip)).stdout
    assert "fused estimate: late fusion, weights audio" in printed and "mean probability:" in printed
    header = next(line for line in printed.splitlines() if "transcript" in line).split()
    assert header == ["seconds", "fused", "video", "audio", "face", "text", "transcript"]
    assert "forget" in printed.lower()
    pattern = emotion(pipeline_project, "predict", str(tone_over_test_pattern(tmp_path / "pattern.mp4"))).stdout
    assert "no person (no face and no speech in any window: no emotion)" in pattern


def test_evaluate_video_compares_late_and_learned_fusion_and_each_view(pipeline_project, tmp_path):
    out = tmp_path / "video.json"
    printed = emotion(pipeline_project, "evaluate", "video", "--data-root", str(CREMA_D_VIDEO), "--out", str(out)).stdout
    fusion = json.loads(out.read_text())["fusion"]
    assert fusion["used_by_scoring"] == "late" and "no real validation clips" in fusion["reason"]
    variants = fusion["variants"]
    assert set(variants) == {"late fusion (audio + face + text)", "learned fusion (combined model)", "audio only",
                             "face only", "text only"}
    assert all(row["n"] == 6 for row in variants.values())  # the same six windows for every variant
    assert variants["text only"]["coverage"] == 0.0  # "Don't forget a jacket" has no emotion word
    assert variants["late fusion (audio + face + text)"]["coverage"] == 1.0
    assert "learned fusion (combined model)" in printed and "coverage" in printed


def test_serve_checks_folders_and_output_before_serving(pipeline_project, tmp_path):
    missing = subprocess.run([EMOTION, "serve", str(tmp_path / "no-such-folder"), "--out", str(tmp_path / "out")],
                             cwd=pipeline_project, capture_output=True, text=True, timeout=300)
    assert missing.returncode == 1 and "no-such-folder: input folder not found" in missing.stdout
    assert "Traceback" not in missing.stdout + missing.stderr
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the output folder should be")
    unwritable = subprocess.run([EMOTION, "serve", str(CREMA_D_VIDEO), "--out", str(blocked / "out"),
                                 "--project", str(pipeline_project)], cwd=tmp_path, capture_output=True, text=True,
                                timeout=300)
    assert unwritable.returncode == 1 and "output folder is not writable" in unwritable.stdout
    no_models = subprocess.run([EMOTION, "serve", str(CREMA_D_VIDEO), "--out", str(tmp_path / "out"),
                                "--project", str(pipeline_project), "--model-dir", str(tmp_path)],
                               cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert no_models.returncode == 1 and "trained models missing" in no_models.stdout


def test_predict_a_bad_file_explains_and_fails(pipeline_project, tmp_path):
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video")
    result = subprocess.run([EMOTION, "predict", str(bad)], cwd=pipeline_project, capture_output=True, text=True)
    assert result.returncode == 1 and "notes.mp4" in result.stdout and "not a readable media file" in result.stdout


def test_explain_writes_a_grad_cam_png(pipeline_project, tmp_path):
    out = tmp_path / "cam.png"
    printed = emotion(pipeline_project, "explain", str(CK_PLUS / "surprise" / sorted(os.listdir(CK_PLUS / "surprise"))[0]),
                      "--out", str(out)).stdout
    assert out.read_bytes().startswith(b"\x89PNG") and "Grad-CAM written" in printed


def test_predict_image_prints_no_native_log_lines(pipeline_project, tmp_path):
    import cv2

    # a face inside a larger picture: MediaPipe's detector runs (a 48 px dataset crop is taken whole)
    face = cv2.resize(cv2.imread(str(CK_PLUS / "happy" / "S010_006_00000013.png")), (192, 192))
    image = str(tmp_path / "face.png")
    cv2.imwrite(image, cv2.copyMakeBorder(face, 96, 96, 96, 96, cv2.BORDER_CONSTANT, value=(128, 128, 128)))
    quiet = subprocess.run([EMOTION, "predict", image], cwd=pipeline_project, capture_output=True, text=True)
    assert quiet.returncode == 0 and "face model" in quiet.stdout
    assert not NATIVE_LOG.search(quiet.stdout + quiet.stderr), quiet.stderr
    verbose = subprocess.run([EMOTION, "--verbose", "predict", image], cwd=pipeline_project, capture_output=True,
                             text=True)
    assert verbose.returncode == 0 and NATIVE_LOG.search(verbose.stderr)  # MediaPipe's own lines are kept
