"""Decoding only reference frames above a resolution: same sample times, nearby frames, fewer decoded."""

from __future__ import annotations

import numpy as np

from emotion_models.features.media import iter_frames
from tests.media_factory import write_video


def test_large_videos_skip_non_reference_frames(tmp_path):
    levels = [8 + 8 * i for i in range(30)]  # frame i is a flat grey of level 8 + 8 i
    path = write_video(tmp_path / "large.mp4", [np.full((600, 800, 3), v, np.uint8) for v in levels], fps=30)

    def sampled(skip_above: int | None) -> list[tuple[float, int]]:
        return [(time, levels.index(min(levels, key=lambda v: abs(v - image.mean()))))
                for time, image in iter_frames(path, 30, skip_nonref_above=skip_above)]

    every, references = sampled(None), sampled(640 * 480)
    assert [index for _, index in every] == list(range(30))  # all frames decoded: each sample is its own
    assert [time for time, _ in references] == [time for time, _ in every]  # the same sample times
    shifts = [index - round(time * 30) for time, index in references]
    assert 0 <= min(shifts) and max(shifts) <= 3  # a skipped frame's sample comes from a frame just after it
    assert len({index for _, index in references}) < 30  # B-frames were not decoded
    assert sampled(800 * 600) == every  # at or below the threshold everything is decoded
