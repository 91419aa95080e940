"""Scoring never imports torch: the scoring worker runs ONNX graphs (~2.6 s and ~0.5 GiB per process saved)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO

SCORING_MODULES = sorted(f"emotion_models.scoring.{path.stem}" for path in (REPO / "emotion_models" / "scoring").glob("*.py")
                         if path.stem != "__init__")


def test_every_scoring_module_imports_without_torch():
    code = ("import sys, importlib\n"
            f"for name in {SCORING_MODULES!r}:\n"
            "    importlib.import_module(name)\n"
            "print(sorted(m for m in ('torch', 'torchvision', 'pytorch_grad_cam') if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(SCORING_MODULES) >= 6 and result.stdout.strip() == "[]"
