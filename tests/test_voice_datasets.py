"""Voice corpora of other languages and users' copies: CASIA, EmoDB, EMOVO and labelled folders."""

import json
from collections import Counter
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import soundfile as sf
import yaml
from typer.testing import CliRunner

from cli.main import app
from emotion_models.data.datasets import NameParseError, Reject, get_adapter
from emotion_models.data.datasets.casia import parse_casia_path
from emotion_models.data.manifest import build_manifest
from emotion_models.data.sources import DatasetSource
from emotion_models.data.splits import assign_splits
from emotion_models.nets.registry import get_spec
from emotion_models.params import DatasetConfig, load_params
from emotion_models.training.loop import save_checkpoint
from tasks.evaluate import external_rows
from tests.conftest import REPO, SAVEE, SHARED, require_shared

CASIA = SHARED / "casia-16k"


def test_casia_real_folder():
    require_shared()
    items = list(get_adapter("casia").scan(CASIA))
    assert len(items) == 1200 and not [i for i in items if isinstance(i, Reject)]
    assert Counter(c.emotion for c in items) == dict.fromkeys(
        ("anger", "fear", "happy", "neutral", "sad", "surprise"), 200)
    assert Counter((c.speaker_id, c.speaker_sex) for c in items) == {
        ("liuchanhg", "female"): 300, ("zhaoquanyin", "female"): 300,
        ("wangzhe", "male"): 300, ("ZhaoZuoxiang", "male"): 300}
    # The same sentence numbers in every speaker and emotion: a clip is named by all three.
    assert len({Path(c.path).relative_to(CASIA) for c in items}) == 1200
    assert len({Path(c.path).name for c in items}) == 50
    clip = parse_casia_path(CASIA / "wangzhe" / "surprise" / "237.flac")
    assert (clip.speaker_id, clip.emotion, clip.attributes["sentence"]) == ("wangzhe", "surprise", "237")


def test_casia_bad_layouts_are_rejected_with_reasons(tmp_path):
    for name in ("wangzhe/angry/201.wav", "Wangzhe/Happy/202.flac", "wangzhe/bored/203.wav",
                 "lisi/angry/204.wav", "wangzhe/angry/take2.wav", "wangzhe/angry/201.lab"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"audio")
    items = {Path(i.path).relative_to(tmp_path).as_posix(): i for i in get_adapter("casia").scan(tmp_path)}
    assert set(items) == {"wangzhe/angry/201.wav", "Wangzhe/Happy/202.flac", "wangzhe/bored/203.wav",
                          "lisi/angry/204.wav", "wangzhe/angry/take2.wav"}  # .lab: not audio
    assert (items["Wangzhe/Happy/202.flac"].speaker_id, items["Wangzhe/Happy/202.flac"].emotion) == ("wangzhe", "happy")
    assert "emotion folder 'bored'" in items["wangzhe/bored/203.wav"].reason
    assert "speaker folder 'lisi'" in items["lisi/angry/204.wav"].reason
    assert "not a sentence number" in items["wangzhe/angry/take2.wav"].reason
    with pytest.raises(NameParseError):
        parse_casia_path(Path("angry/201.wav"))


def test_corpora_below_min_speakers_train_only():
    """params.yaml: CASIA's 4 speakers, like SAVEE's 2, train only (measured by speaker folds)."""
    params = load_params()
    assert params.data.datasets["casia"].enabled and params.data.split.min_speakers == 5
    assert params.audio.evaluation.speaker_folds["casia"] == 4 and params.audio.evaluation.leave_corpus_out
    casia = [("casia", s) for s in ("liuchanhg", "wangzhe", "zhaoquanyin", "ZhaoZuoxiang")]
    ravdess = [("ravdess", f"actor{i:02d}") for i in range(1, 13)]
    split = params.data.split
    assignment = assign_splits(casia + ravdess, split.test_fraction, split.val_fraction, 42,
                               min_speakers=split.min_speakers)
    assert {assignment[s] for s in casia} == {"train"}
    assert Counter(assignment[s] for s in ravdess) == {"train": 8, "val": 2, "test": 2}
    four = assign_splits(casia, split.test_fraction, split.val_fraction, 42)  # the old rule: 3 speakers suffice
    assert Counter(four.values()) == {"train": 2, "val": 1, "test": 1}


def _write_clips(root: Path, names: list[str], speech: Path | None = None) -> None:
    """Short clips named ``names`` below ``root``: a real SAVEE clip re-encoded (WAV or FLAC by the
    suffix) when ``speech`` is given, else a 1 s tone; other suffixes get text."""
    signal, rate = (sf.read(speech, dtype="float32") if speech else
                    (0.3 * np.sin(2 * np.pi * 220 * np.arange(16000) / 16000).astype(np.float32), 16000))
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix.lower() in (".wav", ".flac"):
            sf.write(path, signal, rate)
        else:
            path.write_text("not audio")


def _by_name(items) -> dict:
    return {Path(i.path).name: i for i in items}


def test_emodb_names_speakers_and_boredom(tmp_path):
    names = ["wav/03a01Fa.wav", "wav/08b02Wb.flac", "wav/13a05Lc.wav", "wav/16a07Td.wav", "wav/11b10Eb.wav",
             "wav/09a04Aa.flac", "wav/12b01Nc.wav", "wav/16a01Xa.wav", "wav/take_1.wav", "wav/03a01Fa.lab"]
    _write_clips(tmp_path, names)
    items = _by_name(get_adapter("emodb").scan(tmp_path))
    assert len(items) == 9  # the .lab file is not audio
    clip = items["03a01Fa.wav"]
    assert (clip.speaker_id, clip.speaker_sex, clip.emotion, clip.attributes) == (
        "03", "male", "happy", {"text": "a01", "version": "a"})
    assert {n: (c.emotion, c.speaker_sex) for n, c in items.items() if not isinstance(c, Reject)} == {
        "03a01Fa.wav": ("happy", "male"), "08b02Wb.flac": ("anger", "female"), "13a05Lc.wav": ("boredom", "female"),
        "16a07Td.wav": ("sad", "female"), "11b10Eb.wav": ("disgust", "male"), "09a04Aa.flac": ("fear", "female"),
        "12b01Nc.wav": ("neutral", "male")}
    assert "unknown emotion letter code 'X'" in items["16a01Xa.wav"].reason
    assert "does not match EmoDB" in items["take_1.wav"].reason
    # boredom is none of the 5 classes: data.labels.boredom drops it, with that reason
    rows, rejects = external_rows(get_spec("audio"), load_params(), tmp_path, "emodb")
    assert sorted((Path(r["path"]).name, r["label"], r["speaker_id"]) for r in rows) == [
        ("03a01Fa.wav", 2, "03"), ("08b02Wb.flac", 3, "08"), ("09a04Aa.flac", 0, "09"), ("11b10Eb.wav", 4, "11"),
        ("12b01Nc.wav", 1, "12"), ("16a07Td.wav", 0, "16")]
    reasons = {Path(r.path).name: r.reason for r in rejects}
    assert reasons["13a05Lc.wav"] == "emotion 'boredom' is dropped by data.labels.boredom"
    assert set(reasons) == {"13a05Lc.wav", "16a01Xa.wav", "take_1.wav"}


def test_emovo_names_speakers_and_rejects(tmp_path):
    names = ["f1/dis-f1-b1.wav", "f2/gio-f2-n5.flac", "m3/pau-m3-l3.wav", "m1/rab-m1-d2.wav", "f3/sor-f3-b3.flac",
             "m2/tri-m2-l1.wav", "f1/neu-f1-n1.wav", "f1/xyz-f1-b1.wav", "m1/rab-m2-b1.wav", "m1/notes.wav"]
    _write_clips(tmp_path, names)
    items = _by_name(get_adapter("emovo").scan(tmp_path))
    assert {n: (c.emotion, c.speaker_id, c.speaker_sex) for n, c in items.items() if not isinstance(c, Reject)} == {
        "dis-f1-b1.wav": ("disgust", "f1", "female"), "gio-f2-n5.flac": ("happy", "f2", "female"),
        "pau-m3-l3.wav": ("fear", "m3", "male"), "rab-m1-d2.wav": ("anger", "m1", "male"),
        "sor-f3-b3.flac": ("surprise", "f3", "female"), "tri-m2-l1.wav": ("sad", "m2", "male"),
        "neu-f1-n1.wav": ("neutral", "f1", "female")}
    assert items["gio-f2-n5.flac"].attributes == {"sentence": "n5"}
    assert "unknown emotion code 'xyz'" in items["xyz-f1-b1.wav"].reason
    assert "speaker m2 in a folder of speaker m1" in items["rab-m2-b1.wav"].reason
    assert "does not match EMOVO" in items["notes.wav"].reason


def test_labelled_folders_in_both_layouts(tmp_path):
    flat, nested = tmp_path / "flat", tmp_path / "nested"
    _write_clips(flat, ["Happy/a.wav", "ANGRY/b.flac", "calm/c.wav", "Bored/d.wav", "joy/e.wav", "x/y/sad/f.wav",
                        "loose.wav"])
    _write_clips(nested, ["anna/sadness/1.wav", "anna/Surprised/2.flac", "ben/fear/1.wav", "ben/meh/2.wav"])
    adapter = get_adapter("folders", load_params().data)
    items = {Path(i.path).relative_to(flat).as_posix(): i for i in adapter.scan(flat)}
    assert {n: (c.emotion, c.speaker_id, c.fixed_split) for n, c in items.items() if not isinstance(c, Reject)} == {
        "Happy/a.wav": ("happy", "?Happy/a", "test"), "ANGRY/b.flac": ("anger", "?ANGRY/b", "test"),
        "calm/c.wav": ("calm", "?calm/c", "test"), "joy/e.wav": ("happy", "?joy/e", "test")}
    assert "label folder 'Bored' is not in data.folder_labels" in items["Bored/d.wav"].reason
    assert "3 folders deep" in items["x/y/sad/f.wav"].reason and "0 folders deep" in items["loose.wav"].reason
    items = {Path(i.path).relative_to(nested).as_posix(): i for i in adapter.scan(nested)}
    assert {n: (c.emotion, c.speaker_id, c.fixed_split) for n, c in items.items() if not isinstance(c, Reject)} == {
        "anna/sadness/1.wav": ("sad", "anna", None), "anna/Surprised/2.flac": ("surprise", "anna", None),
        "ben/fear/1.wav": ("fear", "ben", None)}
    assert "label folder 'meh'" in items["ben/meh/2.wav"].reason
    # the label map is params.yaml's: a user's own words, and words dropped on purpose
    data = load_params().data.model_copy(update={"folder_labels": {"Bored": "boredom", "joy": "drop"}})
    custom = _by_name(get_adapter("folders", data).scan(flat))
    assert custom["d.wav"].emotion == "boredom" and "'joy' is dropped by data.folder_labels" in custom["e.wav"].reason
    assert "not in data.folder_labels" in custom["a.wav"].reason
    with pytest.raises(ValueError, match="folder_labels"):
        load_params().model_validate({**load_params().model_dump(), "data": {
            **load_params().data.model_dump(), "folder_labels": {"glad": "glee"}}})


def test_evaluate_audio_on_a_users_emodb_copy(tmp_path, monkeypatch):
    """`emotion evaluate audio --dataset emodb` on a user's copy (real speech in EmoDB naming, WAV and
    FLAC): every clip featurised and scored, boredom and an unreadable file rejected with their reasons.
    The checkpoint is an untrained network of the configured shape (training one is the pipeline's
    job, minutes): this checks the path from the adapter to the metrics, not accuracy."""
    require_shared()
    copy = tmp_path / "emodb"
    letters = {"a": "W", "d": "E", "f": "A", "h": "F", "n": "N", "sa": "T", "su": "L"}  # SAVEE code -> EmoDB
    for number, (code, letter) in enumerate(letters.items()):
        suffix = ".flac" if number % 2 else ".wav"
        _write_clips(copy, [f"wav/{'03' if number < 4 else '08'}a0{number + 1}{letter}a{suffix}"],
                     SAVEE / f"DC_{code}01.flac")
    (copy / "wav" / "10b01Fb.wav").write_bytes(b"RIFF")
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["audio"]["features"]["workers"] = 1
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    monkeypatch.chdir(tmp_path)
    params = load_params(tmp_path / "params.yaml")
    spec = get_spec("audio")
    config = spec.model_config(params)
    save_checkpoint(spec.checkpoint_path(), spec.build(config, pretrained=False),
                    {"config": config, "feature_key": spec.store(params, tmp_path / "key").key})
    out = tmp_path / "emodb.json"
    result = CliRunner().invoke(app, ["evaluate", "audio", "--data-root", str(copy), "--dataset", "emodb",
                                      "--out", str(out)], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    metrics = json.loads(out.read_text())
    assert metrics["n"] == 6 and sum(map(sum, metrics["confusion"])) == 6 and metrics["dataset"] == "emodb"
    assert metrics["per_dataset"]["emodb"]["n"] == 6
    reasons = {Path(r["path"]).name: r["reason"] for r in metrics["rejects"]}
    assert reasons.keys() == {"08a07La.wav", "10b01Fb.wav"}
    assert reasons["08a07La.wav"] == "emotion 'boredom' is dropped by data.labels.boredom"
    assert "10b01Fb.wav" in reasons["10b01Fb.wav"]
    assert "2 files rejected" in result.output and "Surprise/Disgust" in result.output


def test_evaluate_help_names_every_audio_adapter():
    help_text = CliRunner().invoke(app, ["evaluate", "--help"], env={"COLUMNS": "300"}).output
    for name in ("casia", "emodb", "emovo", "folders", "savee_audio", "<speaker>/<label>/<file>"):
        assert name in help_text


def test_labelled_folders_in_a_manifest_keep_speakers_apart(tmp_path):
    """Enabled in data.datasets, flat-layout files (speaker unknown) are test only, never trained on;
    speaker folders are split by speaker like any corpus."""
    flat, nested = tmp_path / "flat", tmp_path / "nested"
    _write_clips(flat, ["happy/a.wav", "Angry/b.wav", "Tired/c.wav"])
    _write_clips(nested, [f"{speaker}/{label}/1.wav" for speaker in ("ann", "ben", "cat", "dan", "eve", "fay")
                          for label in ("happy", "Sad")])
    params = load_params()
    data = params.data.model_copy(update={"datasets": {"folders": DatasetConfig(enabled=True, dir="mine")}})

    def manifest_of(root: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
        return build_manifest([DatasetSource("folders", str(root), "local", None, 12, "fingerprint")], data, params.seed)

    manifest, rejects = manifest_of(flat)
    assert sorted(manifest["clip_id"]) == ["folders:Angry/b.wav", "folders:happy/a.wav"]
    assert set(manifest["split"]) == {"test"} and manifest["speaker_id"].n_unique() == 2
    assert rejects["path"].to_list() == [str(flat / "Tired" / "c.wav")]
    assert "label folder 'Tired' is not in data.folder_labels" in rejects["reason"][0]
    manifest, _ = manifest_of(nested)
    split_of = dict(manifest.select("speaker_id", "split").unique().iter_rows())
    assert len(split_of) == 6 and Counter(split_of.values()) == {"train": 4, "val": 1, "test": 1}
