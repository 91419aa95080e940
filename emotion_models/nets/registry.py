"""The models of the product by name: audio, face, video."""

from __future__ import annotations

from importlib import import_module

from emotion_models.nets.spec import ModelSpec

_SPECS = {"audio": "emotion_models.nets.audio:AudioSpec", "face": "emotion_models.nets.face:FaceSpec",
          "video": "emotion_models.nets.video:VideoSpec"}
MODEL_NAMES = tuple(_SPECS)


def get_spec(name: str) -> ModelSpec:
    """The ModelSpec of ``name`` (imported on first use: each pulls in its own libraries)."""
    if name not in _SPECS:
        raise KeyError(f"unknown model '{name}'; choose one of {', '.join(_SPECS)}")
    module, cls = _SPECS[name].split(":")
    return getattr(import_module(module), cls)()
