"""OMG-Emotion: CSVs (``omg_TrainVideos.csv``, ``omg_ValidationVideos.csv``, ``omg_TestVideos.csv``)
list YouTube utterances with ``EmotionMaxVote`` 0-6 (anger, disgust, fear, happy, neutral, sad,
surprise). The videos are not redistributed: download them with the challenge's own scripts to
``<root>/<video>/<utterance>``. Speaker = YouTube video (one speaker each).
https://github.com/knowledgetechnologyuhh/OMGEmotionChallenge"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from emotion_models.data.datasets.base import Clip, DatasetAdapter, NameParseError, Reject

EMOTIONS = {"0": "anger", "1": "disgust", "2": "fear", "3": "happy", "4": "neutral", "5": "sad", "6": "surprise"}
CSV_NAMES = ("omg_TrainVideos.csv", "omg_ValidationVideos.csv", "omg_TestVideos.csv")


class Omg(DatasetAdapter):
    name = "omg"
    corpus = "omg"
    modality = "video"
    extensions = (".mp4",)
    homepage = "https://github.com/knowledgetechnologyuhh/OMGEmotionChallenge"
    gated = ("OMG-Emotion videos come from YouTube and are not redistributed: fetch them with the "
             "challenge's download script and keep its CSVs beside the <video>/<utterance> folders.")

    def parse(self, path: Path) -> Clip:
        raise NameParseError(f"'{path.name}': OMG labels come from its CSV files")

    def scan(self, root: Path, metadata_dir: Path | None = None) -> Iterator[Clip | Reject]:
        csv_files = [root / name for name in CSV_NAMES if (root / name).is_file()]
        if not csv_files:
            yield Reject(str(root), f"none of {', '.join(CSV_NAMES)} found")
            return
        for csv_path in csv_files:
            with csv_path.open(newline="") as handle:
                for row in csv.DictReader(handle):
                    video, utterance = row.get("video", ""), row.get("utterance", "")
                    path = root / video / utterance
                    emotion = EMOTIONS.get(str(row.get("EmotionMaxVote", "")).strip())
                    if emotion is None:
                        yield Reject(str(path), f"unknown EmotionMaxVote '{row.get('EmotionMaxVote')}'")
                    elif not path.is_file():
                        yield Reject(str(path), "utterance video not downloaded")
                    else:
                        yield Clip(path=str(path), speaker_id=video, emotion=emotion,
                                   attributes={"csv": csv_path.name})
