"""Stage `tune_<model>`: Hyperopt search (random or TPE) over the space in params.yaml.

Trials are proposed in batches of ``tune.parallel`` (ask/tell), each batch runs through the
given ``run_batch`` (Prefect tasks on the configured task runner, or a plain loop), and every
finished trial is recorded in models/<model>/tune/trials.parquet. A rerun replays the recorded
trials into Hyperopt and continues the search where it stopped. The best trial (highest
validation accuracy) is written to models/<model>/best_hyperparameters.json.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import polars as pl
from hyperopt import JOB_STATE_DONE, STATUS_OK, Domain, Trials, hp, rand, space_eval, tpe

from emotion_models import atomic, paths
from emotion_models.features.shards import extract
from emotion_models.nets.registry import get_spec
from emotion_models.params import Params, apply_overrides
from emotion_models.reports.evaluation import data_uri, figure_png
from tasks.features import manifest_rows
from tasks.train import TrainingRun, best_hyperparameters_path, train_model

log = logging.getLogger(__name__)
TRIAL_SCHEMA = {"trial": pl.Int64, "hyperparameters": pl.Utf8, "choice_indices": pl.Utf8, "val_accuracy": pl.Float64,
                "val_macro_f1": pl.Float64, "epochs": pl.Int64, "seconds": pl.Float64}


def tune_dir(model: str) -> Path:
    return paths.model_dir(model) / "tune"


def search_space(params: Params, model: str) -> dict:
    space = params.tune.space.get(model)
    if not space:
        raise ValueError(f"no search space for '{model}': add tune.space.{model} to params.yaml")
    return {name: hp.choice(name, choices) for name, choices in space.items()}


def recorded_trials(model: str) -> pl.DataFrame:
    path = tune_dir(model) / "trials.parquet"
    return pl.read_parquet(path) if path.is_file() else pl.DataFrame(schema=TRIAL_SCHEMA)


def run_trial(model: str, params: Params, trial: int, hyperparameters: dict) -> dict:
    """Train one candidate for ``tune.epochs`` epochs; returns its best validation metrics."""
    spec = get_spec(model)
    trial_params = apply_overrides(params, model, {**hyperparameters, "epochs": params.tune.epochs})
    section = getattr(trial_params, model)  # a trial is judged on its validation speakers: no refit on them
    trial_params = trial_params.model_copy(
        update={model: section.model_copy(update={"train": section.train.model_copy(update={"refit": False})})})
    store = None
    key = spec.feature_key(trial_params)
    if key != spec.feature_key(params):  # this candidate changes the features: extract them apart, once
        store = spec.store(trial_params, tune_dir(model) / f"features-{key}")
        features = getattr(trial_params, model).features
        extract(manifest_rows(spec), spec.featuriser(trial_params), store, features.workers, features.shard_rows)
    start = time.perf_counter()
    history = train_model(spec, trial_params, TrainingRun(out_dir=tune_dir(model) / f"trial-{trial:03d}", store=store))
    best = max(history, key=lambda h: h.val_accuracy)
    return {"trial": trial, "val_accuracy": best.val_accuracy, "val_macro_f1": best.val_macro_f1,
            "epochs": len(history), "seconds": time.perf_counter() - start}


def _replay(trials: Trials, recorded: pl.DataFrame) -> None:
    for row in recorded.iter_rows(named=True):
        indices = json.loads(row["choice_indices"])
        misc = {"tid": row["trial"], "cmd": ("domain_attachment", "FMinIter_Domain"), "workdir": None,
                "idxs": {k: [row["trial"]] for k in indices}, "vals": {k: [v] for k, v in indices.items()}}
        doc = trials.new_trial_docs([row["trial"]], [None], [{"status": STATUS_OK, "loss": -row["val_accuracy"]}],
                                    [misc])[0]
        doc["state"] = JOB_STATE_DONE
        trials.insert_trial_docs([doc])
    trials.refresh()


def tune(model: str, params: Params, run_batch: Callable[[list[tuple[int, dict]]], list[dict]] | None = None) -> dict:
    """Run (or resume) the search; returns the best hyperparameters, also written to best_hyperparameters.json."""
    space = search_space(params, model)
    config = params.tune
    domain = Domain(lambda _: 0.0, space)
    trials = Trials()
    recorded = recorded_trials(model)
    _replay(trials, recorded)
    algorithm = rand.suggest if config.algorithm == "random" else partial(
        tpe.suggest, n_startup_jobs=max(2, min(10, config.trials // 2)))
    run_batch = run_batch or (lambda batch: [run_trial(model, params, t, h) for t, h in batch])
    if not get_spec(model).store(params).index().height:
        raise RuntimeError(f"{model}: no features; run the {model} feature stage first")
    while recorded.height < config.trials:
        ids = trials.new_trial_ids(min(config.parallel, config.trials - recorded.height))
        docs = algorithm(ids, domain, trials, config.seed + recorded.height)
        batch = []
        for doc in docs:
            indices = {k: v[0] for k, v in doc["misc"]["vals"].items()}
            batch.append((doc["tid"], indices, space_eval(space, indices)))
        results = run_batch([(tid, values) for tid, _, values in batch])
        new_rows = [{**result, "hyperparameters": json.dumps(values, sort_keys=True),
                     "choice_indices": json.dumps({k: int(v) for k, v in indices.items()})}
                    for (tid, indices, values), result in zip(batch, results)]
        recorded = pl.concat([recorded, pl.DataFrame(new_rows, schema=TRIAL_SCHEMA)])
        atomic.write_parquet(tune_dir(model) / "trials.parquet", recorded)
        trials = Trials()
        _replay(trials, recorded)
    best = recorded.sort(["val_accuracy", "val_macro_f1", "trial"], descending=[True, True, False]).row(0, named=True)
    hyperparameters = json.loads(best["hyperparameters"])
    atomic.write_json(best_hyperparameters_path(model), hyperparameters)
    write_tune_report(model, recorded)
    return hyperparameters


def write_tune_report(model: str, recorded: pl.DataFrame) -> Path:
    """reports/<model>/tune.html: validation accuracy by trial and by each hyperparameter."""
    import matplotlib.pyplot as plt

    values = [json.loads(h) for h in recorded["hyperparameters"]]
    names = sorted({k for v in values for k in v})
    figure, axes = plt.subplots(1, len(names) + 1, figsize=(3.2 * (len(names) + 1), 3), squeeze=False)
    axes[0][0].plot(recorded["trial"], recorded["val_accuracy"], "o-")
    axes[0][0].set_title("val accuracy by trial", fontsize=9)
    for axis, name in zip(axes[0][1:], names):
        axis.scatter([str(v.get(name)) for v in values], recorded["val_accuracy"])
        axis.set_title(name, fontsize=9)
        axis.tick_params(axis="x", labelrotation=45, labelsize=7)
    image = data_uri(figure_png(figure))
    rows = "".join(f"<tr><td>{r['trial']}</td><td>{r['val_accuracy']:.3f}</td><td>{r['val_macro_f1']:.3f}</td>"
                   f"<td>{r['epochs']}</td><td>{r['seconds']:.0f}</td><td><code>{r['hyperparameters']}</code></td></tr>"
                   for r in recorded.sort("val_accuracy", descending=True).iter_rows(named=True))
    html = (f"<!doctype html><html><head><meta charset='utf-8'><title>{model} tuning</title></head><body>"
            f"<h1>{model} hyperparameter search ({recorded.height} trials)</h1><img src='{image}'>"
            "<table border='1' cellpadding='4'><tr><th>trial</th><th>val accuracy</th><th>val macro-F1</th>"
            f"<th>epochs</th><th>seconds</th><th>hyperparameters</th></tr>{rows}</table></body></html>")
    return atomic.write_text(paths.report_dir(model) / "tune.html", html)
