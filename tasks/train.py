"""Stages `<model>_pretrain` and `<model>_train`: train a model on the train split, select the epoch on
validation, calibrate its probabilities there, keep the best; resumable after a crash. A model of
several members (``face.members``) trains each member apart (its own seed and pretraining), side by
side in processes of their own, then averages them into one checkpoint calibrated on validation."""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import shutil
import statistics
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import numpy as np
import polars as pl
import torch
from torch import nn
from torch.utils.data import DataLoader

from emotion_models import paths
from emotion_models.features.shards import FeatureStore
from emotion_models.labels import CLASS_NAMES
from emotion_models.nets.spec import ModelSpec
from emotion_models.params import Params, TrainConfig, apply_overrides
from emotion_models.training.calibration import calibrate, predict_logits
from emotion_models.training.data import ShardDataset, make_loader
from emotion_models.training.loop import (
    EpochMetrics,
    RunFiles,
    Trainer,
    accuracy_and_macro_f1,
    class_weights,
    fit,
    load_checkpoint,
    refit,
    save_checkpoint,
    seed_everything,
    select_device,
    write_history,
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


@dataclass(frozen=True)
class TrainingRun:
    """What one training run reads and where it writes; the `<name>_train` stage's own when left out."""

    out_dir: Path | None = None  # model.pt, history.csv (and resume.pt until it ends); models/<name>/
    store: FeatureStore | None = None  # the features (a tuning trial's own); the model's store
    splits: dict[str, dict[str, int]] | None = None  # {"train": labels, "val": labels}; the manifest's
    from_pretrained: bool = True  # start from the `<name>_pretrain` checkpoint where the model has one
    meta: dict = field(default_factory=dict)  # added to the checkpoint's meta
    member: int = 0  # the ensemble member it trains (whose `<name>_pretrain` checkpoint it starts from)


def initialise(spec: ModelSpec, model: nn.Module, config: dict, report: Callable[[str], None], member: int = 0) -> dict:
    """Load member ``member``'s `<name>_pretrain` checkpoint into ``model``; returns what the new
    checkpoint records of it."""
    path = spec.pretrained_path(member)
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
    checkpoint is the seeded initial network (``<name>_train`` then starts from scratch) and the log says so.
    A model of several members pretrains each (``spec.member_params``) to ``spec.pretrained_path(member)``;
    member 0's history is returned."""
    if spec.pretrain_config(params) is None:
        raise ValueError(f"the {spec.name} model has no pretraining stage")
    jobs = [(spec, spec.member_params(params, member), member) for member in range(spec.members(params))]
    return in_member_processes(pretrain_member, jobs, report)[0]


def pretrain_member(spec: ModelSpec, params: Params, member: int, report: Callable[[str], None]) -> list[EpochMetrics]:
    """One network's pretraining (``params`` are the member's own), to ``spec.pretrained_path(member)``."""
    config = spec.pretrain_config(params)
    manifest = pl.read_parquet(paths.MANIFEST).filter(pl.col("dataset").is_in(config.datasets))
    extracted = set(spec.store(params).index()["clip_id"].to_list())
    splits = {name: split_labels(spec, name, manifest) for name in ("train", "val")}
    out = spec.pretrained_path(member)
    if not extracted & set(splits["train"]):
        report(f"{spec.name}: no extracted clips of {config.datasets} to pretrain on; {out} is the initial network")
        seed_everything(params.seed)
        model_config = spec.model_config(params)
        save_checkpoint(out, spec.build(model_config), {"model": spec.name, "config": model_config,
                                                        "pretrained_on": [], "epoch": 0})
        return []
    section = getattr(params, spec.name).model_copy(update={"train": config.train})
    run = TrainingRun(out_dir=out.parent, splits=splits, from_pretrained=False,
                      meta={"pretrained_on": config.datasets})
    return train_model(spec, params.model_copy(update={spec.name: section}), run, report)


def train(spec: ModelSpec, params: Params, report: Callable[[str], None] = log.info) -> list[EpochMetrics]:
    """Stage `<name>_train`: train ``spec``'s model on its feature store and the manifest's split and
    write model.pt and history.csv to models/<name>/, continuing an interrupted run of the same
    parameters. The values in models/<name>/best_hyperparameters.json override params.yaml (and the
    log says so)."""
    overrides = best_hyperparameters(spec.name)
    if overrides:
        report(f"using tuned hyperparameters from {best_hyperparameters_path(spec.name)}: {overrides}")
        params = apply_overrides(params, spec.name, overrides)
    return train_model(spec, params, TrainingRun(meta={"tuned": overrides}), report)


def train_model(spec: ModelSpec, params: Params, run: TrainingRun = TrainingRun(),
                report: Callable[[str], None] = log.info) -> list[EpochMetrics]:
    """Train ``spec``'s model as ``run`` says: select the epoch on the validation clips, fit the
    temperature that calibrates its probabilities on them, then (``train.refit``) train again on
    training + validation clips. A run interrupted after some epoch continues from the resume file
    in ``run.out_dir`` when its parameters, clips and starting weights are the same. A model of
    several members is trained by :func:`train_ensemble`."""
    if spec.members(params) > 1:
        return train_ensemble(spec, params, run, report)
    seed_everything(params.seed)
    store, arrays = run.store or spec.store(params), spec.arrays(params)
    out_dir = run.out_dir or paths.model_dir(spec.name)
    train_labels, val_labels, splits = _run_labels(spec, store, run)
    config = spec.model_config(params)
    train_config = spec.train_config(params)
    model = spec.build(config)
    start = (initialise(spec, model, config, report, run.member)
             if run.from_pretrained and spec.pretrain_config(params) else None)
    train_data = _training_data(spec, params, store, arrays, model, train_labels)
    val_data = ShardDataset(store, arrays, val_labels)
    report(f"{spec.name}: {len(train_labels)} training and {len(val_labels)} validation clips"
           + (f"; {len(train_data)} {train_config.balance}-balanced draws per epoch"
              if train_config.balance != "none" else ""))
    meta = {"model": spec.name, "config": config, "class_names": list(CLASS_NAMES), "feature_key": store.key,
            "train_clips": len(train_labels), "val_clips": len(val_labels), "seed": params.seed,
            "tuned": {}, "pretrained": start, **run.meta}
    files = RunFiles.in_folder(out_dir, run_fingerprint(meta, train_config, splits, model))
    device = select_device()
    train_loader = make_loader(train_data, train_config.batch_size, train_config.num_workers, device)
    val_loader = make_loader(val_data, train_config.batch_size, train_config.num_workers, device)
    trainer = Trainer(model, spec.optimizer(model, train_config), train_config, len(train_loader),
                      _loss_weights(train_config, train_labels))
    history = fit(trainer, train_loader, val_loader, files, meta, report)
    calibrate_checkpoint(spec, files.checkpoint, val_loader, device, report)
    if train_config.refit and val_labels:
        _refit_with_validation(spec, params, store, arrays, {**train_labels, **val_labels}, history, files, report,
                               run.member)
    files.resume.unlink(missing_ok=True)
    return history


def _run_labels(spec: ModelSpec, store: FeatureStore, run: TrainingRun
                ) -> tuple[dict[str, int], dict[str, int], dict[str, dict[str, int]]]:
    """``(training labels, validation labels, the run's splits)``: the extracted clips of ``run``'s splits
    (the manifest's when it gives none)."""
    extracted = set(store.index()["clip_id"].to_list())
    splits = run.splits or {name: split_labels(spec, name) for name in ("train", "val")}
    train_labels = {k: v for k, v in splits["train"].items() if k in extracted}
    val_labels = {k: v for k, v in splits["val"].items() if k in extracted}
    if not train_labels:
        raise RuntimeError(f"{spec.name}: no extracted training clips; run the {spec.name}_features stage first")
    return train_labels, val_labels, splits


def train_ensemble(spec: ModelSpec, params: Params, run: TrainingRun = TrainingRun(),
                   report: Callable[[str], None] = log.info) -> list[EpochMetrics]:
    """Train each member as :func:`train_model` trains one network (``spec.member_params``, from its own
    pretraining) into ``member-<i>/`` of the run's folder, then write the ensemble there: model.pt (the
    members' weights, its validation accuracy and macro-F1, the temperature fitted on its validation
    clips, each member's seed, epoch and validation numbers) and history.csv (the members' mean per
    epoch), and remove the member folders (kept until then: an interrupted member resumes from its own).
    Returns that mean history."""
    out_dir = run.out_dir or paths.model_dir(spec.name)
    count = spec.members(params)
    jobs = [(spec, spec.member_params(params, member), replace(run, out_dir=out_dir / f"member-{member}", member=member))
            for member in range(count)]
    histories = in_member_processes(train_model, jobs, report)
    config = spec.model_config(params)
    ensemble = spec.build(config, pretrained=False)
    members = []
    for number, network in enumerate(ensemble.members):
        state, meta = load_checkpoint(out_dir / f"member-{number}" / "model.pt")
        network.load_state_dict(state)
        members.append(meta)
    store = run.store or spec.store(params)
    _, val_labels, _ = _run_labels(spec, store, run)
    train_config = spec.train_config(params)
    device = select_device()
    val_loader = make_loader(ShardDataset(store, spec.arrays(params), val_labels), train_config.batch_size,
                             train_config.num_workers, device)
    logits, labels, _ = predict_logits(ensemble, val_loader, device)
    accuracy, macro_f1 = accuracy_and_macro_f1(labels, logits.argmax(1))
    report(f"{spec.name}: {count} members, validation accuracy "
           + " and ".join(f"{m['val_accuracy']:.3f}" for m in members) + f" alone, {accuracy:.3f} together")
    summary = [{key: meta.get(key) for key in ("seed", "epoch", "val_accuracy", "val_macro_f1", "pretrained")}
               for meta in members]
    meta = {**members[0], "config": config, "seed": params.seed, "epoch": ", ".join(str(m["epoch"]) for m in members),
            "val_accuracy": accuracy, "val_macro_f1": macro_f1,
            "pretrained": [m["pretrained"] for m in members], "members": summary}
    save_checkpoint(out_dir / "model.pt", ensemble, {**meta, **fitted_calibration(spec, logits, labels, report)})
    history = mean_history(histories)
    write_history(out_dir / "history.csv", history)
    for member in range(count):
        shutil.rmtree(out_dir / f"member-{member}")
    return history


def mean_history(histories: Sequence[list[EpochMetrics]]) -> list[EpochMetrics]:
    """Per epoch, the mean of each figure over the runs that reached it (seconds: their sum)."""
    result = []
    for epoch in range(1, max(len(h) for h in histories) + 1):
        rows = [h[epoch - 1] for h in histories if len(h) >= epoch]
        result.append(EpochMetrics(epoch, *(statistics.fmean(getattr(r, name) for r in rows) for name in
                                            ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "val_macro_f1",
                                             "learning_rate")), sum(r.seconds for r in rows)))
    return result


def in_member_processes(function: Callable, jobs: list[tuple], report: Callable[[str], None]) -> list:
    """``function(*job, report)`` for each job (an ensemble member's): all side by side, each in a process
    of its own with an equal share of torch's threads (at least one), when there are threads for two or
    more; otherwise one after another in this process. (Three members on two threads run as three
    processes of one thread, rather than two at a time and then the third alone on one core.) Results in
    the jobs' order."""
    threads = torch.get_num_threads()
    if threads < 2 or len(jobs) < 2:
        return [function(*job, report) for job in jobs]
    processes, each = len(jobs), max(1, threads // len(jobs))
    report(f"{len(jobs)} members in {processes} processes of {each} threads each")
    with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"),
                             initializer=torch.set_num_threads, initargs=(each,)) as pool:
        futures = [pool.submit(function, *job, partial(_member_report, number)) for number, job in enumerate(jobs)]
        return [future.result() for future in futures]


def _member_report(member: int, message: str) -> None:
    """A member process's progress: printed, as its parent's logger does not reach it."""
    print(f"member {member}: {message}", flush=True)


def run_fingerprint(meta: dict, train_config: TrainConfig, splits: dict[str, dict[str, int]], model: nn.Module) -> str:
    """What a resume file must match to be continued: the checkpoint meta, the training
    parameters, the clips of each split and the starting weights (pretrained and standardised)."""
    digest = hashlib.sha256(json.dumps({"meta": meta, "train": train_config.model_dump(),
                                        "splits": {name: sorted(labels.items()) for name, labels in splits.items()}},
                                       sort_keys=True, default=str).encode())
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def calibrate_checkpoint(spec: ModelSpec, checkpoint: Path, val_loader: DataLoader, device: torch.device,
                         report: Callable[[str], None]) -> dict:
    """Fit the temperature of the selected checkpoint on the validation clips and record it in its
    meta (``temperature``, ``calibration``); returns that record."""
    model, meta = spec.load(checkpoint)
    logits, labels, _ = predict_logits(model, val_loader, device)
    fitted = fitted_calibration(spec, logits, labels, report)
    save_checkpoint(checkpoint, model, {**meta, **fitted})
    return fitted


def fitted_calibration(spec: ModelSpec, logits: np.ndarray, labels: np.ndarray, report: Callable[[str], None]) -> dict:
    """The checkpoint meta of the temperature fitted on validation ``logits`` (``calibrate``), reported."""
    fitted = calibrate(logits, labels)
    found = fitted["calibration"]
    report(f"{spec.name}: {found['note']}" if "note" in found else
           f"{spec.name}: temperature {fitted['temperature']:.3f} on {found['clips']} validation clips "
           f"(ECE {found['val_ece_before']:.3f} -> {found['val_ece_after']:.3f}, "
           f"NLL {found['nll_before']:.3f} -> {found['nll_after']:.3f})")
    return fitted


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
                           labels: dict[str, int], history: list[EpochMetrics], files: RunFiles,
                           report: Callable[[str], None], member: int = 0) -> None:
    """``train.refit``: train again from the same start (member ``member``'s pretraining, where the
    selection run had one) on training + validation clips for the epochs the selection run chose,
    and replace its checkpoint (keeping its validation numbers and the temperature fitted on them)."""
    _, chosen = load_checkpoint(files.checkpoint)
    epochs = int(chosen["epoch"])
    seed_everything(params.seed)
    config = spec.model_config(params)
    model = spec.build(config)
    if chosen.get("pretrained"):
        initialise(spec, model, config, lambda _: None, member)
    train_config = spec.train_config(params)
    data = _training_data(spec, params, store, arrays, model, labels)
    report(f"{spec.name}: refit on {len(labels)} training and validation clips for the chosen {epochs} epochs")
    loader = make_loader(data, train_config.batch_size, train_config.num_workers, select_device())
    trainer = Trainer(model, spec.optimizer(model, train_config), train_config, len(loader),
                      _loss_weights(train_config, labels))
    calibration = {**chosen["calibration"], "model": "the selection run's, before the refit on its validation clips"}
    refit(trainer, loader, [h.learning_rate for h in history[:epochs]], files,
          {**chosen, "train_clips": len(labels), "refit": {"epochs": epochs, "clips": len(labels)},
           "calibration": calibration}, report=report)
