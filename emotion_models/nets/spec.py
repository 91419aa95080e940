"""What the shared training and evaluation code needs to know about one model (audio, face, video)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from emotion_models import paths
from emotion_models.features.shards import Extracted, FeatureStore
from emotion_models.params import Params, PretrainConfig, TrainConfig
from emotion_models.training.data import Sample


class ModelSpec(ABC):
    name: str
    modality: str  # manifest modality the model trains on

    array_format: str  # "parquet" or "npy"

    @abstractmethod
    def feature_key(self, params: Params) -> str:
        """Hash of the parameters that change this model's features."""

    def store(self, params: Params, root: Path | None = None) -> FeatureStore:
        """The feature store this model trains from (or a store of the same kind at ``root``).

        Opening a store with another feature key empties it: open the default store only with
        the parameters it should hold.
        """
        return FeatureStore(root or paths.features_dir(self.name), self.feature_key(params), self.array_format)

    @abstractmethod
    def arrays(self, params: Params) -> dict[str, tuple[int, ...]]:
        """Array names in the store and the shape of one sample of each."""

    @abstractmethod
    def model_config(self, params: Params) -> dict:
        """Everything needed to rebuild the network; stored in the checkpoint."""

    @abstractmethod
    def build(self, config: dict, pretrained: bool = True) -> nn.Module:
        """A network from ``model_config`` output; ``pretrained=False`` never fetches weights."""

    @abstractmethod
    def featuriser(self, params: Params) -> Callable[[dict], Extracted]:
        """A picklable function turning one manifest row into an Extracted result."""

    def train_config(self, params: Params) -> TrainConfig:
        return getattr(params, self.name).train

    def optimizer(self, model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
        """The optimizer training uses: Adam over the trainable parameters with ``config``'s learning
        rate and weight decay (a model may give groups of parameters their own)."""
        return torch.optim.Adam((p for p in model.parameters() if p.requires_grad),
                                lr=config.learning_rate, weight_decay=config.weight_decay)

    def pretrain_config(self, params: Params) -> PretrainConfig | None:
        """What stage `<name>_pretrain` trains on before `<name>_train`; None: the model has no such stage."""
        return None

    def prepare(self, model: nn.Module, store: FeatureStore, arrays: dict, train_ids: set[str]) -> None:
        """Fit data-dependent parts (e.g. input normalisation) on the training rows."""

    def train_transform(self, params: Params, model: nn.Module
                        ) -> Callable[[Sample, np.random.Generator], Sample] | None:
        """Augmentation applied to training samples only (may use statistics fitted by ``prepare``)."""
        return None

    def members(self, params: Params) -> int:
        """How many independently trained networks the model averages (1: one network)."""
        return 1

    def member_params(self, params: Params, member: int) -> Params:
        """The parameters one member trains with: its own seed (``seed + member``), one network."""
        return params.model_copy(update={"seed": params.seed + member})

    def checkpoint_path(self) -> Path:
        return paths.model_dir(self.name) / "model.pt"

    def pretrained_path(self, member: int = 0) -> Path:
        """The checkpoint stage `<name>_pretrain` writes and `<name>_train` starts from (member 0:
        pretrain/model.pt, as a one-network model has it; member i: pretrain/member-<i>/model.pt)."""
        folder = paths.model_dir(self.name) / "pretrain"
        return (folder / f"member-{member}" if member else folder) / "model.pt"

    def load(self, path: Path | None = None) -> tuple[nn.Module, dict]:
        """The trained network (eval mode) and its checkpoint meta."""
        from emotion_models.training.loop import load_checkpoint

        path = path or self.checkpoint_path()
        state, meta = load_checkpoint(path)
        try:
            with torch.device("meta"):  # no random initialisation of weights the checkpoint replaces
                model = self.build(meta["config"], pretrained=False)
            model.load_state_dict(state, assign=True)
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise RuntimeError(f"{path}: this checkpoint does not fit this version's {self.name} network "
                               f"(retrain it: dvc repro): {exc}") from exc
        missing = [name for name, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
        if missing:
            raise RuntimeError(f"{path}: this checkpoint does not fit this version's {self.name} network "
                               f"(retrain it: dvc repro): it lacks {', '.join(missing)}")
        return model.eval(), meta


def standardisation(store: FeatureStore, name: str, shape: tuple[int, ...], ids: set[str], axes: tuple[int, ...]
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std of array ``name`` over the rows in ``ids``, reduced over sample ``axes``."""
    total, total_sq, count = 0.0, 0.0, 0
    for table, arrays in store.iter_shards([name], {name: shape}):
        mask = np.isin(np.asarray(table["clip_id"].to_list()), list(ids))
        if not mask.any():
            continue
        values = np.asarray(arrays[name][mask], dtype=np.float64)
        reduce = (0, *(a + 1 for a in axes))
        total = total + values.sum(axis=reduce, keepdims=True)[0]
        total_sq = total_sq + np.square(values).sum(axis=reduce, keepdims=True)[0]
        count += values.shape[0] * int(np.prod([shape[a] for a in axes]))
    if count == 0:
        raise ValueError(f"no training rows for '{name}': run feature extraction first")
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 1e-12))
    return torch.tensor(mean, dtype=torch.float32), torch.tensor(std, dtype=torch.float32)
