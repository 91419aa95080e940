"""Per-speaker normalisation of the audio model's clip features.

The Whisper embedding and utterance statistics of one person's clips share an offset that comes
from the voice, the microphone and the room, not the emotion. Standardising each feature over all
clips of one speaker (a corpus speaker in training and cross-validation, the speech windows of one
video in scoring) removes it. The normalised values are then mapped onto a reference mean and
standard deviation (the training population's), so the network's own input standardisation and a
clip scored alone, on today's path with no group to normalise over, see the same scale.

With few clips the group's statistics are noisy: a group is normalised only when it has at least
``min_clips`` of them (``audio.normalise.min_clips``); smaller groups keep their features as they are.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl

from emotion_models.features.shards import FeatureStore

STD_FLOOR = 1e-3  # a feature (almost) constant within a group is centred, not blown up


def group_statistics(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation (floored at ``STD_FLOOR``) over the rows of one group."""
    values = np.asarray(values, dtype=np.float64)
    return values.mean(axis=0), np.maximum(values.std(axis=0), STD_FLOOR)


def normalise_group(values: np.ndarray, reference_mean: np.ndarray, reference_std: np.ndarray,
                    min_clips: int) -> tuple[np.ndarray, bool]:
    """``values`` (rows of one speaker or video) standardised over their rows and mapped onto the
    reference mean and std; unchanged when there are fewer than ``min_clips`` rows. Returns the
    values (float32) and whether they were normalised."""
    values = np.asarray(values, dtype=np.float32)
    if values.shape[0] < max(min_clips, 2):
        return values, False
    mean, std = group_statistics(values)
    mapped = (values - mean) / std * reference_std + reference_mean
    return mapped.astype(np.float32), True


def normalise_by_group(values: np.ndarray, groups: Sequence[Hashable], reference_mean: np.ndarray,
                       reference_std: np.ndarray, min_clips: int) -> tuple[np.ndarray, np.ndarray]:
    """Every group of rows (``groups[i]`` is row i's speaker) normalised by ``normalise_group``;
    returns the values and a boolean per row: was its group normalised."""
    values = np.asarray(values, dtype=np.float32)
    out, used = values.copy(), np.zeros(values.shape[0], bool)
    members: dict[Hashable, list[int]] = {}
    for row, group in enumerate(groups):
        members.setdefault(group, []).append(row)
    for rows in members.values():
        out[rows], used[rows] = normalise_group(values[rows], reference_mean, reference_std, min_clips)
    return out, used


GROUP_COLUMNS = ("dataset", "speaker_id")  # a speaker of a store: its corpus and id


def _speakers(table: pl.DataFrame) -> list[tuple | None]:
    """Each row's speaker; None for every row of a store without speakers (it is read as stored)."""
    if not all(column in table.columns for column in GROUP_COLUMNS):
        return [None] * table.height
    return list(zip(*(table[c].to_list() for c in GROUP_COLUMNS)))


class SpeakerNormalisedStore(FeatureStore):
    """A feature store whose arrays are read standardised over each speaker's rows (``normalise_group``)
    and mapped onto the mean and std of all its rows (the reference). It is written as the plain
    store is: what is stored is never normalised, so extraction stays incremental."""

    def __init__(self, root: str | Path, key: str, array_format: Literal["parquet", "npy"], min_clips: int) -> None:
        super().__init__(root, key, array_format)
        self.min_clips = min_clips
        self._statistics: dict[str, tuple] = {}

    def _speaker_statistics(self, name: str, shapes: dict | None) -> tuple:
        """(reference mean, reference std, {speaker: (mean, std)} of speakers with min_clips rows) of ``name``."""
        if name not in self._statistics:
            values: dict[tuple, list[np.ndarray]] = {}
            for table, arrays in super().iter_shards([name], shapes):
                for row, speaker in enumerate(_speakers(table)):
                    values.setdefault(speaker, []).append(np.asarray(arrays[name][row], np.float32))
            every = np.stack([v for rows in values.values() for v in rows]) if values else np.zeros((1, 1))
            speakers = {speaker: group_statistics(np.stack(rows)) for speaker, rows in values.items()
                        if speaker is not None and len(rows) >= max(self.min_clips, 2)}
            self._statistics[name] = (every.mean(0), np.maximum(every.std(0), STD_FLOOR), speakers)
        return self._statistics[name]

    def reference(self, shapes: dict[str, tuple[int, ...]]) -> dict[str, dict[str, list[float]]] | None:
        """The mean and std of all rows of each array (where every speaker's rows are mapped); None
        for an empty store."""
        if not self.index().height:
            return None
        return {name: {"mean": self._speaker_statistics(name, shapes)[0].ravel().tolist(),
                       "std": self._speaker_statistics(name, shapes)[1].ravel().tolist()} for name in shapes}

    def iter_shards(self, array_names: Iterable[str], shapes: dict[str, tuple[int, ...]] | None = None
                    ) -> Iterator[tuple[pl.DataFrame, dict[str, np.ndarray]]]:
        names = list(array_names)
        statistics = {name: self._speaker_statistics(name, shapes) for name in names}
        for table, arrays in super().iter_shards(names, shapes):
            speakers = _speakers(table)
            out = {}
            for name in names:
                reference_mean, reference_std, by_speaker = statistics[name]
                values = np.array(arrays[name], dtype=np.float32)
                for row, speaker in enumerate(speakers):
                    if speaker in by_speaker:
                        mean, std = by_speaker[speaker]
                        values[row] = (values[row] - mean) / std * reference_std + reference_mean
                out[name] = values
            yield table, out


def normalise_windows(inputs: dict[str, np.ndarray], speech: np.ndarray, config: dict | None
                      ) -> tuple[dict[str, np.ndarray], bool]:
    """A video's audio inputs (one row per window) with its speech windows standardised together onto
    the model's reference, as its training speakers were (``config``: the audio checkpoint's
    ``normalise``); unchanged (today's path) for a model trained without it or a video with fewer than
    ``min_clips`` speech windows. Returns the inputs and whether they were normalised."""
    if (not config or config.get("by") != "speaker" or not config.get("reference")
            or int(speech.sum()) < max(int(config["min_clips"]), 2)):
        return inputs, False
    out = dict(inputs)
    for name, reference in config["reference"].items():
        values = np.array(inputs[name], dtype=np.float32)
        shape = values.shape[1:]
        flat = values.reshape(len(values), -1)
        flat[speech], _ = normalise_group(flat[speech], np.asarray(reference["mean"]), np.asarray(reference["std"]), 2)
        out[name] = flat.reshape(len(values), *shape)
    return out, True
