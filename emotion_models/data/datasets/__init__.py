"""One adapter per dataset and modality, looked up by the names used in params.yaml."""

from __future__ import annotations

from emotion_models.data.datasets.base import Clip, DatasetAdapter, NameParseError, Reject, RemoteFile
from emotion_models.data.datasets.casia import Casia
from emotion_models.data.datasets.ck_plus import CkPlus
from emotion_models.data.datasets.crema_d import CremaDAudio, CremaDVideo
from emotion_models.data.datasets.emodb import EmoDb
from emotion_models.data.datasets.emovo import Emovo
from emotion_models.data.datasets.fer2013 import Fer2013
from emotion_models.data.datasets.folders import LabelledFolders
from emotion_models.data.datasets.omg import Omg
from emotion_models.data.datasets.raf_db import RafDb
from emotion_models.data.datasets.ravdess import RavdessAudio, RavdessVideo
from emotion_models.data.datasets.savee import SaveeAudio, SaveeVideo
from emotion_models.data.datasets.tess import Tess
from emotion_models.params import DataConfig

ADAPTERS: dict[str, DatasetAdapter] = {
    adapter.name: adapter
    for adapter in (
        RavdessAudio(), CremaDAudio(), Tess(), SaveeAudio(), Casia(), EmoDb(), Emovo(), LabelledFolders(),
        Fer2013(), CkPlus(), RafDb(),
        RavdessVideo(), CremaDVideo(), SaveeVideo(), Omg(),
    )
}

# The language spoken in each speech corpus (an adapter's ``corpus``): the reports' per-language figures.
# Corpora of faces only, and a user's labelled folders, have none ("unknown").
CORPUS_LANGUAGES: dict[str, str] = {
    "ravdess": "English", "crema_d": "English", "tess": "English", "savee": "English",
    "casia": "Mandarin", "emodb": "German", "emovo": "Italian", "omg": "English",
}


def corpus_language(corpus: str) -> str:
    """The language spoken in ``corpus`` (CORPUS_LANGUAGES), "unknown" where the project does not know it."""
    return CORPUS_LANGUAGES.get(corpus, "unknown")


def get_adapter(name: str, data: DataConfig | None = None) -> DatasetAdapter:
    """The adapter registered under ``name`` (a key of data.datasets in params.yaml), configured by
    ``data`` where given (the labelled folders' label map)."""
    try:
        adapter = ADAPTERS[name]
    except KeyError:
        raise KeyError(f"unknown dataset '{name}'; known: {', '.join(sorted(ADAPTERS))}") from None
    return adapter.configured(data) if data is not None else adapter


__all__ = ["ADAPTERS", "CORPUS_LANGUAGES", "Clip", "DatasetAdapter", "NameParseError", "Reject", "RemoteFile", "corpus_language", "get_adapter"]
