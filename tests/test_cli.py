"""The `emotion` command line as users call it, in a trained project."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import CK_PLUS, CREMA_D_VIDEO, RAVDESS, SAVEE

EMOTION = str(Path(sys.executable).parent / "emotion")
NATIVE_LOG = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d", re.MULTILINE)  # absl/glog lines (MediaPipe)


def emotion(project: Path, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([EMOTION, *args], cwd=project, capture_output=True, text=True, timeout=900,
                            env={**os.environ, "COLUMNS": "120"})
    assert result.returncode == 0, f"emotion {' '.join(args)}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def test_help_lists_every_command(pipeline_project):
    out = emotion(pipeline_project, "--help").stdout
    for command in ("evaluate", "predict", "score", "serve", "explain", "tune"):
        assert command in out


def test_evaluate_audio_on_a_dataset_copy(pipeline_project, tmp_path):
    copy = tmp_path / "ravdess-two-actors"
    for actor in ("Actor_11", "Actor_12"):
        shutil.copytree(RAVDESS / actor, copy / actor)
    (copy / "Actor_12" / "broken.wav").write_bytes(b"RIFF")
    out = tmp_path / "metrics.json"
    printed = emotion(pipeline_project, "evaluate", "audio", "--data-root", str(copy), "--out", str(out)).stdout
    metrics = json.loads(out.read_text())
    assert metrics["n"] == 120 and sum(map(sum, metrics["confusion"])) == 120
    assert 0 <= metrics["accuracy"] <= 1 and "macro_f1" in metrics and "Sad/Fear" in metrics["per_class"]
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


def test_predict_image_prints_no_native_log_lines(pipeline_project):
    image = str(CK_PLUS / "happy" / "S010_006_00000013.png")
    quiet = subprocess.run([EMOTION, "predict", image], cwd=pipeline_project, capture_output=True, text=True)
    assert quiet.returncode == 0 and "face model" in quiet.stdout
    assert not NATIVE_LOG.search(quiet.stdout + quiet.stderr), quiet.stderr
    verbose = subprocess.run([EMOTION, "--verbose", "predict", image], cwd=pipeline_project, capture_output=True,
                             text=True)
    assert verbose.returncode == 0 and NATIVE_LOG.search(verbose.stderr)  # MediaPipe's own lines are kept
