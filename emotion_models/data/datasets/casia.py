"""CASIA Chinese emotional speech (Mandarin, acted): ``<speaker>/<emotion>/<nnn>.wav`` (or any audio
container, e.g. the 16 kHz FLAC copy in ../shared), speakers liuchanhg and zhaoquanyin (female),
wangzhe and ZhaoZuoxiang (male), emotion folders angry, fear, happy, neutral, sad, surprise, the
file name the sentence number. A name is unique only with its speaker and emotion folders (the same
texts in every emotion). Distributed by the Chinese Academy of Sciences on request:
http://www.chineseldc.org/"""

from __future__ import annotations

from pathlib import Path

from emotion_models.data.datasets.base import AUDIO_EXTENSIONS, Clip, DatasetAdapter, NameParseError

EMOTIONS = {
    "angry": "anger", "fear": "fear", "happy": "happy", "neutral": "neutral", "sad": "sad", "surprise": "surprise",
}
# Speaker folder (spelling of the source) -> sex. The corpus documentation gives two female and two
# male speakers; the median pitch of each speaker's neutral clips in ../shared agrees (liuchanhg 239 Hz,
# zhaoquanyin 254 Hz; wangzhe 120 Hz, ZhaoZuoxiang 137 Hz).
SPEAKERS = {"liuchanhg": "female", "zhaoquanyin": "female", "wangzhe": "male", "ZhaoZuoxiang": "male"}
SPEAKER_BY_FOLDER = {name.lower(): name for name in SPEAKERS}
GATED = ("CASIA is distributed by the Chinese Academy of Sciences on request (Chinese LDC): place the "
         "speaker folders liuchanhg, wangzhe, zhaoquanyin, ZhaoZuoxiang (each with the emotion folders "
         "angry, fear, happy, neutral, sad, surprise) below one folder.")


def parse_casia_path(path: Path) -> Clip:
    """Label a CASIA clip from its emotion and speaker folders; the file name is the sentence number."""
    speaker = SPEAKER_BY_FOLDER.get(path.parent.parent.name.lower())
    if speaker is None:
        raise NameParseError(f"'{path}': speaker folder '{path.parent.parent.name}' is not one of "
                             f"{', '.join(SPEAKERS)} (CASIA <speaker>/<emotion>/<nnn>)")
    emotion = EMOTIONS.get(path.parent.name.lower())
    if emotion is None:
        raise NameParseError(f"'{path}': emotion folder '{path.parent.name}' is not one of {', '.join(EMOTIONS)}")
    if not path.stem.isdigit():
        raise NameParseError(f"'{path}': file name '{path.stem}' is not a sentence number (CASIA <speaker>/<emotion>/<nnn>)")
    return Clip(path=str(path), speaker_id=speaker, speaker_sex=SPEAKERS[speaker], emotion=emotion,
                attributes={"sentence": path.stem})


class Casia(DatasetAdapter):
    name = "casia"
    corpus = "casia"
    modality = "audio"
    extensions = AUDIO_EXTENSIONS
    homepage = "http://www.chineseldc.org/"
    gated = GATED

    def parse(self, path: Path) -> Clip:
        return parse_casia_path(path)
