"""EMOVO (Italian): ``<speaker>/<emotion>-<speaker>-<sentence>.wav`` (or any audio container), e.g.
``f1/dis-f1-b1.wav``. Emotion codes: dis disgusto (disgust), gio gioia (joy: happy), neu neutrale,
pau paura (fear), rab rabbia (anger), sor sorpresa (surprise), tri tristezza (sadness); speakers
f1-f3 female, m1-m3 male; the sentence code (b1, l1, n1, d1...). http://voice.fub.it/activities/corpora/emovo/"""

from __future__ import annotations

import re
from pathlib import Path

from emotion_models.data.datasets.base import AUDIO_EXTENSIONS, Clip, DatasetAdapter, NameParseError, lookup

EMOTIONS = {"dis": "disgust", "gio": "happy", "neu": "neutral", "pau": "fear", "rab": "anger",
            "sor": "surprise", "tri": "sad"}
SEXES = {"f": "female", "m": "male"}
NAME = re.compile(r"^(?P<code>[a-z]{3})-(?P<speaker>(?P<sex>[fm])\d)-(?P<sentence>[a-z]+\d*)$")
GATED = ("Download EMOVO from http://voice.fub.it/activities/corpora/emovo/ and unpack it: speaker "
         "folders f1, f2, f3, m1, m2, m3 with files such as dis-f1-b1.wav.")


def parse_emovo_name(path: Path) -> Clip:
    """Label an EMOVO clip from its emotion code and speaker (the speaker folder must agree where there is one)."""
    match = NAME.match(path.stem.lower())
    if match is None:
        raise NameParseError(f"'{path.name}' does not match EMOVO <emotion>-<speaker f1..m3>-<sentence>")
    emotion = lookup(EMOTIONS, match["code"], "emotion", path)
    folder = path.parent.name.lower()
    if re.fullmatch(r"[fm]\d", folder) and folder != match["speaker"]:
        raise NameParseError(f"'{path}': speaker {match['speaker']} in a folder of speaker {folder}")
    return Clip(path=str(path), speaker_id=match["speaker"], speaker_sex=SEXES[match["sex"]], emotion=emotion,
                attributes={"sentence": match["sentence"]})


class Emovo(DatasetAdapter):
    name = "emovo"
    corpus = "emovo"
    modality = "audio"
    extensions = AUDIO_EXTENSIONS
    homepage = "http://voice.fub.it/activities/corpora/emovo/"
    gated = GATED

    def parse(self, path: Path) -> Clip:
        return parse_emovo_name(path)
