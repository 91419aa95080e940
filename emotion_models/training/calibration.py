"""Calibrated probabilities: temperature scaling (Guo et al. 2017) and expected calibration error.

A network's softmax is usually over-confident. One scalar ``T`` that divides the logits, fitted
on the validation speakers by minimising the negative log-likelihood, makes its confidence mean
what it says without changing any decision (the arg-max is the same). The checkpoint records it
(meta ``temperature`` and ``calibration``); the exported scoring graphs and the evaluation divide
the logits by it. Expected calibration error (ECE): the test rows binned by their confidence (the
top probability, 15 equal-width bins), the mean of |accuracy - confidence| over the bins, weighted
by the rows in each.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional
from torch.utils.data import DataLoader

from emotion_models.labels import NUM_CLASSES
from emotion_models.training.loop import to_device

ECE_BINS = 15
# A temperature fitted on validation speakers of the training corpora never sharpens: on other people
# and rooms the model is less accurate than there, so T < 1 would make it over-confident exactly where
# users meet it. Measured with the audio protocols (fitted per fold, ECE on the tested speakers): the
# leave-one-corpus-out fold of CASIA fitted T = 0.66 and its ECE rose from 0.30 to 0.42.
MIN_TEMPERATURE = 1.0


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``logits / temperature``."""
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    scaled = np.exp(scaled - scaled.max(axis=1, keepdims=True))
    return scaled / scaled.sum(axis=1, keepdims=True)


def reliability(probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per confidence bin ((i/bins, (i+1)/bins], the first also holding 0): the rows in it, their mean
    confidence and their accuracy (NaN for an empty bin)."""
    probabilities, labels = np.asarray(probabilities), np.asarray(labels)
    confidence = probabilities.max(axis=1) if len(labels) else np.zeros(0)
    correct = probabilities.argmax(axis=1) == labels if len(labels) else np.zeros(0, bool)
    index = np.digitize(confidence, np.linspace(0.0, 1.0, bins + 1)[1:-1], right=True)
    counts = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.bincount(index, weights=confidence, minlength=bins) / counts
        accuracy = np.bincount(index, weights=correct.astype(np.float64), minlength=bins) / counts
    return counts, mean_confidence, accuracy


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE of ``probabilities`` (rows, classes) for the true ``labels``; NaN without rows."""
    counts, confidence, accuracy = reliability(probabilities, labels, bins)
    if not counts.sum():
        return math.nan
    filled = counts > 0
    return float(np.sum(counts[filled] * np.abs(accuracy[filled] - confidence[filled])) / counts.sum())


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The temperature minimising the negative log-likelihood of ``labels`` under ``softmax(logits / T)``
    (L-BFGS on log T, in float64; deterministic)."""
    logits, labels = logits.detach().double().cpu(), labels.detach().long().cpu()
    log_temperature = nn.Parameter(torch.zeros((), dtype=torch.float64))
    optimizer = torch.optim.LBFGS([log_temperature], lr=1.0, max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = functional.cross_entropy(logits / log_temperature.exp(), labels)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(log_temperature.detach().exp())


@torch.no_grad()
def predict_logits(model: nn.Module, loader: DataLoader, device: torch.device
                   ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Class logits (float32), true labels and clip ids of every sample in ``loader``."""
    model.to(device).eval()
    logits, labels, ids = [], [], []
    for batch in loader:
        batch = to_device(batch, device)
        with torch.autocast(device.type, enabled=device.type == "cuda"):
            logits.append(model(batch).float().cpu())
        labels.append(batch["label"].cpu())
        ids.extend(batch["clip_id"])
    if not labels:
        return np.zeros((0, NUM_CLASSES), np.float32), np.zeros(0, np.int64), []
    return torch.cat(logits).numpy(), torch.cat(labels).numpy(), ids


def calibrate(logits: np.ndarray, labels: np.ndarray) -> dict:
    """Checkpoint meta of temperature scaling fitted on validation ``logits``: ``temperature`` (at least
    ``MIN_TEMPERATURE``) and ``calibration`` (the rows it was fitted on, the fitted value, NLL and ECE
    before and after). Without rows the temperature stays 1 and ``calibration.note`` says so."""
    if not len(labels):
        note = "no validation clips to fit a temperature on: probabilities uncalibrated (T = 1)"
        return {"temperature": 1.0, "calibration": {"clips": 0, "note": note}}
    logits_t, labels_t = torch.from_numpy(np.asarray(logits, np.float64)), torch.from_numpy(np.asarray(labels))
    fitted = fit_temperature(logits_t, labels_t)
    temperature = max(fitted, MIN_TEMPERATURE)
    record = {"clips": len(labels), "fitted_on": "validation clips", "bins": ECE_BINS, "fitted_temperature": fitted}
    for name, t in (("before", 1.0), ("after", temperature)):
        record[f"nll_{name}"] = float(functional.cross_entropy(logits_t / t, labels_t.long()))
        record[f"val_ece_{name}"] = expected_calibration_error(softmax(logits, t), labels)
    return {"temperature": temperature, "calibration": record}
