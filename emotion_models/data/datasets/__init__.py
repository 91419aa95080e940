"""One adapter per dataset and modality, looked up by the names used in params.yaml."""

from __future__ import annotations

from emotion_models.data.datasets.base import Clip, DatasetAdapter, NameParseError, Reject, RemoteFile
from emotion_models.data.datasets.casia import Casia
from emotion_models.data.datasets.ck_plus import CkPlus
from emotion_models.data.datasets.crema_d import CremaDAudio, CremaDVideo
from emotion_models.data.datasets.fer2013 import Fer2013
from emotion_models.data.datasets.omg import Omg
from emotion_models.data.datasets.raf_db import RafDb
from emotion_models.data.datasets.ravdess import RavdessAudio, RavdessVideo
from emotion_models.data.datasets.savee import SaveeAudio, SaveeVideo
from emotion_models.data.datasets.tess import Tess

ADAPTERS: dict[str, DatasetAdapter] = {
    adapter.name: adapter
    for adapter in (
        RavdessAudio(), CremaDAudio(), Tess(), SaveeAudio(), Casia(),
        Fer2013(), CkPlus(), RafDb(),
        RavdessVideo(), CremaDVideo(), SaveeVideo(), Omg(),
    )
}


def get_adapter(name: str) -> DatasetAdapter:
    """The adapter registered under ``name`` (a key of data.datasets in params.yaml)."""
    try:
        return ADAPTERS[name]
    except KeyError:
        raise KeyError(f"unknown dataset '{name}'; known: {', '.join(sorted(ADAPTERS))}") from None


__all__ = ["ADAPTERS", "Clip", "DatasetAdapter", "NameParseError", "Reject", "RemoteFile", "get_adapter"]
