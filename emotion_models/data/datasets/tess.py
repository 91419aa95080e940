"""TESS: ``<SPEAKER>_<emotion folder>/{OAF|YAF}_<word>_<emotion>.wav`` (or any audio container,
e.g. the 16 kHz FLAC copy in ../shared); two female speakers (older/younger), 'ps' is pleasant
surprise. https://doi.org/10.5683/SP2/E8H2MF"""

from __future__ import annotations

from pathlib import Path

from emotion_models.data.datasets.base import AUDIO_EXTENSIONS, Clip, DatasetAdapter, NameParseError, RemoteFile, lookup

EMOTIONS = {
    "angry": "anger", "disgust": "disgust", "fear": "fear", "happy": "happy",
    "neutral": "neutral", "ps": "surprise", "sad": "sad",
}
SPEAKERS = ("OAF", "YAF")


def parse_tess_name(path: Path) -> Clip:
    """Label a TESS clip from its speaker prefix and emotion suffix."""
    parts = path.stem.split("_")
    if len(parts) < 3 or parts[0].upper() not in SPEAKERS:
        raise NameParseError(f"'{path.name}' does not match TESS {{OAF|YAF}}_word_emotion")
    emotion = lookup(EMOTIONS, parts[-1].lower(), "emotion", path)
    return Clip(path=str(path), speaker_id=parts[0].upper(), speaker_sex="female", emotion=emotion,
                attributes={"word": "_".join(parts[1:-1]).lower()})


class Tess(DatasetAdapter):
    name = "tess"
    corpus = "tess"
    modality = "audio"
    extensions = AUDIO_EXTENSIONS
    homepage = "https://doi.org/10.5683/SP2/E8H2MF"

    def remote_files(self, metadata_dir: Path | None) -> list[RemoteFile]:
        url = ("https://borealisdata.ca/api/access/dataset/:persistentId/"
               "?persistentId=doi:10.5683/SP2/E8H2MF")
        return [RemoteFile(url, "tess.zip", extract=True)]

    def parse(self, path: Path) -> Clip:
        return parse_tess_name(path)
