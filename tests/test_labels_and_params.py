from pathlib import Path

import pytest
import yaml

from emotion_models.labels import CLASS_NAMES, DroppedEmotion, harmonise_emotion
from emotion_models.params import ParamsError, load_params

REPO = Path(__file__).resolve().parents[1]
DEFAULT_RULES = {"calm": "neutral", "contempt": "disgust"}


@pytest.mark.parametrize(
    "emotion, label",
    [("sad", 0), ("fear", 0), ("neutral", 1), ("happy", 2), ("anger", 3), ("surprise", 4), ("disgust", 4)],
)
def test_seven_classic_emotions_map_to_five_classes(emotion, label):
    assert harmonise_emotion(emotion, DEFAULT_RULES) == (emotion, label)


def test_calm_and_contempt_follow_the_default_rules():
    assert harmonise_emotion("calm", DEFAULT_RULES) == ("neutral", 1)
    assert harmonise_emotion("contempt", DEFAULT_RULES) == ("disgust", 4)
    assert CLASS_NAMES[4] == "Surprise/Disgust"


def test_drop_rule_and_unknown_emotions_raise():
    with pytest.raises(DroppedEmotion, match="data.labels.calm"):
        harmonise_emotion("calm", {"calm": "drop"})
    with pytest.raises(DroppedEmotion, match="data.labels.boredom"):  # EmoDB boredom: dropped by default
        harmonise_emotion("boredom", DEFAULT_RULES)
    with pytest.raises(DroppedEmotion, match="unknown emotion 'frustration'"):
        harmonise_emotion("frustration", DEFAULT_RULES)


def test_repository_params_load():
    params = load_params(REPO / "params.yaml")
    assert params.audio.backbone.name == "resnet18"
    assert params.face.backbone.name == "compact_cnn_16"
    assert params.face.pretrain.datasets == ["fer2013", "raf_db"] and params.face.train.balance == "corpus"
    assert params.data.split.test_fraction == 0.15


def test_unknown_or_ill_typed_keys_are_rejected_by_name(tmp_path):
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    bad = tmp_path / "params.yaml"

    def check(mutate, message):
        copy = yaml.safe_load(yaml.safe_dump(raw))
        mutate(copy)
        bad.write_text(yaml.safe_dump(copy))
        with pytest.raises(ParamsError, match=message):
            load_params(bad)

    check(lambda p: p["audio"]["train"].update(batch_sise=256), r"audio.train.batch_sise: Extra inputs are not permitted")
    check(lambda p: p["data"]["labels"].update(calm="sleepy"), r"data.labels.calm")
    check(lambda p: p["audio"]["train"].update(epochs="many"), r"audio.train.epochs")
    check(lambda p: p["data"]["datasets"]["ck_plus"].update(enabled="perhaps"), r"data.datasets.ck_plus.enabled")
