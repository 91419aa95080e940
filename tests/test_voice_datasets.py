"""Voice corpora of other languages and users' copies: CASIA, EmoDB, EMOVO and labelled folders."""

from collections import Counter
from pathlib import Path

import pytest

from emotion_models.data.datasets import NameParseError, Reject, get_adapter
from emotion_models.data.datasets.casia import parse_casia_path
from emotion_models.data.splits import assign_splits
from emotion_models.params import load_params
from tests.conftest import SHARED, require_shared

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
