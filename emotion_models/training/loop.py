"""The training loop shared by the audio, face and video models.

Plain and readable, like torchvision's references: Adam, ReduceLROnPlateau on validation
accuracy (or a cosine decay, batch by batch), early stopping, the best checkpoint kept, metrics logged per epoch to the logger and
to a CSV; optional mixup (as torchvision's ``--mixup-alpha``); optionally a refit on training and
validation data for the chosen number of epochs. Deterministic on CPU for a given
seed; CUDA with AMP and pinned memory when present.
Checkpoints hold tensors and a JSON string only, and load with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import f1_score
from torch import nn
from torch.utils.data import DataLoader

from emotion_models import atomic
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


def save_checkpoint(path: str | Path, model: nn.Module, meta: dict) -> Path:
    """Weights plus a JSON description (params, label map, feature key, normalisation)."""
    payload = {"state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
               "meta": json.dumps(meta, sort_keys=True, default=str)}
    with atomic.atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def load_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """``(state_dict, meta)`` of a checkpoint written by :func:`save_checkpoint`; no pickled code runs."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: model checkpoint not found (train it first: dvc repro)") from None
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
    return (total_loss / len(y_true), float((y_pred == y_true).mean()),
            float(f1_score(y_true, y_pred, average="macro", zero_division=0)))


def fit(
    model: nn.Module,
    train_loader: DataLoader,
    val_loader: DataLoader,
    config: TrainConfig,
    checkpoint_path: Path,
    history_path: Path,
    meta: dict,
    weights: torch.Tensor | None = None,
    report: Callable[[str], None] = log.info,
) -> list[EpochMetrics]:
    """Train ``model`` (its forward takes a batch dict and returns logits); keep the best epoch.

    The checkpoint with the best validation score (``config.monitor``) is written to ``checkpoint_path`` (with
    ``meta`` plus the epoch, its validation accuracy and macro-F1 (NaN without validation clips) and the
    monitored metric's name: scoring weighs the models by them) and the per-epoch history to ``history_path``.
    """
    device = select_device()
    model.to(device)
    loss_fn = nn.CrossEntropyLoss(weight=weights.to(device) if weights is not None else None)
    optimizer = torch.optim.Adam((p for p in model.parameters() if p.requires_grad),
                                 lr=config.learning_rate, weight_decay=config.weight_decay)
    if config.lr_schedule == "cosine":
        scheduler, batch_scheduler = None, torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=max(config.epochs * len(train_loader), 1))
    else:
        batch_scheduler, scheduler = None, torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="max", factor=config.lr_factor, patience=config.lr_patience)
    scaler = torch.amp.GradScaler("cuda") if device.type == "cuda" else None
    history: list[EpochMetrics] = []
    best, since_best = -1.0, 0
    report(f"training on {device} for up to {config.epochs} epochs")
    for epoch in range(1, config.epochs + 1):
        start = time.perf_counter()
        for loader in (train_loader, val_loader):
            if hasattr(loader.dataset, "set_epoch"):
                loader.dataset.set_epoch(epoch)
        learning_rate = optimizer.param_groups[0]["lr"]
        train_loss, train_acc, _ = run_epoch(model, train_loader, device, loss_fn, optimizer, scaler, config.l1,
                                             config.mixup_alpha, batch_scheduler)
        val_loss, val_acc, val_f1 = run_epoch(model, val_loader, device, loss_fn)
        score = val_f1 if config.monitor == "val_macro_f1" else val_acc
        if math.isnan(score):  # no validation clips: fall back to training accuracy
            score = train_acc
        if scheduler is not None:
            scheduler.step(score)
        metrics = EpochMetrics(epoch, train_loss, train_acc, val_loss, val_acc, val_f1,
                               learning_rate, time.perf_counter() - start)
        history.append(metrics)
        _write_history(history_path, history)
        report(f"epoch {epoch}: train loss {train_loss:.3f} acc {train_acc:.3f} | "
               f"val loss {val_loss:.3f} acc {val_acc:.3f} f1 {val_f1:.3f} | {metrics.seconds:.1f}s")
        if score > best:
            best, since_best = score, 0
            save_checkpoint(checkpoint_path, model, {**meta, "epoch": epoch, "val_accuracy": val_acc,
                                                     "val_macro_f1": val_f1, "monitor": config.monitor})
        else:
            since_best += 1
            if since_best >= config.early_stopping_patience:
                report(f"early stopping: no {config.monitor} gain for {since_best} epochs (best {best:.3f})")
                break
    return history


def refit(model: nn.Module, train_loader: DataLoader, config: TrainConfig, learning_rates: list[float],
          checkpoint_path: Path, meta: dict, weights: torch.Tensor | None = None,
          report: Callable[[str], None] = log.info) -> None:
    """Train ``model`` once more for as many epochs as ``learning_rates`` holds (the epochs the
    selection run chose), without validation, replaying that run's learning rate per epoch (the
    cosine schedule batch by batch, as ``fit``); the final weights are written with ``meta``."""
    device = select_device()
    model.to(device)
    loss_fn = nn.CrossEntropyLoss(weight=weights.to(device) if weights is not None else None)
    optimizer = torch.optim.Adam((p for p in model.parameters() if p.requires_grad),
                                 lr=config.learning_rate, weight_decay=config.weight_decay)
    batch_scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=max(config.epochs * len(train_loader), 1)) if config.lr_schedule == "cosine" else None
    scaler = torch.amp.GradScaler("cuda") if device.type == "cuda" else None
    for epoch, learning_rate in enumerate(learning_rates, start=1):
        if hasattr(train_loader.dataset, "set_epoch"):
            train_loader.dataset.set_epoch(epoch)
        if batch_scheduler is None:
            for group in optimizer.param_groups:
                group["lr"] = learning_rate
        train_loss, train_acc, _ = run_epoch(model, train_loader, device, loss_fn, optimizer, scaler, config.l1,
                                             config.mixup_alpha, batch_scheduler)
        report(f"refit epoch {epoch}/{len(learning_rates)}: train loss {train_loss:.3f} acc {train_acc:.3f}")
    save_checkpoint(checkpoint_path, model, meta)


def _write_history(path: Path, history: list[EpochMetrics]) -> None:
    rows = [asdict(h) for h in history]
    with atomic.atomic_path(path) as tmp, tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
