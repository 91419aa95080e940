"""Speaker-independent cross-validation: the protocols behind a model's reported numbers.

One test split of two speakers is a noisy estimate (120 RAVDESS clips: +-4.5 points), and a
corpus of one or two speakers (TESS, SAVEE in ../shared) has no test split at all. Protocols
(``audio.evaluation`` in params.yaml):

- speaker folds of one corpus (``speaker_folds: {ravdess: 3, savee: 2}``): the corpus's speakers
  are cut into k groups; each fold tests one group, the model trained on every other speaker of
  every corpus (2 folds of a 2-speaker corpus: leave one speaker out);
- leave one corpus out (``leave_corpus_out``): each corpus is tested once, the model trained on
  the other corpora only.

Validation speakers (checkpoint selection, early stopping) come from the training corpora by the
default split's rule, never from the tested speakers: ``round(n * val_fraction)`` speakers of a
corpus of n >= ``data.split.min_speakers`` speakers (a smaller corpus trains only, as in the
delivered model's split). Where no training corpus has that many (RAVDESS left out: TESS, SAVEE and
CASIA train), each training corpus of two speakers or more lends its first speaker (seeded order) to
validation, so the epoch is still chosen on unseen speakers, never on training accuracy; the refit
then trains on them too. Only a fold whose training corpora all have one speaker has no validation
(the loop then keeps the epoch with the best training accuracy).
Each fold trains with params.yaml's recipe. The results (per fold, per protocol mean +- std and the
pooled test clips) go to ``reports/<model>/cross_validation.json`` (stage ``audio_cross_validate``),
which ``audio_evaluate`` adds to metrics.json and report.html:

    python -m tasks.cross_validate audio                                 # params.yaml's protocols
    python -m tasks.cross_validate audio --corpus ravdess --folds 3 --out ravdess-3.json
    python -m tasks.cross_validate audio --leave-corpus-out --out loco.json
"""

from __future__ import annotations

import logging
import statistics
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import polars as pl
import typer
from torch import nn

from emotion_models import atomic, paths
from emotion_models.data.splits import held_out_count, speaker_order
from emotion_models.nets.registry import get_spec
from emotion_models.nets.spec import ModelSpec
from emotion_models.params import CrossValidationConfig, Params, load_params
from emotion_models.reports.evaluation import LEAVE_CORPUS_OUT, classification_metrics
from emotion_models.training.calibration import expected_calibration_error, softmax
from emotion_models.training.loop import EpochMetrics
from tasks.evaluate import configured_protocols, score_store
from tasks.train import TrainingRun, train_model

log = logging.getLogger(__name__)
Speaker = tuple[str, str]  # (corpus, speaker_id)


@dataclass(frozen=True)
class Fold:
    """One train/validation/test partition of the speakers of a protocol."""

    protocol: str  # "<corpus>_speaker_folds" or "leave_corpus_out"
    name: str  # "fold 1" or the corpus tested
    test: frozenset[Speaker]
    val: frozenset[Speaker]
    train: frozenset[Speaker]


def corpus_speakers(manifest: pl.DataFrame, modality: str, seed: int) -> dict[str, list[str]]:
    """Each corpus's speakers of ``modality`` in the seeded split order; composed clips are left out."""
    rows = manifest.filter((pl.col("modality") == modality) & ~pl.col("composed"))
    result: dict[str, list[str]] = {}
    for corpus, speaker in speaker_order(zip(rows["corpus"].to_list(), rows["speaker_id"].to_list()), seed):
        result.setdefault(corpus, []).append(speaker)
    return dict(sorted(result.items()))


def _fold(protocol: str, name: str, speakers: dict[str, list[str]], test: set[Speaker],
          val_fraction: float, min_speakers: int) -> Fold:
    """The fold testing ``test``: validation speakers by the default split's rule (a corpus of fewer than
    ``min_speakers`` speakers gives none); when that gives none at all, the first speaker of each
    training corpus that keeps one to train on. The rest train."""
    candidates = {corpus: [(corpus, s) for s in members if (corpus, s) not in test]
                  for corpus, members in speakers.items()}
    val: set[Speaker] = set()
    for corpus, members in speakers.items():
        count = held_out_count(len(members), val_fraction, min_speakers)
        val.update(candidates[corpus][:max(0, min(count, len(candidates[corpus]) - 1))])
    if not val and val_fraction > 0:
        val = {left[0] for left in candidates.values() if len(left) >= 2}
    everyone = {(corpus, s) for corpus, members in speakers.items() for s in members}
    return Fold(protocol, name, frozenset(test), frozenset(val), frozenset(everyone - test - val))


def speaker_folds(speakers: dict[str, list[str]], corpus: str, folds: int, val_fraction: float,
                  min_speakers: int = 3) -> list[Fold]:
    """``folds`` folds over the speakers of ``corpus``, each trained on every other speaker."""
    members = speakers.get(corpus, [])
    if folds < 2 or folds > len(members):
        raise ValueError(f"{folds} speaker folds of corpus '{corpus}' need between 2 and {len(members)} folds "
                         f"(it has {len(members)} speakers; corpora: {', '.join(speakers) or 'none'})")
    return [_fold(f"{corpus}_speaker_folds", f"fold {number}", speakers,
                  {(corpus, s) for s in members[number - 1::folds]}, val_fraction, min_speakers)
            for number in range(1, folds + 1)]


def corpus_folds(speakers: dict[str, list[str]], val_fraction: float, min_speakers: int = 3) -> list[Fold]:
    """One fold per corpus, tested on all its speakers and trained on the other corpora."""
    if len(speakers) < 2:
        raise ValueError(f"leaving one corpus out needs two corpora or more, found {', '.join(speakers) or 'none'}")
    return [_fold(LEAVE_CORPUS_OUT, corpus, speakers, {(corpus, s) for s in members}, val_fraction, min_speakers)
            for corpus, members in speakers.items()]


def protocol_folds(speakers: dict[str, list[str]], config: CrossValidationConfig, val_fraction: float,
                   min_speakers: int = 3) -> list[Fold]:
    """The folds of every protocol in ``config``, in its order."""
    folds = [fold for corpus, k in config.speaker_folds.items()
             for fold in speaker_folds(speakers, corpus, k, val_fraction, min_speakers)]
    return folds + (corpus_folds(speakers, val_fraction, min_speakers) if config.leave_corpus_out else [])


MAX_LISTED_SPEAKERS = 30  # a corpus with more (FER2013: one "speaker" per image) is given as a count


def speaker_list(speakers: frozenset[Speaker]) -> list[str]:
    """The speakers' names, sorted; a corpus with more than MAX_LISTED_SPEAKERS of them as
    "<corpus>: <n> speakers", so reports and logs stay readable."""
    by_corpus: dict[str, list[str]] = {}
    for corpus, speaker in speakers:
        by_corpus.setdefault(corpus, []).append(speaker)
    names = [s for members in by_corpus.values() if len(members) <= MAX_LISTED_SPEAKERS for s in members]
    counts = [f"{corpus}: {len(members)} speakers" for corpus, members in sorted(by_corpus.items())
              if len(members) > MAX_LISTED_SPEAKERS]
    return sorted(names) + counts


def fold_labels(clips: pl.DataFrame, fold: Fold) -> dict[str, dict[str, int]]:
    """The fold's "train", "val" and "test" clips (clip_id -> label), by their speakers."""
    speaker = list(zip(clips["corpus"].to_list(), clips["speaker_id"].to_list()))
    return {part: {clip: label for clip, label, who in zip(clips["clip_id"], clips["label"], speaker) if who in members}
            for part, members in (("train", fold.train), ("val", fold.val), ("test", fold.test))}


def train_fold(spec: ModelSpec, params: Params, labels: dict[str, dict[str, int]],
               report: Callable[[str], None]) -> tuple[nn.Module, dict, list[EpochMetrics]]:
    """Train on ``labels["train"]``, select on ``labels["val"]``; the model, its meta and its history
    (the checkpoint lives only as long as the call)."""
    with tempfile.TemporaryDirectory() as tmp:
        history = train_model(spec, params, TrainingRun(out_dir=Path(tmp), splits=labels), report)
        model, meta = spec.load(Path(tmp) / "model.pt")
    return model, meta, history


def run_fold(spec: ModelSpec, params: Params, fold: Fold, clips: pl.DataFrame,
             report: Callable[[str], None]) -> dict:
    """Train on the fold's training speakers, select on its validation speakers, test on the rest."""
    labels = fold_labels(clips, fold)
    datasets = dict(zip(clips["clip_id"].to_list(), clips["dataset"].to_list()))
    report(f"{fold.protocol} {fold.name}: test {speaker_list(fold.test)}, validation {speaker_list(fold.val)}")
    model, meta, history = train_fold(spec, params, labels, report)
    metrics, _, y_true, y_pred, logits = score_store(spec, params, spec.store(params), labels["test"], datasets,
                                                     model, meta)
    report(f"{fold.protocol} {fold.name}: accuracy {metrics['accuracy']:.3f} macro-F1 {metrics['macro_f1']:.3f}")
    return {"protocol": fold.protocol, "fold": fold.name, "test_speakers": speaker_list(fold.test),
            "val_speakers": speaker_list(fold.val),
            "train_corpora": sorted({corpus for corpus, _ in fold.train}), "n": metrics["n"],
            "accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"], "epoch": meta.get("epoch"),
            "epochs_run": len(history), "temperature": metrics["temperature"], "ece_before": metrics["ece_before"],
            "ece_after": metrics["ece_after"], "y_true": y_true, "y_pred": y_pred,
            "uncalibrated": softmax(logits), "calibrated": softmax(logits, metrics["temperature"])}


PER_CLIP = ("y_true", "y_pred", "uncalibrated", "calibrated")  # a fold's per-clip results, pooled only


def summarise(folds: list[dict]) -> dict:
    """Mean and std over the folds of one protocol and the metrics of all its test clips pooled
    (the expected calibration error of the pooled clips, each fold's probabilities before and after
    its own temperature)."""
    y_true = [y for f in folds for y in f["y_true"]]
    pooled = classification_metrics(y_true, [y for f in folds for y in f["y_pred"]])
    summary = {"folds": [{k: v for k, v in f.items() if k not in PER_CLIP} for f in folds],
               "pooled": {**{key: pooled[key] for key in ("n", "accuracy", "macro_f1")},
                          **{f"ece_{when}": expected_calibration_error(np.concatenate([f[kind] for f in folds]), y_true)
                             for when, kind in (("before", "uncalibrated"), ("after", "calibrated"))}}}
    for name in ("accuracy", "macro_f1"):
        values = [f[name] for f in folds]
        summary[name] = {"mean": statistics.mean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0}
    return summary


def cross_validate(spec: ModelSpec, params: Params, config: CrossValidationConfig,
                   report: Callable[[str], None] = log.info) -> dict:
    """Train and test once per fold of every protocol of ``config``; results by protocol."""
    manifest = pl.read_parquet(paths.MANIFEST).filter(~pl.col("composed"))
    clips = manifest.filter(pl.col("modality") == spec.modality)
    extracted = set(spec.store(params).index()["clip_id"].to_list())
    clips = clips.filter(pl.col("clip_id").is_in(list(extracted)))
    folds = protocol_folds(corpus_speakers(manifest, spec.modality, params.seed), config,
                           params.data.split.val_fraction, params.data.split.min_speakers)
    results: dict[str, list[dict]] = {}
    for fold in folds:
        results.setdefault(fold.protocol, []).append(run_fold(spec, params, fold, clips, report))
    return {"model": spec.name, "protocols": {name: summarise(done) for name, done in results.items()}}


def cross_validate_stage(spec: ModelSpec, params: Params, report: Callable[[str], None] = log.info) -> dict:
    """Stage ``<model>_cross_validate``: params.yaml's protocols (``<model>.evaluation``), written to
    ``reports/<model>/cross_validation.json``."""
    config = configured_protocols(spec, params)
    if config is None:
        raise ValueError(f"params.yaml has no {spec.name}.evaluation protocols to cross-validate")
    result = cross_validate(spec, params, config, report=report)
    atomic.write_json(paths.report_dir(spec.name) / "cross_validation.json", result)
    return result


def main(
    model: Annotated[Literal["audio", "face"], typer.Argument(help="the model")],
    corpus: Annotated[str | None, typer.Option(help="speaker folds of this corpus (instead of params.yaml's protocols)")] = None,
    folds: Annotated[int, typer.Option(help="with --corpus: how many folds")] = 3,
    leave_corpus_out: Annotated[bool, typer.Option("--leave-corpus-out", help="test each corpus, trained on the others")] = False,
    params: Annotated[Path, typer.Option(help="params.yaml to read")] = Path("params.yaml"),
    out: Annotated[Path | None, typer.Option(help="default: reports/<model>/cross_validation.json (params.yaml's "
                                                  "protocols only; the audio_cross_validate stage's output)")] = None,
) -> None:
    """Cross-validate MODEL on params.yaml's protocols, or on the folds given by --corpus / --leave-corpus-out."""
    custom = corpus is not None or leave_corpus_out
    if custom and out is None:
        raise typer.BadParameter("--corpus and --leave-corpus-out need --out (the default file belongs to the DVC stage)")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    spec = get_spec(model)
    loaded = load_params(params)
    if custom:
        config = CrossValidationConfig(speaker_folds={corpus: folds} if corpus else {}, leave_corpus_out=leave_corpus_out)
    else:
        config = configured_protocols(spec, loaded)
    if config is None:
        raise typer.BadParameter(f"params.yaml has no {spec.name}.evaluation protocols: pass --corpus or --leave-corpus-out")
    result = cross_validate(spec, loaded, config)
    out = out or paths.report_dir(spec.name) / "cross_validation.json"
    atomic.write_json(out, result)
    for name, summary in result["protocols"].items():
        print(f"{spec.name} {name}: accuracy {summary['accuracy']['mean']:.3f} +- {summary['accuracy']['std']:.3f}, "
              f"macro-F1 {summary['macro_f1']['mean']:.3f} +- {summary['macro_f1']['std']:.3f} "
              f"over {len(summary['folds'])} folds")
    print(f"-> {out}")


if __name__ == "__main__":
    typer.run(main)
