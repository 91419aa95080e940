"""Every adapter's name parser: real names from ../shared and the documented conventions."""

import shutil
from collections import Counter
from pathlib import Path

import pytest

from emotion_models.data.datasets import NameParseError, Reject, get_adapter
from emotion_models.data.datasets.base import AUDIO_EXTENSIONS
from emotion_models.data.datasets.ck_plus import parse_ck_plus_name
from emotion_models.data.datasets.crema_d import parse_crema_d_name, read_demographics
from emotion_models.data.datasets.fer2013 import parse_fer2013_name
from emotion_models.data.datasets.ravdess import parse_ravdess_name
from emotion_models.data.datasets.savee import parse_savee_name
from emotion_models.data.datasets.tess import parse_tess_name
from tests.conftest import CK_PLUS, CREMA_D_METADATA, CREMA_D_VIDEO, FER2013, RAVDESS, SAVEE, TESS, require_shared


def test_ravdess_real_names():
    require_shared()
    clip = parse_ravdess_name(RAVDESS / "Actor_01" / "03-01-02-01-01-01-01.wav")
    assert (clip.speaker_id, clip.speaker_sex, clip.emotion) == ("actor01", "male", "calm")
    clip = parse_ravdess_name(RAVDESS / "Actor_12" / "03-01-08-02-02-02-12.wav")
    assert (clip.speaker_id, clip.speaker_sex, clip.emotion) == ("actor12", "female", "surprise")
    assert clip.attributes["intensity"] == "02"
    for path in sorted(RAVDESS.rglob("*.wav")):
        parsed = parse_ravdess_name(path)
        assert parsed.speaker_id == f"actor{path.parent.name[-2:]}"


@pytest.mark.parametrize("name, reason", [
    ("03-01-09-01-01-01-01.wav", "unknown emotion code '09'"),
    ("03-01-01-01-01-01.wav", "does not match RAVDESS"),
    ("04-01-01-01-01-01-01.wav", "unknown modality"),
])
def test_ravdess_bad_names(name, reason):
    with pytest.raises(NameParseError, match=reason):
        parse_ravdess_name(Path(name))


def test_ravdess_adapters_keep_their_modality():
    with pytest.raises(NameParseError, match="not audio-only"):
        get_adapter("ravdess_audio").parse(Path("01-01-03-01-01-01-05.mp4"))
    assert get_adapter("ravdess_video").parse(Path("01-01-03-01-01-01-05.mp4")).emotion == "happy"


def test_crema_d_real_names_and_demographics():
    require_shared()
    sexes = read_demographics(CREMA_D_METADATA / "VideoDemographics.csv")
    assert sexes["1001"] == "male" and sexes["1002"] == "female" and len(sexes) == 91
    emotions = {parse_crema_d_name(p, sexes).emotion for p in CREMA_D_VIDEO.glob("*.flv")}
    assert emotions == {"anger", "disgust", "fear", "happy", "neutral", "sad"}
    clip = parse_crema_d_name(Path("1091_ITS_SAD_HI.wav"), sexes)
    assert (clip.speaker_id, clip.emotion, clip.attributes["level"]) == ("actor1091", "sad", "HI")
    for bad in ("1001_DFA_XYZ_XX.flv", "0999_DFA_ANG_XX.flv", "1001_DFA_ANG.flv", "1001_DFA_ANG_QQ.flv"):
        with pytest.raises(NameParseError):
            parse_crema_d_name(Path(bad))


def test_ck_plus_real_names():
    require_shared()
    clip = parse_ck_plus_name(CK_PLUS / "sadness" / "S011_002_00000020.png")
    assert (clip.speaker_id, clip.emotion) == ("S011", "sad")
    assert parse_ck_plus_name(Path("contempt/S138_008_00000009.png")).emotion == "contempt"
    with pytest.raises(NameParseError, match="emotion folder"):
        parse_ck_plus_name(Path("bored/S011_002_00000020.png"))
    with pytest.raises(NameParseError, match="Sxxx"):
        parse_ck_plus_name(Path("happy/face.png"))


def test_ck_plus_original_layout(tmp_path):
    (tmp_path / "Emotion" / "S005" / "001").mkdir(parents=True)
    (tmp_path / "cohn-kanade-images" / "S005" / "001").mkdir(parents=True)
    (tmp_path / "Emotion" / "S005" / "001" / "S005_001_00000011_emotion.txt").write_text("   3.0000000e+00\n")
    (tmp_path / "cohn-kanade-images" / "S005" / "001" / "S005_001_00000011.png").write_bytes(b"png")
    (tmp_path / "Emotion" / "S005" / "001" / "S005_001_00000012_emotion.txt").write_text("9\n")
    items = list(get_adapter("ck_plus").scan(tmp_path))
    clips = [i for i in items if not isinstance(i, Reject)]
    assert [(c.speaker_id, c.emotion) for c in clips] == [("S005", "disgust")]
    assert len([i for i in items if isinstance(i, Reject)]) == 1


def test_tess_names():
    clip = parse_tess_name(Path("OAF_angry/OAF_back_angry.wav"))
    assert (clip.speaker_id, clip.emotion, clip.speaker_sex) == ("OAF", "anger", "female")
    assert parse_tess_name(Path("YAF_dog_ps.wav")).emotion == "surprise"
    with pytest.raises(NameParseError):
        parse_tess_name(Path("XAF_dog_ps.wav"))


def test_savee_names_in_both_layouts():
    assert parse_savee_name(Path("AudioData/DC/sa03.wav")).emotion == "sad"
    clip = parse_savee_name(Path("JK_su12.wav"))
    assert (clip.speaker_id, clip.emotion) == ("JK", "surprise")
    with pytest.raises(NameParseError, match="speaker folder"):
        parse_savee_name(Path("XX/a01.wav"))


def test_tess_and_savee_real_files():
    require_shared()
    tess = list(get_adapter("tess").scan(TESS))
    assert len(tess) == 1400 and not [i for i in tess if isinstance(i, Reject)]
    assert {c.speaker_id for c in tess} == {"YAF"} and {c.speaker_sex for c in tess} == {"female"}
    assert Counter(c.emotion for c in tess) == dict.fromkeys(
        ("anger", "disgust", "fear", "happy", "neutral", "surprise", "sad"), 200)  # ps = pleasant surprise
    pleasant = parse_tess_name(TESS / "YAF_pleasant_surprised" / "YAF_back_ps.flac")
    assert (pleasant.emotion, pleasant.attributes["word"]) == ("surprise", "back")
    savee = list(get_adapter("savee_audio").scan(SAVEE))
    assert len(savee) == 240 and not [i for i in savee if isinstance(i, Reject)]
    assert Counter(c.speaker_id for c in savee) == {"DC": 120, "JE": 120}
    clip = get_adapter("savee_audio").parse(SAVEE / "JE_sa03.flac")
    assert (clip.speaker_id, clip.emotion, clip.speaker_sex, clip.attributes["sentence"]) == ("JE", "sad", "male", "03")


def test_audio_adapters_take_every_container_the_media_layer_decodes(tmp_path):
    names = ["JK_a01.flac", "JK_h02.mp3", "JK_n03.ogg", "JK_su04.m4a", "JK_d05.wav", "JK_f06.WAV"]
    for name in [*names, "JK_sa07.txt", "JK_sa08.mp4"]:
        (tmp_path / name).write_bytes(b"audio")
    clips = list(get_adapter("savee_audio").scan(tmp_path))
    assert sorted(Path(c.path).name for c in clips) == sorted(names)
    assert all(get_adapter(name).extensions == AUDIO_EXTENSIONS for name in ("ravdess_audio", "crema_d_audio", "tess"))


def test_crema_d_audio_reads_a_clip_shipped_as_wav_and_mp3_once(tmp_path):
    for path in ("AudioWAV/1001_DFA_ANG_XX.wav", "AudioMP3/1001_DFA_ANG_XX.mp3", "AudioMP3/1002_DFA_HAP_XX.mp3"):
        (tmp_path / path).parent.mkdir(exist_ok=True)
        (tmp_path / path).write_bytes(b"audio")
    clips = list(get_adapter("crema_d_audio").scan(tmp_path))
    assert sorted(str(Path(c.path).relative_to(tmp_path)) for c in clips) == [
        "AudioMP3/1002_DFA_HAP_XX.mp3", "AudioWAV/1001_DFA_ANG_XX.wav"]


def test_fer2013_rows(tmp_path):
    pixels = " ".join(["128"] * 2304)
    (tmp_path / "fer2013.csv").write_text(
        f"emotion,pixels,Usage\n3,{pixels},Training\n6,{pixels},PublicTest\n9,{pixels},Training\n"
        f"0,1 2 3,Training\n4,{pixels},Other\n2,{pixels},PrivateTest\n")
    items = list(get_adapter("fer2013").scan(tmp_path))
    clips = [i for i in items if not isinstance(i, Reject)]
    assert [(c.emotion, c.speaker_id, c.fixed_split) for c in clips] == [
        ("happy", "img00000", "train"), ("neutral", "img00001", "test"), ("fear", "img00005", "test")]
    reasons = [i.reason for i in items if isinstance(i, Reject)]
    assert reasons == ["unknown emotion code '9'", "expected 2304 pixel values, found 3",
                       "unknown Usage 'Other' (expected Training, PublicTest, PrivateTest)"]


def test_fer2013_real_image_folders():
    """Kaggle layout: the folder is the emotion, the name's Usage prefix the split; every image its own subject."""
    require_shared()
    train = sorted((FER2013 / "train" / "angry").glob("*.jpg"))[0]
    clip = parse_fer2013_name(train)
    assert (clip.emotion, clip.fixed_split, clip.speaker_id) == ("anger", "train", f"angry-{train.stem}")
    assert clip.attributes == {"usage": "Training"}
    test = sorted((FER2013 / "test" / "surprise").glob("*.jpg"))[0]
    assert (parse_fer2013_name(test).emotion, parse_fer2013_name(test).fixed_split) == ("surprise", "test")
    clips = list(get_adapter("fer2013").scan(FER2013))
    assert len({c.speaker_id for c in clips}) == len(clips)  # "Training_8475486.jpg" is in angry/ and surprise/
    counts = Counter((c.fixed_split, c.emotion) for c in clips)
    assert sum(counts.values()) == 32_298
    assert sum(n for (split, _), n in counts.items() if split == "test") == 3_589
    assert counts["train", "disgust"] == len(list((FER2013 / "train" / "disgust").glob("Training_*.jpg")))


def test_fer2013_test_only_folder_and_bad_names(tmp_path):
    """A folder of PrivateTest images (no train/) evaluates as test images; stray names are rejects."""
    require_shared()
    source = sorted((FER2013 / "test" / "happy").glob("*.jpg"))[:3]
    for number, path in enumerate(source):
        target = tmp_path / "happy" / f"PrivateTest_{number + 1000}.jpg"
        target.parent.mkdir(exist_ok=True)
        shutil.copy(path, target)
    shutil.copy(source[0], tmp_path / "happy" / "photo.jpg")
    (tmp_path / "bored").mkdir()
    shutil.copy(source[0], tmp_path / "bored" / "PublicTest_1.jpg")
    items = list(get_adapter("fer2013").scan(tmp_path))
    clips = [i for i in items if not isinstance(i, Reject)]
    assert [(c.emotion, c.fixed_split, c.attributes["usage"]) for c in clips] == [("happy", "test", "PrivateTest")] * 3
    reasons = sorted(i.reason for i in items if isinstance(i, Reject))
    assert reasons == ["'PublicTest_1.jpg': unknown emotion folder code 'bored'",
                       "'photo.jpg' does not match FER2013 {Training,PublicTest,PrivateTest}_N"]


def test_raf_db_label_list(tmp_path):
    (tmp_path / "EmoLabel").mkdir()
    (tmp_path / "Image" / "aligned").mkdir(parents=True)
    (tmp_path / "Image" / "aligned" / "train_00001_aligned.jpg").write_bytes(b"jpg")
    (tmp_path / "EmoLabel" / "list_patition_label.txt").write_text("train_00001.jpg 5\ntest_0002.jpg 1\n")
    items = list(get_adapter("raf_db").scan(tmp_path))
    assert items[0].emotion == "sad" and items[0].speaker_id == "train_00001"
    assert isinstance(items[1], Reject) and "not found" in items[1].reason


def test_omg_csv(tmp_path):
    (tmp_path / "abc123").mkdir()
    (tmp_path / "abc123" / "utterance_1.mp4").write_bytes(b"mp4")
    (tmp_path / "omg_TrainVideos.csv").write_text(
        "link,start,end,video,utterance,arousal,valence,EmotionMaxVote\n"
        "x,0,1,abc123,utterance_1.mp4,0.5,0.1,3\nx,0,1,abc123,utterance_2.mp4,0.5,0.1,4\n")
    items = list(get_adapter("omg").scan(tmp_path))
    assert items[0].emotion == "happy" and items[0].speaker_id == "abc123"
    assert isinstance(items[1], Reject) and items[1].reason == "utterance video not downloaded"


def test_unknown_dataset_name_is_listed():
    with pytest.raises(KeyError, match="known: casia, ck_plus, .*emodb, emovo, fer2013, folders"):
        get_adapter("imagenet")
