"""`dvc repro` of the whole pipeline on ../shared/datasets with CI-sized parameters.

Audio on the RAVDESS actors, face on FER2013 (20 images per emotion and Usage) and the CK+
subjects, video on the six real CREMA-D clips
plus composed clips (CK+ face + RAVDESS voice) that are never part of reported accuracy.
"""

import json

import polars as pl
import pytest
import torch

from tests.pipeline_project import dvc

pytestmark = pytest.mark.slow  # runs on the CI-sized `dvc repro` (pipeline_project)


def test_manifest_from_dvc_repro(pipeline_project):
    manifest = pl.read_parquet(pipeline_project / "data" / "manifest.parquet").filter(~pl.col("composed"))
    assert dict(manifest.group_by("dataset").len().iter_rows()) == {
        "ravdess_audio": 720, "tess": 140, "savee_audio": 240, "casia": 48, "ck_plus": 594, "crema_d_video": 6,
        "fer2013": 7 * 20 * 2, "raf_db": 7 * 20}
    assert "ravdess_audio" in (pipeline_project / "reports" / "data" / "summary.md").read_text()


def test_audio_outputs_are_well_formed(pipeline_project):
    metrics = json.loads((pipeline_project / "reports" / "audio" / "metrics.json").read_text())
    assert metrics["n"] == 120  # the two test actors' clips
    assert len(metrics["confusion"]) == 5 and sum(map(sum, metrics["confusion"])) == 120
    assert metrics["accuracy"] == pytest.approx(sum(metrics["confusion"][c][c] for c in range(5)) / 120)
    assert metrics["macro_f1"] == pytest.approx(sum(row["f1"] for row in metrics["per_class"].values()) / 5)
    assert set(metrics["per_class"]) == {"Sad/Fear", "Neutral", "Happy", "Angry", "Surprise/Disgust"}
    assert metrics["per_dataset"]["ravdess_audio"]["n"] == 120
    cross = metrics["cross_validation"]  # every protocol of params.yaml's audio.evaluation
    assert cross["ravdess_speaker_folds"]["folds"] == 6 and cross["ravdess_speaker_folds"]["n"] == 720
    assert cross["savee_speaker_folds"]["folds"] == 2 and cross["savee_speaker_folds"]["n"] == 240
    assert cross["casia_speaker_folds"]["folds"] == 4 and cross["casia_speaker_folds"]["n"] == 48
    assert {name: row["n"] for name, row in cross["leave_corpus_out"].items()} == {
        "ravdess": 720, "savee": 240, "tess": 140, "casia": 48}
    folds = json.loads((pipeline_project / "reports" / "audio" / "cross_validation.json").read_text())
    for protocol in ("ravdess_speaker_folds", "savee_speaker_folds"):  # the mean over the protocol's folds
        per_fold = [f["accuracy"] for f in folds["protocols"][protocol]["folds"]]
        assert cross[protocol]["accuracy_mean"] == pytest.approx(sum(per_fold) / len(per_fold))
    savee = folds["protocols"]["savee_speaker_folds"]["folds"]
    assert [f["test_speakers"] for f in savee] in ([["DC"], ["JE"]], [["JE"], ["DC"]])
    assert all("savee" in f["train_corpora"] for f in savee)  # the other SAVEE speaker trains
    history = (pipeline_project / "models" / "audio" / "history.csv").read_text().splitlines()
    assert history[0].startswith("epoch,train_loss") and len(history) == 3
    confusion = (pipeline_project / "reports" / "audio" / "confusion.csv").read_text().splitlines()
    assert confusion[0] == "actual,predicted" and len(confusion) == 121
    html = (pipeline_project / "reports" / "audio" / "report.html").read_text()
    assert "speaker-independent" in html and "data:image/png;base64" in html
    assert "Speaker cross-validation, savee: leave one speaker out" in html and "Leave one corpus out" in html
    assert "openSMILE eGeMAPS + SVM" in html  # the peer beside the numbers
    payload = torch.load(pipeline_project / "models" / "audio" / "model.pt", weights_only=True)
    meta = json.loads(payload["meta"])
    assert meta["class_names"][4] == "Surprise/Disgust"
    # calibration: the temperature fitted on the validation actors, ECE before and after on the test split
    assert meta["temperature"] > 0 and meta["calibration"]["clips"] == 120 and metrics["temperature"] == meta["temperature"]
    assert 0 <= metrics["ece_before"] <= 1 and 0 <= metrics["ece_after"] <= 1
    assert 0 <= cross["ravdess_speaker_folds"]["ece_after"] <= 1
    assert "Expected calibration error" in html and (pipeline_project / "reports" / "audio" / "reliability.png").is_file()
    assert not (pipeline_project / "models" / "audio" / "resume.pt").exists()  # a finished run leaves none


def test_face_outputs_are_well_formed(pipeline_project):
    manifest = pl.read_parquet(pipeline_project / "data" / "manifest.parquet")
    test_faces = manifest.filter((pl.col("dataset") == "ck_plus") & (pl.col("split") == "test"))
    fer_test = manifest.filter((pl.col("dataset") == "fer2013") & (pl.col("split") == "test"))
    assert fer_test.height == 7 * 20 and fer_test["path"].str.contains("PublicTest_").all()
    raf = manifest.filter(pl.col("dataset") == "raf_db")  # no subject ids: its training images split by image
    raf_test = raf.filter(pl.col("split") == "test")
    assert raf.height == 7 * 20 and 0 < raf_test.height < raf.height and raf["split"].n_unique() == 3
    metrics = json.loads((pipeline_project / "reports" / "face" / "metrics.json").read_text())
    assert metrics["n"] == test_faces.height + fer_test.height + raf_test.height
    assert sum(map(sum, metrics["confusion"])) == metrics["n"]
    # per corpus, beside the overall numbers
    assert metrics["per_dataset"]["ck_plus"]["n"] == test_faces.height
    assert metrics["per_dataset"]["fer2013"]["n"] == fer_test.height
    assert metrics["per_dataset"]["raf_db"]["n"] == raf_test.height
    html = (pipeline_project / "reports" / "face" / "report.html").read_text()
    assert html.count("<figure>") == 8 and ("WRONG:" in html or "OK:" in html)  # Grad-CAM gallery
    assert "<td>fer2013</td>" in html and "<td>ck_plus</td>" in html
    pretrain = pipeline_project / "models" / "face" / "pretrain"  # face.members: 2, each its own pretraining
    pretrained = [json.loads(torch.load(path, weights_only=True)["meta"])
                  for path in (pretrain / "model.pt", pretrain / "member-1" / "model.pt")]
    assert [p["seed"] for p in pretrained] == [42, 43]
    assert all(p["pretrained_on"] == ["fer2013", "raf_db"] for p in pretrained)  # face.pretrain.datasets: web faces
    meta = json.loads(torch.load(pipeline_project / "models" / "face" / "model.pt", weights_only=True)["meta"])
    assert [m["path"] for m in meta["pretrained"]] == ["models/face/pretrain/model.pt",
                                                       "models/face/pretrain/member-1/model.pt"]
    assert [m["seed"] for m in meta["members"]] == [42, 43] and meta["train_clips"] > pretrained[0]["train_clips"]
    assert "The model is 2 networks (seeds 42, 43)" in html  # the report says what the model is
    train_subjects = set(manifest.filter((pl.col("dataset") == "ck_plus") & (pl.col("split") == "train"))["speaker_id"])
    assert not train_subjects & set(test_faces["speaker_id"])
    # CK+ subject cross-validation (face.evaluation): every subject tested once, by a fold that never saw it
    ck_plus = manifest.filter((pl.col("dataset") == "ck_plus") & (pl.col("modality") == "face"))
    assert metrics["cross_validation"]["ck_plus_speaker_folds"]["folds"] == 5
    assert metrics["cross_validation"]["ck_plus_speaker_folds"]["n"] == ck_plus.height
    folds = json.loads((pipeline_project / "reports" / "face" / "cross_validation.json").read_text())
    tested = [s for f in folds["protocols"]["ck_plus_speaker_folds"]["folds"] for s in f["test_speakers"]]
    assert sorted(tested) == sorted(set(ck_plus["speaker_id"]))
    assert "Speaker cross-validation, ck_plus" in html


def test_video_branch_runs_on_real_and_composed_clips(pipeline_project):
    manifest = pl.read_parquet(pipeline_project / "data" / "manifest.parquet")
    composed = manifest.filter(pl.col("composed"))
    assert composed.height == 24 and set(composed["dataset"]) == {"composed"}
    shards = pl.concat([pl.read_parquet(p) for p in (pipeline_project / "data" / "features" / "video").glob("shard-*.parquet")])
    real = shards.filter(pl.col("dataset") == "crema_d_video")
    assert real["clip_id"].n_unique() == 6 and real["faces"].min() > 0
    assert real["transcript"].str.contains("(?i)forget").all()  # Whisper heard the real actor
    metrics = json.loads((pipeline_project / "reports" / "video" / "metrics.json").read_text())
    assert metrics["n"] == 0  # the one CREMA-D actor trains; composed clips are never reported accuracy
    html = (pipeline_project / "reports" / "video" / "report.html").read_text()
    for variant in ("fused (audio + face + text)", "audio only", "face only", "text only",
                    "late fusion (audio + face + text)", "learned fusion (combined model)"):
        assert variant in html


def test_video_fusion_records_both_numbers_and_the_choice(pipeline_project):
    record = json.loads((pipeline_project / "models" / "video" / "fusion.json").read_text())
    assert record["choice"] == "late" and "no real validation clips" in record["reason"]  # one CREMA-D actor: train
    assert record["validation"] == {"clips": 0, "speakers": 0, "windows": 0}
    assert {"late", "learned", "views", "weights"} <= set(record)
    meta = json.loads(torch.load(pipeline_project / "models" / "audio" / "model.pt", weights_only=True)["meta"])
    assert meta["monitor"] == "val_accuracy" and meta["val_macro_f1"] is not None
    assert 0 < record["weights"]["audio"] <= 1 and record["weights"]["text"] == 0.2


def test_second_repro_does_nothing(pipeline_project):
    result = dvc(pipeline_project, "repro")
    assert "Running stage" not in result.stdout
    assert "up to date" in dvc(pipeline_project, "status", "dvc.yaml").stdout
