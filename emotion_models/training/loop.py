"""The training loop shared by the audio, face and video models.

Plain and readable, like torchvision's references: the optimizer the model's spec chooses,
ReduceLROnPlateau on validation accuracy (or a cosine decay, batch by batch), early stopping, the
best checkpoint kept, metrics logged per epoch to the logger and to a CSV; optional mixup (as
torchvision's ``--mixup-alpha``); optionally a refit on training and validation data for the chosen
number of epochs. Deterministic on CPU for a given seed; CUDA with AMP and pinned memory when present.
After every epoch a resume file holds the weights, optimizer, schedules, scaler, random generators
and the best so far, so a run interrupted after epoch k continues to exactly the result of an
uninterrupted one. Checkpoints hold tensors and a JSON string only, and load with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import pickle
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import f1_score
from torch import nn
from torch.utils.data import DataLoader

from emotion_models import atomic
from emotion_models.errors import MissingInput
from emotion_models.labels import NUM_CLASSES
from emotion_models.params import TrainConfig

log = logging.getLogger(__name__)
Batch = dict[str, object]


def select_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def to_device(batch: Batch, device: torch.device) -> Batch:
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


@dataclass
class EpochMetrics:
    epoch: int
    train_loss: float
    train_accuracy: float
    val_loss: float
    val_accuracy: float
    val_macro_f1: float
    learning_rate: float
    seconds: float


def save_checkpoint(path: str | Path, model: nn.Module | dict[str, torch.Tensor], meta: dict) -> Path:
    """Weights (of a network, or its state dict) plus a JSON description (params, label map, feature
    key, normalisation)."""
    state = model.state_dict() if isinstance(model, nn.Module) else model
    payload = {"state_dict": {k: v.detach().cpu() for k, v in state.items()},
               "meta": json.dumps(meta, sort_keys=True, default=str)}
    with atomic.atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def load_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """``(state_dict, meta)`` of a checkpoint written by :func:`save_checkpoint`; no pickled code runs."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise MissingInput(f"{path}: model checkpoint not found (train it first: dvc repro)") from None
    return payload["state_dict"], json.loads(payload["meta"])


def class_weights(labels: list[int]) -> torch.Tensor:
    """Inverse-frequency weights (mean 1) for the classes present; absent classes get 0."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=NUM_CLASSES).astype(np.float64)
    weights = np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / max((counts > 0).sum(), 1), 0.0)
    return torch.tensor(weights, dtype=torch.float32)


def _l1_penalty(model: nn.Module) -> torch.Tensor:
    return sum(p.abs().sum() for name, p in model.named_parameters() if p.requires_grad and name.endswith("weight"))


def mix_batch(batch: Batch, permutation: torch.Tensor, weight: float) -> Batch:
    """``weight * batch + (1 - weight) * batch[permutation]`` for every input tensor (mixup).

    Integer images become float (the models scale them either way); boolean masks are OR-ed.
    """
    mixed = {}
    for key, value in batch.items():
        if key == "label" or not isinstance(value, torch.Tensor):
            mixed[key] = value
        elif value.dtype == torch.bool:
            mixed[key] = value | value[permutation]
        else:
            value = value.float()
            mixed[key] = weight * value + (1.0 - weight) * value[permutation]
    return mixed


def run_epoch(model: nn.Module, loader: DataLoader, device: torch.device, loss_fn: nn.Module,
              optimizer: torch.optim.Optimizer | None = None, scaler: torch.amp.GradScaler | None = None,
              l1: float = 0.0, mixup_alpha: float = 0.0,
              batch_scheduler: torch.optim.lr_scheduler.LRScheduler | None = None) -> tuple[float, float, float]:
    """One pass; trains when ``optimizer`` is given. Returns (loss, accuracy, macro-F1).

    With ``mixup_alpha`` > 0 each training batch is mixed with a shuffled copy of itself and the
    loss weighs both labels; ``batch_scheduler`` steps after every training batch.
    """
    training = optimizer is not None
    model.train(training)
    total_loss, predictions, targets = 0.0, [], []
    for batch in loader:
        batch = to_device(batch, device)
        labels = batch["label"]
        weight, permutation = 1.0, None
        if training and mixup_alpha > 0:
            weight = float(np.random.beta(mixup_alpha, mixup_alpha))
            permutation = torch.randperm(labels.shape[0], device=labels.device)
            batch = mix_batch(batch, permutation, weight)
        with torch.set_grad_enabled(training), torch.autocast(device.type, enabled=device.type == "cuda"):
            logits = model(batch)
            loss = loss_fn(logits.float(), labels)
            if permutation is not None:
                loss = weight * loss + (1.0 - weight) * loss_fn(logits.float(), labels[permutation])
            if training and l1:
                loss = loss + l1 * _l1_penalty(model)
        if training:
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                optimizer.step()
            if batch_scheduler is not None:
                batch_scheduler.step()
        total_loss += float(loss.detach()) * labels.shape[0]
        predictions.append(logits.detach().argmax(1).cpu())
        targets.append(labels.cpu())
    if not targets:
        return math.nan, math.nan, math.nan
    y_pred, y_true = torch.cat(predictions).numpy(), torch.cat(targets).numpy()
    return (total_loss / len(y_true), *accuracy_and_macro_f1(y_true, y_pred))


def accuracy_and_macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[float, float]:
    """The validation figures an epoch is selected on (NaN for no rows)."""
    if not len(y_true):
        return math.nan, math.nan
    return float((y_pred == y_true).mean()), float(f1_score(y_true, y_pred, average="macro", zero_division=0))


class Trainer:
    """The set-up a training run shares between ``fit`` and ``refit``: the device, the loss, the
    optimizer (from the model's spec), the learning-rate schedule (a cosine stepped per batch, or a
    plateau schedule stepped per epoch) and the AMP scaler on CUDA."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, config: TrainConfig,
                 batches_per_epoch: int, weights: torch.Tensor | None = None) -> None:
        self.device = select_device()
        self.model, self.optimizer, self.config = model.to(self.device), optimizer, config
        self.loss_fn = nn.CrossEntropyLoss(weight=weights.to(self.device) if weights is not None else None)
        self.batch_scheduler, self.plateau = None, None
        if config.lr_schedule == "cosine":
            self.batch_scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
                optimizer, T_max=max(config.epochs * batches_per_epoch, 1))
        else:
            self.plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer, mode="max", factor=config.lr_factor, patience=config.lr_patience)
        self.scaler = torch.amp.GradScaler("cuda") if self.device.type == "cuda" else None

    @property
    def learning_rate(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def train_epoch(self, loader: DataLoader) -> tuple[float, float, float]:
        return run_epoch(self.model, loader, self.device, self.loss_fn, self.optimizer, self.scaler, self.config.l1,
                         self.config.mixup_alpha, self.batch_scheduler)

    def validate(self, loader: DataLoader) -> tuple[float, float, float]:
        return run_epoch(self.model, loader, self.device, self.loss_fn)

    def state_dict(self) -> dict:
        """Everything the next epoch depends on: weights, optimizer, schedules, scaler and the random generators."""
        return {
            "model": {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "schedules": {name: s.state_dict() for name, s in (("batch", self.batch_scheduler),
                                                                ("plateau", self.plateau)) if s is not None},
            "scaler": self.scaler.state_dict() if self.scaler is not None else {},
            "random": random_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        for name, schedule in (("batch", self.batch_scheduler), ("plateau", self.plateau)):
            if schedule is not None:
                schedule.load_state_dict(state["schedules"][name])
        if self.scaler is not None and state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])
        set_random_state(state["random"])


def random_state() -> dict:
    """The Python, NumPy, torch and CUDA generators' states, as tensors and plain values
    (``torch.load(weights_only=True)`` reads them back)."""
    numpy_state = np.random.get_state(legacy=False)
    key = torch.from_numpy(numpy_state["state"]["key"].astype(np.int64))
    return {"python": random.getstate(), "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": {**numpy_state, "state": {**numpy_state["state"], "key": key}}}


def set_random_state(state: dict) -> None:
    """Restore the generators saved by :func:`random_state`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    numpy_state = state["numpy"]
    key = numpy_state["state"]["key"].numpy().astype(np.uint32)
    np.random.set_state({**numpy_state, "state": {**numpy_state["state"], "key": key}})


@dataclass(frozen=True)
class RunFiles:
    """What a training run writes: the checkpoint it delivers, the per-epoch history, and the resume
    file (rewritten atomically after every epoch, continued only by a run with the same ``fingerprint``)."""

    checkpoint: Path
    history: Path
    resume: Path
    fingerprint: str

    @classmethod
    def in_folder(cls, folder: Path, fingerprint: str) -> RunFiles:
        return cls(folder / "model.pt", folder / "history.csv", folder / "resume.pt", fingerprint)


@dataclass
class Progress:
    """Where a run stands: the selection epochs done, its history and best so far, and the refit epochs done."""

    epoch: int = 0
    history: list[EpochMetrics] = field(default_factory=list)
    best: float = -1.0
    since_best: int = 0
    stopped: bool = False  # early stopping ended the selection
    best_meta: dict = field(default_factory=dict)
    best_state: dict[str, torch.Tensor] = field(default_factory=dict)
    refit_epoch: int | None = None  # None: the refit has not started
    trainer: dict | None = None  # the state of the phase in progress

    def save(self, files: RunFiles, trainer: Trainer) -> None:
        record = {"fingerprint": files.fingerprint, "epoch": self.epoch, "history": [asdict(h) for h in self.history],
                  "best": self.best, "since_best": self.since_best, "stopped": self.stopped,
                  "best_meta": self.best_meta, "refit_epoch": self.refit_epoch}
        payload = {"progress": json.dumps(record, default=str), "best_state": self.best_state,
                   "trainer": trainer.state_dict()}
        with atomic.atomic_path(files.resume) as tmp:
            torch.save(payload, tmp)

    @classmethod
    def load(cls, files: RunFiles, report: Callable[[str], None]) -> Progress | None:
        """The run's progress in ``files.resume``; None (and the log says why) when there is none to continue."""
        if not files.resume.is_file():
            return None
        try:
            payload = torch.load(files.resume, map_location="cpu", weights_only=True)
            record = json.loads(payload["progress"])
        except (OSError, RuntimeError, KeyError, ValueError, EOFError, pickle.UnpicklingError) as exc:
            report(f"{files.resume}: unreadable ({exc}); starting afresh")
            return None
        if record["fingerprint"] != files.fingerprint:
            report(f"{files.resume}: left by a run with other parameters or data; starting afresh")
            return None
        return cls(record["epoch"], [EpochMetrics(**h) for h in record["history"]], record["best"],
                   record["since_best"], record["stopped"], record["best_meta"], payload["best_state"],
                   record["refit_epoch"], payload["trainer"])


def fit(trainer: Trainer, train_loader: DataLoader, val_loader: DataLoader, files: RunFiles, meta: dict,
        report: Callable[[str], None] = log.info) -> list[EpochMetrics]:
    """Train ``trainer.model`` (its forward takes a batch dict and returns logits); keep the best epoch.

    The checkpoint with the best validation score (``config.monitor``) is written to ``files.checkpoint`` (with
    ``meta`` plus the epoch, its validation accuracy and macro-F1 (NaN without validation clips) and the
    monitored metric's name: scoring weighs the models by them) and the per-epoch history to ``files.history``.
    After every epoch ``files.resume`` holds the run's state; a run with the same fingerprint continues from it
    and ends with the same weights and history as one never interrupted.
    """
    config, model = trainer.config, trainer.model
    progress = Progress.load(files, report)
    if progress is None:
        progress = Progress()
    else:
        if progress.refit_epoch is None:
            trainer.load_state_dict(progress.trainer)
        report(f"resuming from {files.resume}: {progress.epoch} of {config.epochs} epochs done"
               + (", selection finished" if progress.stopped or progress.refit_epoch is not None else ""))
        save_checkpoint(files.checkpoint, progress.best_state, progress.best_meta)  # DVC removes outputs it reruns
        write_history(files.history, progress.history)
        if progress.refit_epoch is not None:
            return progress.history
    report(f"training on {trainer.device} for up to {config.epochs} epochs")
    for epoch in range(progress.epoch + 1, config.epochs + 1):
        if progress.stopped:
            break
        start = time.perf_counter()
        for loader in (train_loader, val_loader):
            if hasattr(loader.dataset, "set_epoch"):
                loader.dataset.set_epoch(epoch)
        learning_rate = trainer.learning_rate
        train_loss, train_acc, _ = trainer.train_epoch(train_loader)
        val_loss, val_acc, val_f1 = trainer.validate(val_loader)
        score = val_f1 if config.monitor == "val_macro_f1" else val_acc
        if math.isnan(score):  # no validation clips: fall back to training accuracy
            score = train_acc
        if trainer.plateau is not None:
            trainer.plateau.step(score)
        metrics = EpochMetrics(epoch, train_loss, train_acc, val_loss, val_acc, val_f1,
                               learning_rate, time.perf_counter() - start)
        progress.history.append(metrics)
        write_history(files.history, progress.history)
        report(f"epoch {epoch}: train loss {train_loss:.3f} acc {train_acc:.3f} | "
               f"val loss {val_loss:.3f} acc {val_acc:.3f} f1 {val_f1:.3f} | {metrics.seconds:.1f}s")
        if score > progress.best:
            progress.best, progress.since_best = score, 0
            progress.best_meta = {**meta, "epoch": epoch, "val_accuracy": val_acc, "val_macro_f1": val_f1,
                                  "monitor": config.monitor}
            progress.best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            save_checkpoint(files.checkpoint, progress.best_state, progress.best_meta)
        else:
            progress.since_best += 1
            if progress.since_best >= config.early_stopping_patience:
                report(f"early stopping: no {config.monitor} gain for {progress.since_best} epochs "
                       f"(best {progress.best:.3f})")
                progress.stopped = True
        progress.epoch = epoch
        progress.save(files, trainer)
    return progress.history


def refit(trainer: Trainer, train_loader: DataLoader, learning_rates: list[float], files: RunFiles, meta: dict,
          report: Callable[[str], None] = log.info) -> None:
    """Train ``trainer.model`` once more for as many epochs as ``learning_rates`` holds (the epochs the
    selection run chose), without validation, replaying that run's learning rate per epoch (the
    cosine schedule batch by batch, as ``fit``); the final weights are written with ``meta``.
    Continues the resume file ``fit`` left (each refit epoch is saved in it too)."""
    progress = Progress.load(files, report) or Progress()
    if progress.refit_epoch is not None:
        trainer.load_state_dict(progress.trainer)
        report(f"resuming the refit from {files.resume}: {progress.refit_epoch} of {len(learning_rates)} epochs done")
    done = progress.refit_epoch or 0
    for epoch, learning_rate in enumerate(learning_rates[done:], start=done + 1):
        if hasattr(train_loader.dataset, "set_epoch"):
            train_loader.dataset.set_epoch(epoch)
        if trainer.batch_scheduler is None:
            for group in trainer.optimizer.param_groups:
                group["lr"] = learning_rate
        train_loss, train_acc, _ = trainer.train_epoch(train_loader)
        report(f"refit epoch {epoch}/{len(learning_rates)}: train loss {train_loss:.3f} acc {train_acc:.3f}")
        progress.refit_epoch = epoch
        progress.save(files, trainer)
    save_checkpoint(files.checkpoint, trainer.model, meta)


def write_history(path: Path, history: list[EpochMetrics]) -> None:
    rows = [asdict(h) for h in history]
    with atomic.atomic_path(path) as tmp, tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
