"""Berlin EmoDB: ``wav/<SS><TTT><E><V>.wav`` (or any audio container), e.g. ``03a01Fa.wav``: speaker
03, text a01, emotion letter F, version a. Emotion letters (German): W Ärger (anger), L Langeweile
(boredom), E Ekel (disgust), A Angst (fear), F Freude (happiness), T Trauer (sadness), N neutral.
Speakers 03, 10, 11, 12, 15 are male, 08, 09, 13, 14, 16 female. Boredom is none of the 5 classes:
data.labels.boredom decides (drop by default). http://emodb.bilderbar.info/"""

from __future__ import annotations

import re
from pathlib import Path

from emotion_models.data.datasets.base import AUDIO_EXTENSIONS, Clip, DatasetAdapter, NameParseError, lookup

EMOTIONS = {"W": "anger", "L": "boredom", "E": "disgust", "A": "fear", "F": "happy", "T": "sad", "N": "neutral"}
SEXES = {"03": "male", "10": "male", "11": "male", "12": "male", "15": "male",
         "08": "female", "09": "female", "13": "female", "14": "female", "16": "female"}
NAME = re.compile(r"^(?P<speaker>\d{2})(?P<text>[a-z]\d{2})(?P<code>[A-Z])(?P<version>[a-z]?)$")
GATED = ("Download Berlin EmoDB (download.zip) from http://emodb.bilderbar.info/ and unpack it: the "
         "wav/ folder holds files such as 03a01Fa.wav.")


def parse_emodb_name(path: Path) -> Clip:
    """Label an EmoDB clip from its speaker number and emotion letter."""
    match = NAME.match(path.stem)
    if match is None:
        raise NameParseError(f"'{path.name}' does not match EmoDB <speaker NN><text a01><emotion letter><version>")
    emotion = lookup(EMOTIONS, match["code"], "emotion letter", path)
    return Clip(path=str(path), speaker_id=match["speaker"], speaker_sex=SEXES.get(match["speaker"]), emotion=emotion,
                attributes={"text": match["text"], "version": match["version"]})


class EmoDb(DatasetAdapter):
    name = "emodb"
    corpus = "emodb"
    modality = "audio"
    extensions = AUDIO_EXTENSIONS
    homepage = "http://emodb.bilderbar.info/"
    gated = GATED

    def parse(self, path: Path) -> Clip:
        return parse_emodb_name(path)
