"""Speaker-independent train/validation/test splits.

Speakers of one corpus (RAVDESS audio and video share actors) are ordered by a seeded hash and
cut into test, validation and train, so no speaker is in two splits, the result does not depend
on the order files were found in, and adding another dataset leaves existing splits unchanged.
A corpus of fewer than ``min_speakers`` speakers (``data.split.min_speakers``: 5 in params.yaml, so
TESS YAF, SAVEE DC and JE and CASIA's 4 speakers) cannot spare a speaker for validation or test
without losing a quarter of itself or more: it trains only, and is measured on unseen speakers by
cross-validation instead (leave one speaker out, leave one corpus out: tasks/cross_validate.py).
A corpus that fixes its own test set (FER2013's Usage) keeps it: its other speakers are cut into
validation and train only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

SPLITS = ("train", "val", "test")


def _speaker_rank(seed: int, corpus: str, speaker: str) -> str:
    return hashlib.sha256(f"{seed}:{corpus}:{speaker}".encode()).hexdigest()


def speaker_order(speakers: Iterable[tuple[str, str]], seed: int) -> list[tuple[str, str]]:
    """``(corpus, speaker_id)`` pairs in their seeded, input-order-independent order."""
    return sorted(set(speakers), key=lambda pair: _speaker_rank(seed, *pair))


def held_out_count(n: int, fraction: float, min_speakers: int = 3) -> int:
    """Speakers of a corpus of ``n`` held out for a split of ``fraction``: ``round(n * fraction)``,
    at least one when the fraction is positive, none for a corpus of fewer than ``min_speakers``
    speakers (it cannot spare one: such a corpus trains only)."""
    if fraction <= 0 or n == 0:
        return 0
    return max(1, round(n * fraction)) if n >= max(min_speakers, 3) else 0


def assign_splits(
    speakers: Iterable[tuple[str, str]], test_fraction: float, val_fraction: float, seed: int,
    fixed: dict[tuple[str, str], str] | None = None, min_speakers: int = 3,
) -> dict[tuple[str, str], str]:
    """Map each ``(corpus, speaker_id)`` to "train", "val" or "test".

    Within a corpus of n speakers, ``round(n * fraction)`` speakers (at least one when
    n >= ``min_speakers`` and the fraction is positive) go to test and to validation; the rest
    train. A corpus with fewer than ``min_speakers`` speakers (never fewer than three) trains only.
    In a corpus with ``fixed`` splits ("test" or "train" per speaker), the "test" speakers are its
    test set and ``val_fraction`` of the others validate.
    """
    fixed = fixed or {}
    by_corpus: dict[str, set[str]] = {}
    for corpus, speaker in speakers:
        by_corpus.setdefault(corpus, set()).add(speaker)
    assignment: dict[tuple[str, str], str] = {}
    for corpus, members in by_corpus.items():
        ordered = [speaker for _, speaker in speaker_order(((corpus, s) for s in members), seed)]
        if any((corpus, s) in fixed for s in ordered):
            assignment.update(_fixed_test(corpus, ordered, fixed, val_fraction, min_speakers))
            continue
        n_test = held_out_count(len(ordered), test_fraction, min_speakers)
        n_val = held_out_count(len(ordered), val_fraction, min_speakers)
        if n_test:
            n_val = min(n_val, len(ordered) - n_test - 1)
        for index, speaker in enumerate(ordered):
            split = "test" if index < n_test else "val" if index < n_test + max(n_val, 0) else "train"
            assignment[(corpus, speaker)] = split
    return assignment


def _fixed_test(corpus: str, ordered: list[str], fixed: dict[tuple[str, str], str], val_fraction: float,
                min_speakers: int) -> dict[tuple[str, str], str]:
    """The corpus's own test speakers; ``val_fraction`` of the rest (in seeded order) validate."""
    rest = [s for s in ordered if fixed.get((corpus, s)) != "test"]
    n_val = min(held_out_count(len(rest), val_fraction, min_speakers), max(len(rest) - 1, 0))
    assignment = {(corpus, s): "test" for s in ordered if fixed.get((corpus, s)) == "test"}
    assignment.update({(corpus, s): "val" if i < n_val else "train" for i, s in enumerate(rest)})
    return assignment
