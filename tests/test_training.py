import dataclasses
from collections import Counter
from functools import partial

import numpy as np
import polars as pl
import pytest
import torch

from emotion_models.features.shards import Extracted, FeatureStore, extract
from emotion_models.params import CrossValidationConfig
from emotion_models.reports.evaluation import cross_validation_sections, cross_validation_summary
from emotion_models.training.data import ShardDataset, balanced_repeats
from emotion_models.training.loop import mix_batch
from tasks.cross_validate import Fold, corpus_folds, corpus_speakers, protocol_folds, speaker_folds, summarise


def test_mixup_blends_inputs_keeps_labels_and_ors_masks():
    batch = {"mfcc": torch.tensor([[0.0, 2.0], [4.0, 6.0]]), "crop": torch.tensor([[10], [30]], dtype=torch.uint8),
             "frame_mask": torch.tensor([True, False]), "label": torch.tensor([1, 3]), "clip_id": ["a", "b"]}
    mixed = mix_batch(batch, torch.tensor([1, 0]), 0.75)
    assert torch.allclose(mixed["mfcc"], torch.tensor([[1.0, 3.0], [3.0, 5.0]]))
    assert torch.allclose(mixed["crop"], torch.tensor([[15.0], [25.0]]))
    assert mixed["frame_mask"].tolist() == [True, True]
    assert mixed["label"].tolist() == [1, 3] and mixed["clip_id"] == ["a", "b"]
    unchanged = mix_batch(batch, torch.tensor([1, 0]), 1.0)
    assert torch.equal(unchanged["mfcc"], batch["mfcc"])


def _manifest(speakers: int, extra: dict[str, int] | None = None) -> pl.DataFrame:
    corpora = {"ravdess": speakers, **(extra or {})}
    rows = [{"clip_id": f"{c}{s}-{i}", "corpus": c, "speaker_id": f"{c}{s:02d}", "modality": "audio",
             "composed": False, "label": i % 5} for c, n in corpora.items() for s in range(1, n + 1) for i in range(3)]
    rows.append({"clip_id": "composed", "corpus": "ravdess", "speaker_id": "actor99", "modality": "audio",
                 "composed": True, "label": 0})
    return pl.DataFrame(rows)


def _disjoint(fold: Fold) -> bool:
    return not (fold.train & fold.val or fold.train & fold.test or fold.val & fold.test)


@pytest.mark.parametrize("folds", [2, 3, 6])
def test_speaker_folds_test_every_speaker_of_the_corpus_once_and_train_on_all_other_corpora(folds):
    speakers = corpus_speakers(_manifest(12, {"tess": 1, "savee": 2}), "audio", seed=42)
    assert "actor99" not in speakers["ravdess"]  # composed clips are left out
    result = speaker_folds(speakers, "ravdess", folds, 0.15)
    assert len(result) == folds
    tested = [s for fold in result for s in fold.test]
    assert sorted(tested) == sorted(("ravdess", f"ravdess{i:02d}") for i in range(1, 13))
    for fold in result:
        assert _disjoint(fold) and {c for c, _ in fold.test} == {"ravdess"}
        assert len(fold.val) == 2 and {c for c, _ in fold.val} == {"ravdess"}  # 2 of 12; TESS, SAVEE too small
        assert {("tess", "tess01"), ("savee", "savee01"), ("savee", "savee02")} <= fold.train
        assert len(fold.test | fold.val | fold.train) == 15


def test_leave_one_speaker_out_of_a_two_speaker_corpus():
    speakers = corpus_speakers(_manifest(12, {"savee": 2}), "audio", seed=0)
    result = speaker_folds(speakers, "savee", 2, 0.15)
    assert {fold.test for fold in result} == {frozenset({("savee", "savee01")}), frozenset({("savee", "savee02")})}
    for fold in result:  # the other SAVEE speaker trains; validation comes from RAVDESS
        assert _disjoint(fold) and (fold.test ^ {("savee", "savee01"), ("savee", "savee02")}) <= fold.train
        assert {c for c, _ in fold.val} == {"ravdess"}


def test_leave_one_corpus_out_trains_on_the_other_corpora_only():
    speakers = corpus_speakers(_manifest(12, {"tess": 1, "savee": 2}), "audio", seed=0)
    result = {fold.name: fold for fold in corpus_folds(speakers, 0.15)}
    assert set(result) == {"ravdess", "tess", "savee"}
    for corpus, fold in result.items():
        assert _disjoint(fold) and {c for c, _ in fold.test} == {corpus}
        assert len(fold.test) == len(speakers[corpus]) and corpus not in {c for c, _ in fold.train | fold.val}
    # No corpus left has min_speakers: SAVEE's first speaker validates (TESS has one), the other trains
    assert result["ravdess"].val == {("savee", speakers["savee"][0])}
    assert result["ravdess"].train == {("tess", "tess01"), ("savee", speakers["savee"][1])}
    assert len(result["tess"].val) == 2
    alone = {fold.name: fold for fold in corpus_folds(corpus_speakers(_manifest(12, {"tess": 1}), "audio", 0), 0.15)}
    assert not alone["ravdess"].val  # TESS, one speaker, cannot spare one: epoch on training accuracy
    assert not any(fold.val for fold in corpus_folds(speakers, 0.0))  # no validation fraction, no validation
    config = CrossValidationConfig(speaker_folds={"ravdess": 3, "savee": 2}, leave_corpus_out=True)
    assert [f.protocol for f in protocol_folds(speakers, config, 0.15)] == (
        ["ravdess_speaker_folds"] * 3 + ["savee_speaker_folds"] * 2 + ["leave_corpus_out"] * 3)


def test_a_corpus_below_min_speakers_gives_no_validation_speaker_in_any_fold():
    """As in the delivered model's split (data.split.min_speakers): CASIA's 4 speakers train only."""
    speakers = corpus_speakers(_manifest(12, {"casia": 4}), "audio", seed=0)
    for fold in speaker_folds(speakers, "casia", 4, 0.15, min_speakers=5):
        assert len(fold.test) == 1 and {c for c, _ in fold.val} == {"ravdess"}
        assert {s for c, s in fold.train if c == "casia"} == set(speakers["casia"]) - {s for _, s in fold.test}
    assert any(c == "casia" for fold in speaker_folds(speakers, "ravdess", 6, 0.15) for c, _ in fold.val)
    assert not any(c == "casia" for fold in speaker_folds(speakers, "ravdess", 6, 0.15, min_speakers=5)
                   for c, _ in fold.val)


def test_speaker_folds_of_one_corpus_test_only_that_corpus():
    manifest = _manifest(9)
    other = pl.DataFrame([{**manifest.row(0, named=True), "clip_id": f"fer{i}", "corpus": "fer2013",
                           "speaker_id": f"img{i}"} for i in range(50)], schema=manifest.schema)
    speakers = corpus_speakers(pl.concat([manifest, other]), "audio", seed=1)
    for fold in speaker_folds(speakers, "ravdess", 3, 0.15):
        assert {corpus for corpus, _ in fold.test} == {"ravdess"} and len(fold.test) == 3
        assert _disjoint(fold) and {corpus for corpus, _ in fold.train} == {"ravdess", "fer2013"}


def test_speaker_folds_need_enough_speakers():
    speakers = corpus_speakers(_manifest(3), "audio", seed=0)
    with pytest.raises(ValueError, match="4 speaker folds of corpus 'ravdess'"):
        speaker_folds(speakers, "ravdess", 4, 0.15)
    with pytest.raises(ValueError, match="corpus 'savee'.*corpora: ravdess"):
        speaker_folds(speakers, "savee", 2, 0.15)
    with pytest.raises(ValueError, match="two corpora"):
        corpus_folds(speakers, 0.15)


# a large corpus with a frequent class, a small corpus with two classes
SKEWED_LABELS = {f"big{i}": 0 if i < 900 else 1 for i in range(1000)} | {f"small{i}": i % 2 for i in range(20)}
SKEWED_CORPORA = {clip: "big" if clip.startswith("big") else "small" for clip in SKEWED_LABELS}


def _drawn(balance: str) -> tuple[dict[str, int], Counter]:
    """One epoch's 40,000 draws of the skewed corpora: the repeats, and the draws per (corpus, class)."""
    repeats = balanced_repeats(SKEWED_LABELS, SKEWED_CORPORA, balance, 40_000, np.random.default_rng(0))
    drawn = Counter()
    for clip, times in repeats.items():
        drawn[SKEWED_CORPORA[clip], SKEWED_LABELS[clip]] += times
    return repeats, drawn


def test_corpus_class_balance_gives_each_corpus_and_class_its_share():
    repeats, drawn = _drawn("corpus_class")
    assert sum(drawn.values()) == 40_000
    for group in [("big", 0), ("big", 1), ("small", 0), ("small", 1)]:
        assert abs(drawn[group] / 40_000 - 0.25) < 0.02, drawn
    _, by_class = _drawn("class")
    assert abs((by_class["big", 1] + by_class["small", 1]) / 40_000 - 0.5) < 0.02
    assert _drawn("corpus_class")[0] == repeats  # the same seed and epoch draw the same rows


def test_corpus_balance_evens_corpora_and_keeps_each_corpus_class_mix():
    # the face fine-tune's draws: CK+ as often as FER2013, FER2013's classes as frequent as they are in it
    _, drawn = _drawn("corpus")
    assert sum(drawn.values()) == 40_000
    assert abs((drawn["small", 0] + drawn["small", 1]) / 40_000 - 0.5) < 0.02, drawn
    assert abs(drawn["big", 0] / (drawn["big", 0] + drawn["big", 1]) - 0.9) < 0.02, drawn
    assert abs(drawn["small", 0] / (drawn["small", 0] + drawn["small", 1]) - 0.5) < 0.03, drawn


def test_shard_dataset_yields_the_balanced_draws(tmp_path):
    store = FeatureStore(tmp_path / "store", "key", "parquet")
    rows = [{"clip_id": f"c{i}", "path": f"/x/c{i}.wav"} for i in range(12)]

    extract(rows, _constant_features, store, workers=1, shard_rows=5)
    labels = {f"c{i}": i % 3 for i in range(12)}
    corpora = {f"c{i}": "a" if i < 9 else "b" for i in range(12)}
    data = ShardDataset(store, {"x": (2,)}, labels, shuffle=True, seed=1, balance="corpus_class",
                        corpora=corpora, epoch_samples=60)
    first = [s["clip_id"] for s in data]
    assert len(first) == len(data) == 60
    assert 20 <= sum(c in {"c9", "c10", "c11"} for c in first) <= 40  # corpus b: 3 clips, about half the draws
    data.set_epoch(1)
    assert sorted(s["clip_id"] for s in data) != sorted(first)  # a fresh draw each epoch
    data.set_epoch(0)
    assert [s["clip_id"] for s in data] == first


def _constant_features(row: dict) -> Extracted:
    return Extracted(row, {"x": np.full(2, float(row["clip_id"][1:]), np.float32)})


def test_cross_validation_report_gives_each_fold_the_mean_and_std_and_the_pooled_clips():
    def fold(name, test, y_true, y_pred, protocol="savee_speaker_folds", val=("actor01",)):
        accuracy = float(np.mean(np.equal(y_true, y_pred)))
        sure = np.eye(5)[y_pred]  # all confidence on the prediction; calibrated: 0.6 on it
        return {"protocol": protocol, "fold": name, "test_speakers": test, "val_speakers": list(val),
                "train_corpora": ["ravdess", "savee"], "n": len(y_true), "accuracy": accuracy, "macro_f1": accuracy,
                "ece_before": 1 - accuracy, "ece_after": abs(0.6 - accuracy), "temperature": 2.0,
                "y_true": y_true, "y_pred": y_pred, "uncalibrated": sure, "calibrated": 0.5 * sure + 0.1}

    savee = summarise([fold("fold 1", ["DC"], [0, 1, 2, 3], [0, 1, 2, 2]), fold("fold 2", ["JE"], [0, 1], [1, 1])])
    assert savee["accuracy"]["mean"] == pytest.approx(0.625)
    assert savee["accuracy"]["std"] == pytest.approx(0.1768, abs=1e-4)
    assert savee["pooled"]["n"] == 6 and savee["pooled"]["accuracy"] == pytest.approx(4 / 6)
    assert "y_true" not in savee["folds"][0] and "calibrated" not in savee["folds"][0]
    assert savee["pooled"]["ece_before"] == pytest.approx(1 - 4 / 6)  # sure of every clip, right on 4 of 6
    assert savee["pooled"]["ece_after"] == pytest.approx(4 / 6 - 0.6)  # 0.6 on each, right on 4 of 6
    loco = summarise([fold("tess", ["YAF"], [4, 4], [4, 0], "leave_corpus_out", val=())])
    result = {"protocols": {"leave_corpus_out": loco, "savee_speaker_folds": savee}}  # as sorted in the JSON
    sections = cross_validation_sections(result)
    assert sections[0]["name"].startswith("Speaker cross-validation, savee: leave one speaker out")
    assert list(sections[0]["rows"]) == ["fold 1: test DC", "fold 2: test JE",
                                         "mean over folds (accuracy std 0.177, macro-F1 std 0.177)",
                                         "all test clips pooled"]
    assert sections[1]["name"].startswith("Leave one corpus out")
    no_validation = "(no validation speaker: epoch chosen on training accuracy)"
    assert f"tess: trained on ravdess, savee {no_validation}" in sections[1]["rows"]
    summary = cross_validation_summary(result)["cross_validation"]
    assert summary["savee_speaker_folds"] == {
        "folds": 2, "n": 6, "accuracy_mean": 0.625, "accuracy_std": savee["accuracy"]["std"],
        "macro_f1_mean": 0.625, "macro_f1_std": savee["macro_f1"]["std"],
        "ece_before": savee["pooled"]["ece_before"], "ece_after": savee["pooled"]["ece_after"]}
    assert summary["leave_corpus_out"] == {"tess": {"n": 2, "accuracy": 0.5, "macro_f1": 0.5, "ece_before": 0.5,
                                                    "ece_after": pytest.approx(0.1)}}


def _audio_clip_features(row: dict, stats: int = 69, width: int = 768) -> Extracted:
    """Embedding (``width``) and ``stats`` statistics whose mean moves with the clip's class (a learnable toy
    corpus)."""
    rng = np.random.default_rng(int(row["clip_id"][4:]))
    label = int(row["clip_id"][4:]) % 5
    return Extracted(row, {"embedding": (rng.normal(label, 1.0, width)).astype(np.float32),
                           "stats": rng.normal(0.0, 1.0, stats).astype(np.float32)})


def _toy_audio_run(root, clips: int = 60, **train):
    """Params, spec and run of the audio model on a learnable toy store (the last third validates)."""
    from emotion_models.features.audio import statistics_size
    from emotion_models.nets.audio import AudioSpec
    from emotion_models.params import load_params
    from tasks.train import TrainingRun
    from tests.conftest import REPO

    params = load_params(REPO / "params.yaml")
    section = params.audio.model_copy(update={"train": params.audio.train.model_copy(
        update={"epochs": 5, "early_stopping_patience": 5, "balance": "none", **train})})
    params = params.model_copy(update={"audio": section})
    spec = AudioSpec()
    store = spec.store(params, root=root / "store")
    if not store.index().height:
        extract([{"clip_id": f"clip{i}", "path": f"/x/clip{i}.flac"} for i in range(clips)],
                partial(_audio_clip_features, stats=statistics_size(params.audio.features),
                        width=spec.arrays(params)["embedding"][0]),
                store, workers=1, shard_rows=32)
    labels = {f"clip{i}": i % 5 for i in range(clips)}
    cut = clips * 2 // 3
    splits = {"train": {k: v for k, v in labels.items() if int(k[4:]) < cut},
              "val": {k: v for k, v in labels.items() if int(k[4:]) >= cut}}
    return params, spec, TrainingRun(out_dir=root / "model", store=store, splits=splits)


@pytest.mark.parametrize("refit", [False, True])
def test_refit_trains_on_training_and_validation_clips_for_the_chosen_epochs(in_tmp_project, refit):
    from tasks.train import train_model

    params, spec, run = _toy_audio_run(in_tmp_project, refit=refit)
    history = train_model(spec, params, run, report=lambda _: None)
    model, meta = spec.load(run.out_dir / "model.pt")
    seen = [f"clip{i}" for i in range(60 if refit else 40)]  # standardised on the clips it trained on
    width = spec.arrays(params)["embedding"][0]
    expected = np.mean([_audio_clip_features({"clip_id": c}, width=width).arrays["embedding"] for c in seen], axis=0)
    assert np.allclose(model.mean.numpy(), expected, atol=1e-4)
    assert len(history) == 5 and 1 <= meta["epoch"] <= 5
    assert meta["val_accuracy"] == history[meta["epoch"] - 1].val_accuracy  # the selection run's validation
    assert meta["temperature"] > 0 and meta["calibration"]["clips"] == 20  # fitted on the validation clips
    if refit:
        assert meta["refit"] == {"epochs": meta["epoch"], "clips": 60} and meta["train_clips"] == 60
        assert "before the refit" in meta["calibration"]["model"]
    else:
        assert "refit" not in meta and meta["train_clips"] == 40
    assert not (run.out_dir / "resume.pt").exists()  # a finished run leaves no resume file


class Interrupted(Exception):
    """Stands for a crash (killed process, lost machine) in the middle of training."""


def _crash_at(message_start: str):
    def report(message: str) -> None:
        if message.startswith(message_start):
            raise Interrupted(message)

    return report


@pytest.mark.parametrize("crash", ["epoch 4:", "refit epoch 3/"])
def test_an_interrupted_run_resumes_to_exactly_the_uninterrupted_result(tmp_path, monkeypatch, crash):
    """Killed in an epoch of the selection or of the refit, the rerun continues from the last saved
    epoch (optimizer, plateau schedule, mixup's and dropout's generators, best so far, early-stopping
    count) and ends with the same weights, meta and history as a run never interrupted."""
    from tasks.train import train_model

    monkeypatch.chdir(tmp_path)
    settings = {"epochs": 8, "early_stopping_patience": 8, "lr_schedule": "plateau", "lr_patience": 1,
                "mixup_alpha": 0.3, "refit": True, "batch_size": 8}
    params, spec, run = _toy_audio_run(tmp_path / "whole", **settings)
    whole = train_model(spec, params, run, report=lambda _: None)
    params, spec, interrupted = _toy_audio_run(tmp_path / "interrupted", **settings)
    with pytest.raises(Interrupted):
        train_model(spec, params, interrupted, report=_crash_at(crash))
    assert (interrupted.out_dir / "resume.pt").is_file()
    (interrupted.out_dir / "model.pt").unlink()  # DVC removes a stage's outputs before running it again
    log: list[str] = []
    resumed = train_model(spec, params, interrupted, report=log.append)
    assert any(line.startswith("resuming") for line in log)
    assert not any(line.startswith("epoch 1:") for line in log)  # the saved epochs are not trained again

    def without_time(history):
        return [{**h.__dict__, "seconds": 0} for h in history]

    assert without_time(resumed) == without_time(whole)
    (expected, expected_meta), (got, got_meta) = (torch.load(r.out_dir / "model.pt", weights_only=True).values()
                                                  for r in (run, interrupted))
    assert expected.keys() == got.keys() and all(torch.equal(expected[k], got[k]) for k in expected)
    assert expected_meta == got_meta
    assert (interrupted.out_dir / "history.csv").read_text().count("\n") == len(whole) + 1
    assert not (interrupted.out_dir / "resume.pt").exists()


def test_a_resume_file_of_other_parameters_is_not_continued(tmp_path, monkeypatch):
    from tasks.train import train_model

    monkeypatch.chdir(tmp_path)
    params, spec, run = _toy_audio_run(tmp_path, epochs=4)
    with pytest.raises(Interrupted):
        train_model(spec, params, run, report=_crash_at("epoch 3:"))
    params, spec, run = _toy_audio_run(tmp_path, epochs=4, learning_rate=5e-4)
    log: list[str] = []
    history = train_model(spec, params, run, report=log.append)
    assert any("left by a run with other parameters" in line for line in log)
    assert not any(line.startswith("resuming") for line in log) and len(history) == 4


def test_without_validation_clips_the_temperature_stays_one_and_says_so(in_tmp_project):
    from tasks.train import train_model

    params, spec, run = _toy_audio_run(in_tmp_project, epochs=2)
    run = dataclasses.replace(run, splits={"train": {**run.splits["train"], **run.splits["val"]}, "val": {}})
    train_model(spec, params, run, report=lambda _: None)
    _, meta = spec.load(run.out_dir / "model.pt")
    assert meta["temperature"] == 1.0 and "no validation clips" in meta["calibration"]["note"]


def test_fold_speakers_of_a_corpus_of_single_images_are_counted_not_listed():
    from tasks.cross_validate import speaker_list

    speakers = frozenset({("ck_plus", "S010"), ("ck_plus", "S005")} | {("fer2013", f"img{i}") for i in range(500)})
    assert speaker_list(speakers) == ["S005", "S010", "fer2013: 500 speakers"]
    assert speaker_list(frozenset({("savee", "JE"), ("savee", "DC")})) == ["DC", "JE"]
