"""Harmonisation of the real shared data into one speaker-independent manifest."""

import shutil

import polars as pl
import pytest

from emotion_models.data.manifest import build_manifest
from emotion_models.data.sources import fetch_dataset
from emotion_models.labels import EMOTION_TO_LABEL
from emotion_models.params import load_params
from tasks.download import download_datasets
from tasks.harmonise import harmonise, read_sources
from tests.conftest import RAVDESS, REPO, SHARED, require_shared


@pytest.fixture(scope="module")
def shared_manifest(tmp_path_factory):
    require_shared()
    params = load_params(REPO / "params.yaml")
    params = params.model_copy(update={"data": params.data.model_copy(update={"root": str(SHARED)})})
    sources = [fetch_dataset(name, params.data)
               for name in ("ravdess_audio", "tess", "savee_audio", "ck_plus", "crema_d_video")]

    return build_manifest(sources, params.data, params.seed)

def test_shared_data_counts(shared_manifest):
    manifest, rejects = shared_manifest
    assert rejects.height == 0
    counts = dict(manifest.group_by("dataset").len().iter_rows())
    assert counts == {"ravdess_audio": 720, "tess": 1400, "savee_audio": 240, "ck_plus": 594, "crema_d_video": 6}
    ravdess = manifest.filter(pl.col("dataset") == "ravdess_audio")
    assert ravdess["speaker_id"].n_unique() == 12
    crema = manifest.filter(pl.col("dataset") == "crema_d_video")
    assert set(crema["speaker_sex"]) == {"male"}

def test_class_counts_match_the_file_names(shared_manifest):
    manifest, _ = shared_manifest
    ravdess = manifest.filter(pl.col("dataset") == "ravdess_audio")
    # Per actor: neutral 4 + calm 8 -> Neutral; sad 8 + fear 8; happy 8; angry 8; surprise 8 + disgust 8.
    expected = {0: 16 * 12, 1: 12 * 12, 2: 8 * 12, 3: 8 * 12, 4: 16 * 12}
    assert dict(ravdess.group_by("label").len().iter_rows()) == expected
    ck = manifest.filter(pl.col("dataset") == "ck_plus")
    for folder in (SHARED / "ck-plus-48").iterdir():
        emotion = {"sadness": "sad"}.get(folder.name, folder.name)
        rows = ck.filter(pl.col("path").str.contains(f"/{folder.name}/"))
        assert rows.height == len(list(folder.glob("*.png")))
        assert set(rows["label"]) == {EMOTION_TO_LABEL[emotion]}
    tess = manifest.filter(pl.col("dataset") == "tess")  # 200 words x 7 emotions; ps (pleasant surprise) -> 4
    assert dict(tess.group_by("label").len().iter_rows()) == {0: 400, 1: 200, 2: 200, 3: 200, 4: 400}
    savee = manifest.filter(pl.col("dataset") == "savee_audio")  # per speaker: 30 neutral, 15 of each other code
    assert dict(savee.group_by("label").len().iter_rows()) == {0: 60, 1: 60, 2: 30, 3: 30, 4: 60}
    assert dict(savee.group_by("speaker_id").len().iter_rows()) == {"DC": 120, "JE": 120}

def test_no_speaker_in_two_splits(shared_manifest):
    manifest, _ = shared_manifest
    per_speaker = manifest.group_by("corpus", "speaker_id").agg(pl.col("split").n_unique().alias("n"))
    assert per_speaker["n"].max() == 1
    ravdess = manifest.filter(pl.col("dataset") == "ravdess_audio")
    assert set(ravdess["split"]) == {"train", "val", "test"}
    # one TESS speaker and two SAVEE speakers cannot spare one for validation or test: they train
    assert set(manifest.filter(pl.col("corpus").is_in(["tess", "savee"]))["split"]) == {"train"}


def test_max_per_class_keeps_a_subset_of_every_class():
    require_shared()
    params = load_params(REPO / "params.yaml")
    datasets = {**params.data.datasets, "tess": params.data.datasets["tess"].model_copy(update={"max_per_class": 20})}
    data = params.data.model_copy(update={"root": str(SHARED), "datasets": datasets})
    manifest, rejects = build_manifest([fetch_dataset("tess", data)], data, 42)
    assert manifest.height == 140 and rejects.height == 0
    assert set(manifest.group_by("source_emotion").len()["len"]) == {20}  # 7 emotions x 20 words

def test_another_copy_in_the_original_layout_works(in_tmp_project):
    """Other actors, in RAVDESS's layout: the adapter parses names, it does not assume the shared subset."""
    require_shared()
    copy = in_tmp_project / "other-ravdess"
    for wav in sorted((RAVDESS / "Actor_02").glob("*.wav"))[:10]:
        target = copy / "Actor_20" / wav.name.replace("-02.wav", "-20.wav")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(wav, target)
    (copy / "Actor_20" / "notes.wav").write_bytes(b"")
    params = load_params(REPO / "params.yaml")
    datasets = {name: config.model_copy(update={"enabled": name == "ravdess_audio"})
                for name, config in params.data.datasets.items()}
    datasets["ravdess_audio"] = datasets["ravdess_audio"].model_copy(update={"root": str(copy)})
    params = params.model_copy(update={"data": params.data.model_copy(update={"datasets": datasets})})
    sources, problems = download_datasets(params)
    assert problems == {}
    manifest, rejects, summary = harmonise(params, read_sources())
    assert manifest.height == 10 and set(manifest["speaker_id"]) == {"actor20"}
    assert rejects.to_dicts()[0]["reason"] == "'notes.wav' does not match RAVDESS MM-VC-EE-II-SS-RR-AA"
    assert (in_tmp_project / "data" / "manifest.parquet").is_file()
    assert "ravdess_audio" in (in_tmp_project / "reports" / "data" / "summary.md").read_text()
    assert "| ravdess_audio | local | 11 |" in (in_tmp_project / "reports" / "data" / "sources.md").read_text()

def test_drop_rule_sends_calm_to_rejects(shared_manifest):
    require_shared()
    params = load_params(REPO / "params.yaml")
    data = params.data.model_copy(update={
        "root": str(SHARED), "labels": params.data.labels.model_copy(update={"calm": "drop"})})

    manifest, rejects = build_manifest([fetch_dataset("ravdess_audio", data)], data, 42)
    assert manifest.height == 720 - 96 and rejects.height == 96
    assert set(rejects["reason"]) == {"emotion 'calm' is dropped by data.labels.calm"}


def test_fer2013_keeps_its_test_set_and_is_capped_per_class():
    """PublicTest images are the test set, validation comes from Training images, and
    data.datasets.fer2013.max_per_class keeps a CI-sized, seeded subset of each (emotion, Usage)."""
    require_shared()
    params = load_params(REPO / "params.yaml")
    datasets = {**params.data.datasets,
                "fer2013": params.data.datasets["fer2013"].model_copy(update={"max_per_class": 40})}
    data = params.data.model_copy(update={"root": str(SHARED), "datasets": datasets})
    sources = [fetch_dataset(name, data) for name in ("fer2013", "ck_plus")]
    manifest, rejects = build_manifest(sources, data, params.seed)
    fer = manifest.filter(pl.col("dataset") == "fer2013")
    assert rejects.height == 0 and fer.height == 7 * 40 * 2
    assert fer.filter(pl.col("split") == "test").height == 7 * 40
    assert fer.filter(pl.col("path").str.contains("PublicTest_"))["split"].to_list() == ["test"] * 7 * 40
    assert fer.filter(pl.col("split") == "val").height == round(7 * 40 * data.split.val_fraction)
    assert fer["speaker_id"].n_unique() == fer.height  # every image its own subject
    again, _ = build_manifest(sources, data, params.seed)
    assert again["clip_id"].to_list() == manifest["clip_id"].to_list()  # the same subset every time
    ck_alone, _ = build_manifest(sources[1:], data, params.seed)
    assert ck_alone.select("clip_id", "split").equals(
        manifest.filter(pl.col("dataset") == "ck_plus").select("clip_id", "split"))
