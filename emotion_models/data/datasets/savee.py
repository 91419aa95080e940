"""SAVEE: ``<speaker>/<code><nn>.wav|avi`` or ``<speaker>_<code><nn>.wav`` (audio in any container,
e.g. ``JK_a01.flac``) with speakers DC, JE, JK, KL (all male) and codes a, d, f, h, n, sa, su.
Registration required:
http://kahlan.eps.surrey.ac.uk/savee/"""

from __future__ import annotations

import re
from pathlib import Path

from emotion_models.data.datasets.base import AUDIO_EXTENSIONS, Clip, DatasetAdapter, NameParseError

EMOTIONS = {"a": "anger", "d": "disgust", "f": "fear", "h": "happy", "n": "neutral", "sa": "sad", "su": "surprise"}
SPEAKERS = ("DC", "JE", "JK", "KL")
NAME = re.compile(r"^(?:(?P<speaker>DC|JE|JK|KL)_)?(?P<code>sa|su|a|d|f|h|n)(?P<number>\d{2})$")
GATED = ("SAVEE needs a registration at http://kahlan.eps.surrey.ac.uk/savee/: unpack "
         "AudioData/ (audio) or AudioVisualClip/ (video) so that speaker folders DC, JE, JK, KL lie below one folder.")


def parse_savee_name(path: Path) -> Clip:
    """Label a SAVEE clip from its emotion code and speaker (prefix or parent folder)."""
    match = NAME.match(path.stem)
    if match is None:
        raise NameParseError(f"'{path.name}' does not match SAVEE [SPEAKER_]<a|d|f|h|n|sa|su><NN>")
    speaker = match["speaker"] or path.parent.name.upper()
    if speaker not in SPEAKERS:
        raise NameParseError(f"'{path}': speaker folder '{path.parent.name}' is not one of {SPEAKERS}")
    return Clip(path=str(path), speaker_id=speaker, speaker_sex="male", emotion=EMOTIONS[match["code"]],
                attributes={"sentence": match["number"]})


class SaveeAudio(DatasetAdapter):
    name = "savee_audio"
    corpus = "savee"
    modality = "audio"
    extensions = AUDIO_EXTENSIONS
    homepage = "http://kahlan.eps.surrey.ac.uk/savee/"
    gated = GATED

    def parse(self, path: Path) -> Clip:
        return parse_savee_name(path)


class SaveeVideo(SaveeAudio):
    name = "savee_video"
    modality = "video"
    extensions = (".avi",)
