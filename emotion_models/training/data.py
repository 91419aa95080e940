"""Streaming feature shards into PyTorch: one shard in memory at a time, shuffled through a buffer."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Literal

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from emotion_models.features.shards import FeatureStore

Sample = dict[str, object]
Balance = Literal["none", "class", "corpus", "corpus_class"]


def balanced_repeats(labels: dict[str, int], corpora: dict[str, str], balance: Balance, samples: int,
                     rng: np.random.Generator) -> dict[str, int]:
    """How often each clip is drawn in one epoch of ``samples`` draws with replacement.

    "class": every class is equally likely; "corpus": every corpus is equally likely, its classes as
    often as they occur in it; "corpus_class": every corpus is equally likely and, within it, every
    class, so a large corpus does not drown a small one nor a frequent class a rare one.
    """
    ids = sorted(labels)
    if balance == "corpus_class":
        group_size = Counter((corpora[i], labels[i]) for i in ids)
        classes_in = Counter(corpus for corpus, _ in group_size)
        weights = np.array([1.0 / (len(classes_in) * classes_in[corpora[i]] * group_size[corpora[i], labels[i]])
                            for i in ids])
    else:  # one level: every class ("class") or every corpus ("corpus") equally likely
        group_of = labels if balance == "class" else corpora
        group_size = Counter(group_of[i] for i in ids)
        weights = np.array([1.0 / (len(group_size) * group_size[group_of[i]]) for i in ids])
    draws = np.bincount(rng.choice(len(ids), size=samples, p=weights / weights.sum()), minlength=len(ids))
    return {clip_id: int(n) for clip_id, n in zip(ids, draws) if n}


class ShardDataset(IterableDataset):
    """Rows of a FeatureStore whose clip_id is in ``labels`` (clip_id -> class index).

    With ``shuffle`` the shard order changes every epoch (``set_epoch``) and rows pass through
    a shuffle buffer, so training sees a fresh order without loading every clip. With ``corpora``
    (clip_id -> corpus) and a ``balance`` other than "none", each epoch draws ``epoch_samples`` rows
    with replacement (``balanced_repeats``), the same draws for the same seed and epoch.
    """

    def __init__(
        self,
        store: FeatureStore,
        arrays: dict[str, tuple[int, ...]],
        labels: dict[str, int],
        shuffle: bool = False,
        seed: int = 0,
        transform: Callable[[Sample, np.random.Generator], Sample] | None = None,
        buffer_size: int = 2048,
        extra_columns: tuple[str, ...] = (),
        balance: Balance = "none",
        corpora: dict[str, str] | None = None,
        epoch_samples: int | None = None,
    ) -> None:
        self.store, self.arrays, self.labels = store, arrays, labels
        self.shuffle, self.seed, self.transform = shuffle, seed, transform
        self.buffer_size, self.extra_columns = buffer_size, extra_columns
        if balance != "none" and corpora is None:
            raise ValueError(f"balance={balance!r} needs the corpus of every clip")
        self.balance, self.corpora = balance, corpora or {}
        self.epoch_samples = epoch_samples or len(labels)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.epoch_samples if self.balance != "none" else len(self.labels)

    def _repeats(self) -> dict[str, int]:
        """clip_id -> times the clip is yielded this epoch."""
        if self.balance == "none":
            return dict.fromkeys(self.labels, 1)
        rng = np.random.default_rng([self.seed, self.epoch])
        return balanced_repeats(self.labels, self.corpora, self.balance, self.epoch_samples, rng)

    def _rows(self, rng: random.Random) -> Iterator[Sample]:
        worker = get_worker_info()
        repeats = self._repeats()
        shards = list(self.store.iter_shards(self.arrays, self.arrays))
        if self.shuffle:
            rng.shuffle(shards)
        for number, (table, arrays) in enumerate(shards):
            if worker is not None and number % worker.num_workers != worker.id:
                continue
            ids = table["clip_id"].to_list()
            extras = {c: table[c].to_list() for c in self.extra_columns}
            for row, clip_id in enumerate(ids):
                for _ in range(repeats.get(clip_id, 0)):
                    sample: Sample = {name: np.array(values[row]) for name, values in arrays.items()}
                    sample.update(clip_id=clip_id, label=self.labels[clip_id])
                    sample.update({c: v[row] for c, v in extras.items()})
                    yield sample

    def __iter__(self) -> Iterator[Sample]:
        rng = random.Random(self.seed * 1000 + self.epoch)
        np_rng = np.random.default_rng(self.seed * 1000 + self.epoch)
        rows = self._rows(rng)
        if self.shuffle:
            rows = _shuffled(rows, self.buffer_size, rng)
        for sample in rows:
            if self.transform is not None:
                sample = self.transform(sample, np_rng)
            yield {k: torch.as_tensor(np.ascontiguousarray(v)) if isinstance(v, np.ndarray) else v
                   for k, v in sample.items()}


def _shuffled(rows: Iterator[Sample], size: int, rng: random.Random) -> Iterator[Sample]:
    buffer: list[Sample] = []
    for row in rows:
        buffer.append(row)
        if len(buffer) >= size:
            yield buffer.pop(rng.randrange(len(buffer)))
    rng.shuffle(buffer)
    yield from buffer


def make_loader(dataset: ShardDataset, batch_size: int, num_workers: int, device: torch.device) -> DataLoader:
    return DataLoader(dataset, batch_size=batch_size, num_workers=num_workers,
                      pin_memory=device.type == "cuda", persistent_workers=False)
