"""RAVDESS: ``MM-VC-EE-II-SS-RR-AA.ext`` (modality, vocal channel, emotion, intensity,
statement, repetition, actor; odd actors are male). https://zenodo.org/records/1188976"""

from __future__ import annotations

from pathlib import Path

from emotion_models.data.datasets.base import (
    AUDIO_EXTENSIONS,
    Clip,
    DatasetAdapter,
    NameParseError,
    RemoteFile,
    lookup,
    split_stem,
)

EMOTIONS = {
    "01": "neutral", "02": "calm", "03": "happy", "04": "sad",
    "05": "anger", "06": "fear", "07": "disgust", "08": "surprise",
}
MODALITIES = {"01": "audio-video", "02": "video-only", "03": "audio-only"}
CHANNELS = {"01": "speech", "02": "song"}
CONVENTION = "RAVDESS MM-VC-EE-II-SS-RR-AA"
ZENODO = "https://zenodo.org/records/1188976/files/{name}?download=1"


def parse_ravdess_name(path: Path) -> Clip:
    """Label a RAVDESS file from its seven-field name."""
    mm, vc, ee, ii, ss, rr, aa = split_stem(path, "-", 7, CONVENTION)
    modality = lookup(MODALITIES, mm, "modality", path)
    channel = lookup(CHANNELS, vc, "vocal channel", path)
    emotion = lookup(EMOTIONS, ee, "emotion", path)
    if not aa.isdigit() or not 1 <= int(aa) <= 99:
        raise NameParseError(f"'{path.name}': actor '{aa}' is not a number")
    return Clip(
        path=str(path),
        speaker_id=f"actor{int(aa):02d}",
        speaker_sex="male" if int(aa) % 2 else "female",
        emotion=emotion,
        attributes={"modality": modality, "channel": channel, "intensity": ii, "statement": ss, "repetition": rr},
    )


class RavdessAudio(DatasetAdapter):
    name = "ravdess_audio"
    corpus = "ravdess"
    modality = "audio"
    extensions = AUDIO_EXTENSIONS
    homepage = "https://zenodo.org/records/1188976"

    def remote_files(self, metadata_dir: Path | None) -> list[RemoteFile]:
        # Zenodo publishes only md5 sums on the record page; the archive's file count is checked after extraction.
        return [
            RemoteFile(ZENODO.format(name=name), name, extract=True)
            for name in ("Audio_Speech_Actors_01-24.zip", "Audio_Song_Actors_01-24.zip")
        ]

    def parse(self, path: Path) -> Clip:
        clip = parse_ravdess_name(path)
        if clip.attributes["modality"] != "audio-only":
            raise NameParseError(f"'{path.name}': modality {clip.attributes['modality']} is not audio-only")
        return clip


class RavdessVideo(DatasetAdapter):
    name = "ravdess_video"
    corpus = "ravdess"
    modality = "video"
    extensions = (".mp4",)
    homepage = "https://zenodo.org/records/1188976"

    def remote_files(self, metadata_dir: Path | None) -> list[RemoteFile]:
        return [
            RemoteFile(ZENODO.format(name=f"Video_Speech_Actor_{actor:02d}.zip"),
                       f"Video_Speech_Actor_{actor:02d}.zip", extract=True)
            for actor in range(1, 25)
        ]

    def parse(self, path: Path) -> Clip:
        clip = parse_ravdess_name(path)
        if clip.attributes["modality"] != "audio-video":
            raise NameParseError(f"'{path.name}': modality {clip.attributes['modality']} has no audio-video")
        return clip
