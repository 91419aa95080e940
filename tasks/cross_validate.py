"""Speaker-independent k-fold cross-validation of a model's training recipe.

One test split of two speakers is a noisy estimate (120 RAVDESS clips: +-4.5 points). Here the
speakers of the model's modality are cut into ``folds`` groups; each fold tests on one group,
validates on ``data.split.val_fraction`` of the other speakers and trains on the rest, with
params.yaml's recipe. The result (per fold and mean +- std over folds) goes to
``reports/<model>/cross_validation.json``. Use it to compare recipes without tuning to one
test split:

    python -m tasks.cross_validate audio --folds 3

With ``--corpus`` only that corpus's speakers are cut into folds; the other corpora train and
validate as the manifest splits them (their test clips stay out). A model with a pretraining
stage (face: FER2013) starts every fold from that checkpoint, so the corpus must not be one it
was pretrained on:

    python -m tasks.cross_validate face --corpus ck_plus --folds 3
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path

import polars as pl

from emotion_models import atomic, paths
from emotion_models.data.splits import speaker_order
from emotion_models.nets.registry import get_spec
from emotion_models.nets.spec import ModelSpec
from emotion_models.params import Params, load_params
from tasks.evaluate import score_store
from tasks.train import split_labels, train

log = logging.getLogger(__name__)


def speaker_folds(manifest: pl.DataFrame, modality: str, folds: int, val_fraction: float,
                  seed: int, corpus: str | None = None) -> list[dict[str, set[tuple[str, str]]]]:
    """Per fold, the (corpus, speaker) pairs of "train", "val" and "test" (of ``corpus`` alone when
    given); composed clips are left out."""
    rows = manifest.filter((pl.col("modality") == modality) & ~pl.col("composed"))
    if corpus is not None:
        rows = rows.filter(pl.col("corpus") == corpus)
    speakers = speaker_order(set(zip(rows["corpus"].to_list(), rows["speaker_id"].to_list())), seed)
    if folds < 2 or folds > len(speakers):
        raise ValueError(f"{folds} folds need between 2 and {len(speakers)} speakers per modality '{modality}'")
    n_val = max(1, round(len(speakers) * val_fraction))
    result = []
    for test in (speakers[i::folds] for i in range(folds)):
        rest = [s for s in speakers if s not in test]
        result.append({"test": set(test), "val": set(rest[:n_val]), "train": set(rest[n_val:])})
    return result


def cross_validate(spec: ModelSpec, params: Params, folds: int, report: Callable[[str], None] = log.info,
                   corpus: str | None = None) -> dict:
    """Train and test the recipe once per fold (folds of ``corpus``'s speakers when given, the other
    corpora keeping their train/val split); returns per-fold and summary metrics."""
    manifest = pl.read_parquet(paths.MANIFEST).filter(~pl.col("composed"))
    rows = manifest.filter(pl.col("modality") == spec.modality)
    _check_pretraining(spec, params, rows, corpus)
    clips = list(zip(rows["clip_id"].to_list(), rows["label"].to_list(),
                     zip(rows["corpus"].to_list(), rows["speaker_id"].to_list())))
    others = rows.filter(pl.col("corpus") != corpus) if corpus is not None else rows.clear()
    fixed = {name: split_labels(spec, name, others) for name in ("train", "val")}
    datasets = dict(zip(rows["clip_id"].to_list(), rows["dataset"].to_list()))
    store = spec.store(params)
    results = []
    for number, fold in enumerate(speaker_folds(manifest, spec.modality, folds, params.data.split.val_fraction,
                                                params.seed, corpus), start=1):
        labels = {name: {**fixed.get(name, {}), **{clip: label for clip, label, speaker in clips if speaker in members}}
                  for name, members in fold.items()}
        report(f"fold {number}/{folds}: test speakers {sorted(s for _, s in fold['test'])}")
        with tempfile.TemporaryDirectory() as tmp:
            history = train(spec, params, report=report, out_dir=Path(tmp), use_tuned=False, store=store,
                            splits=labels)
            model, meta = spec.load(Path(tmp) / "model.pt")
            metrics, *_ = score_store(spec, params, store, labels["test"], datasets, model, meta)
        results.append({"fold": number, "test_speakers": sorted(s for _, s in fold["test"]),
                        "accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"], "n": metrics["n"],
                        "epoch": meta.get("epoch"), "epochs_run": len(history)})
        report(f"fold {number}: accuracy {metrics['accuracy']:.3f} macro-F1 {metrics['macro_f1']:.3f}")
    summary = {name: {"mean": statistics.mean(r[name] for r in results),
                      "std": statistics.stdev(r[name] for r in results)} for name in ("accuracy", "macro_f1")}
    return {"model": spec.name, "corpus": corpus, "folds": results, **summary}


def _check_pretraining(spec: ModelSpec, params: Params, rows: pl.DataFrame, corpus: str | None) -> None:
    """Folds start from the pretrained checkpoint: it must not have seen the speakers they test."""
    config = spec.pretrain_config(params)
    if config is None or not config.datasets:
        return
    seen = set(rows.filter(pl.col("dataset").is_in(config.datasets))["corpus"].to_list())
    if corpus is None and seen or corpus in seen:
        raise ValueError(f"the {spec.name} model is pretrained on {sorted(seen)}: cross-validate another corpus "
                         f"(--corpus), whose speakers the pretrained checkpoint never saw")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", choices=["audio", "face"])
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--corpus", help="cut only this corpus's speakers into folds (e.g. ck_plus)")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--out", type=Path, help="default: reports/<model>/cross_validation.json")
    options = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    spec = get_spec(options.model)
    result = cross_validate(spec, load_params(options.params), options.folds, corpus=options.corpus)
    out = options.out or paths.report_dir(spec.name) / "cross_validation.json"
    atomic.write_json(out, result)
    print(f"{spec.name}: accuracy {result['accuracy']['mean']:.3f} +- {result['accuracy']['std']:.3f}, "
          f"macro-F1 {result['macro_f1']['mean']:.3f} +- {result['macro_f1']['std']:.3f} over {options.folds} "
          f"speaker folds -> {out}")


if __name__ == "__main__":
    main()
