"""Stages `<model>_train`: train a model on the train split, select on validation, keep the best."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import polars as pl
import torch
from torch import nn

from emotion_models import paths
from emotion_models.features.shards import FeatureStore
from emotion_models.labels import CLASS_NAMES
from emotion_models.nets.spec import ModelSpec
from emotion_models.params import Params, TrainConfig, apply_overrides
from emotion_models.training.data import ShardDataset, make_loader
from emotion_models.training.loop import (
    EpochMetrics,
    class_weights,
    fit,
    load_checkpoint,
    refit,
    save_checkpoint,
    seed_everything,
    select_device,
)

log = logging.getLogger(__name__)


def split_labels(spec: ModelSpec, split: str, manifest: pl.DataFrame | None = None,
                 include_composed: bool = True) -> dict[str, int]:
    """clip_id -> label of the model's modality in one split."""
    manifest = manifest if manifest is not None else pl.read_parquet(paths.MANIFEST)
    rows = manifest.filter((pl.col("modality") == spec.modality) & (pl.col("split") == split))
    if not include_composed:
        rows = rows.filter(~pl.col("composed"))
    return dict(zip(rows["clip_id"].to_list(), rows["label"].to_list()))


def clip_corpora(labels: dict[str, int]) -> dict[str, str]:
    """clip_id -> dataset (corpus) of the given clips, from the manifest."""
    manifest = pl.read_parquet(paths.MANIFEST, columns=["clip_id", "dataset"]).filter(pl.col("clip_id").is_in(list(labels)))
    return dict(zip(manifest["clip_id"].to_list(), manifest["dataset"].to_list()))


def best_hyperparameters_path(model: str) -> Path:
    return paths.model_dir(model) / "best_hyperparameters.json"


def best_hyperparameters(model: str) -> dict:
    """The tuned hyperparameters of ``model`` ({} when it was never tuned)."""
    path = best_hyperparameters_path(model)
    return json.loads(path.read_text()) if path.is_file() else {}


def initialise(spec: ModelSpec, model: nn.Module, config: dict, report: Callable[[str], None]) -> dict:
    """Load the `<name>_pretrain` checkpoint into ``model``; returns what the new checkpoint records of it."""
    path = spec.pretrained_path()
    state, meta = load_checkpoint(path)
    if meta.get("config") != config:
        raise RuntimeError(f"{path}: pretrained for another network or features than params.yaml now "
                           f"describes; rerun the {spec.name}_pretrain stage (dvc repro)")
    model.load_state_dict(state)
    report(f"starting from {path} (pretrained on {meta.get('pretrained_on')}, epoch {meta.get('epoch')})")
    return {"path": str(path), "datasets": meta.get("pretrained_on"), "epoch": meta.get("epoch"),
            "val_accuracy": meta.get("val_accuracy")}


def pretrain(spec: ModelSpec, params: Params, report: Callable[[str], None] = log.info) -> list[EpochMetrics]:
    """Stage `<name>_pretrain`: train the network on the train/val clips of ``<name>.pretrain.datasets``
    alone, with ``<name>.pretrain.train``; writes ``spec.pretrained_path()``. With no such clips the
    checkpoint is the seeded initial network (``<name>_train`` then starts from scratch) and the log says so."""
    config = spec.pretrain_config(params)
    if config is None:
        raise ValueError(f"the {spec.name} model has no pretraining stage")
    manifest = pl.read_parquet(paths.MANIFEST).filter(pl.col("dataset").is_in(config.datasets))
    extracted = set(spec.store(params).index()["clip_id"].to_list())
    splits = {name: split_labels(spec, name, manifest) for name in ("train", "val")}
    out = spec.pretrained_path()
    if not extracted & set(splits["train"]):
        report(f"{spec.name}: no extracted clips of {config.datasets} to pretrain on; {out} is the initial network")
        seed_everything(params.seed)
        model_config = spec.model_config(params)
        save_checkpoint(out, spec.build(model_config), {"model": spec.name, "config": model_config,
                                                        "pretrained_on": [], "epoch": 0})
        return []
    section = getattr(params, spec.name).model_copy(update={"train": config.train})
    return train(spec, params.model_copy(update={spec.name: section}), report, out_dir=out.parent, use_tuned=False,
                 splits=splits, pretrained=False, meta={"pretrained_on": config.datasets})


def train(spec: ModelSpec, params: Params, report: Callable[[str], None] = log.info, out_dir: Path | None = None,
          use_tuned: bool = True, store: FeatureStore | None = None,
          splits: dict[str, dict[str, int]] | None = None, pretrained: bool = True,
          meta: dict | None = None) -> list[EpochMetrics]:
    """Train ``spec``'s model from its feature store; writes model.pt and history.csv to models/<name>/.

    With ``use_tuned`` the values in models/<name>/best_hyperparameters.json override params.yaml
    (and the log says so). ``out_dir`` and ``store`` redirect outputs and inputs (tuning trials);
    ``splits`` ({"train": labels, "val": labels}) replaces the manifest's split (cross-validation).
    A model with a pretraining stage starts from its checkpoint when ``pretrained``; ``meta`` is
    added to the checkpoint's.
    """
    overrides = best_hyperparameters(spec.name) if use_tuned else {}
    if overrides:
        report(f"using tuned hyperparameters from {best_hyperparameters_path(spec.name)}: {overrides}")
        params = apply_overrides(params, spec.name, overrides)
    seed_everything(params.seed)
    store, arrays = store or spec.store(params), spec.arrays(params)
    out_dir = out_dir or paths.model_dir(spec.name)
    extracted = set(store.index()["clip_id"].to_list())
    splits = splits or {name: split_labels(spec, name) for name in ("train", "val")}
    train_labels = {k: v for k, v in splits["train"].items() if k in extracted}
    val_labels = {k: v for k, v in splits["val"].items() if k in extracted}
    if not train_labels:
        raise RuntimeError(f"{spec.name}: no extracted training clips; run the {spec.name}_features stage first")
    config = spec.model_config(params)
    train_config = spec.train_config(params)
    model = spec.build(config)
    start = initialise(spec, model, config, report) if pretrained and spec.pretrain_config(params) else None
    train_data = _training_data(spec, params, store, arrays, model, train_labels)
    val_data = ShardDataset(store, arrays, val_labels)
    report(f"{spec.name}: {len(train_labels)} training and {len(val_labels)} validation clips"
           + (f"; {len(train_data)} {train_config.balance}-balanced draws per epoch"
              if train_config.balance != "none" else ""))
    meta = {"model": spec.name, "config": config, "class_names": list(CLASS_NAMES), "feature_key": store.key,
            "train_clips": len(train_labels), "val_clips": len(val_labels), "seed": params.seed,
            "tuned": overrides, "pretrained": start, **(meta or {})}
    device = select_device()
    history = fit(
        model,
        make_loader(train_data, train_config.batch_size, train_config.num_workers, device),
        make_loader(val_data, train_config.batch_size, train_config.num_workers, device),
        train_config,
        out_dir / "model.pt",
        out_dir / "history.csv",
        meta,
        weights=_loss_weights(train_config, train_labels),
        report=report,
    )
    if train_config.refit and val_labels:
        _refit_with_validation(spec, params, store, arrays, {**train_labels, **val_labels}, history,
                               out_dir / "model.pt", report)
    return history


def _training_data(spec: ModelSpec, params: Params, store: FeatureStore, arrays: dict, model: nn.Module,
                   labels: dict[str, int]) -> ShardDataset:
    """The shuffled, augmented, balanced training rows; standardisation fitted on ``labels``' clips."""
    train_config = spec.train_config(params)
    spec.prepare(model, store, arrays, set(labels))
    corpora = clip_corpora(labels) if train_config.balance != "none" else None
    return ShardDataset(store, arrays, labels, shuffle=True, seed=params.seed,
                        transform=spec.train_transform(params, model), balance=train_config.balance,
                        corpora=corpora, epoch_samples=train_config.epoch_samples)


def _loss_weights(train_config: TrainConfig, labels: dict[str, int]) -> torch.Tensor | None:
    """Class weights for the loss when it is class-weighted and no balanced sampler evens the classes."""
    if train_config.class_weighted_loss and train_config.balance == "none":
        return class_weights(list(labels.values()))
    return None


def _refit_with_validation(spec: ModelSpec, params: Params, store: FeatureStore, arrays: dict,
                           labels: dict[str, int], history: list[EpochMetrics], checkpoint: Path,
                           report: Callable[[str], None]) -> None:
    """``train.refit``: train again from the same start on training + validation clips for the
    epochs the selection run chose, and replace its checkpoint (keeping its validation numbers)."""
    _, chosen = load_checkpoint(checkpoint)
    epochs = int(chosen["epoch"])
    seed_everything(params.seed)
    config = spec.model_config(params)
    model = spec.build(config)
    if chosen.get("pretrained"):
        initialise(spec, model, config, lambda _: None)
    train_config = spec.train_config(params)
    data = _training_data(spec, params, store, arrays, model, labels)
    report(f"{spec.name}: refit on {len(labels)} training and validation clips for the chosen {epochs} epochs")
    refit(model, make_loader(data, train_config.batch_size, train_config.num_workers, select_device()),
          train_config, [h.learning_rate for h in history[:epochs]], checkpoint,
          {**chosen, "train_clips": len(labels), "refit": {"epochs": epochs, "clips": len(labels)}},
          weights=_loss_weights(train_config, labels), report=report)
