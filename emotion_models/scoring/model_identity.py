"""The models' identity: which files scoring loads and the model version made from their bytes.

Outputs are keyed by content hash + model version: a new version scores every video again. The
hash of the files is cached in ``OUT/cache/models.json`` by their fingerprints, as the scan caches
the videos' hashes (emotion_models.scoring.fingerprints), so a run with nothing to score reads none
of them.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

from emotion_models.errors import EmotionError
from emotion_models.params import FusionConfig
from emotion_models.scoring.fingerprints import CACHE_DIR, RACY_SECONDS, Fingerprint

MODEL_VIEWS = ("video", "audio", "face")


class ModelsUnavailable(EmotionError, RuntimeError):
    """The trained models are missing: nothing can be scored (a systemic failure)."""


def model_files(model_dir: str | os.PathLike, runtime: str = "onnx") -> list[Path]:
    """The files scoring loads: the exported graphs and their meta (``runtime="onnx"``) or the three
    checkpoints (``"torch"``); ModelsUnavailable naming the missing ones."""
    from emotion_models.scoring.runtime import graph_files

    files = graph_files(model_dir) if runtime == "onnx" else [Path(model_dir) / name / "model.pt"
                                                               for name in MODEL_VIEWS]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise ModelsUnavailable(f"trained models missing: {', '.join(missing)} (run `dvc repro` first)")
    return files


def checkpoints_digest(model_dir: str | os.PathLike, out: str | os.PathLike | None = None,
                       runtime: str = "onnx") -> str:
    """sha256 over the bytes of the files scoring loads (:func:`model_files`); with ``out``, cached in
    ``OUT/cache/models.json`` by their fingerprints, so a run with nothing to score reads none of them."""
    files = model_files(model_dir, runtime)
    prints = [list(Fingerprint.of(f.resolve()).key) + [str(f.resolve())] for f in files]
    cache = Path(out) / CACHE_DIR / "models.json" if out is not None else None
    if cache is not None:
        try:
            cached = json.loads(cache.read_text())
            if cached["files"] == prints:
                return cached["checkpoints"]
        except (OSError, ValueError, KeyError, TypeError):
            pass
    digest = hashlib.sha256()
    for f in files:
        with f.open("rb") as handle:
            while block := handle.read(1 << 22):
                digest.update(block)
    if cache is not None and all(p[1] < time.time_ns() - int(RACY_SECONDS * 1e9) for p in prints):
        from emotion_models import atomic

        atomic.write_json(cache, {"files": prints, "checkpoints": digest.hexdigest()})
    return digest.hexdigest()


def model_version(model_dir: str | os.PathLike, fusion: FusionConfig = FusionConfig(),
                  out: str | os.PathLike | None = None, runtime: str = "onnx") -> str:
    """The models' version: 12 hex digits of sha256 over the hash of the files scoring loads (the
    ONNX graphs, or the checkpoints with ``runtime="torch"``), the runtime, the fusion choice
    (``models/video/fusion.json``) and the late-fusion settings of params.yaml (weights, text prior);
    changing any of them rescores. (Weights taken from the checkpoints are fixed by their bytes.)"""
    from emotion_models.scoring.fusion import read_choice

    key = json.dumps([checkpoints_digest(model_dir, out, runtime), runtime, read_choice(Path(model_dir))["choice"],
                      fusion.weights.model_dump(mode="json"), fusion.text_prior_votes])
    return hashlib.sha256(key.encode()).hexdigest()[:12]
