"""/models: each model's cross-validation and leave-one-corpus-out numbers first, its calibration, then its
test-split metrics, training curves, ablations and tuning trials, and their DVC version."""

import os
from pathlib import Path

import polars as pl
import streamlit as st

from app import charts
from app.common import app_config
from emotion_models.reports.overview import git_revision, prefect_links, project_overview

config = app_config()
THREE_DECIMALS = {c: st.column_config.NumberColumn(format="%.3f")
                  for c in ("precision", "recall", "f1", "accuracy", "macro_f1")}
st.title("Models")
st.write("How each trained model does on **people it never saw in training**: first the cross-validation "
         "(every speaker of a corpus tested once, by a model trained without them) and each corpus left out "
         "(tested by a model trained on the other corpora only), then the single speaker-independent test split "
         "(for audio only two RAVDESS actors: a noisy figure).")


@st.cache_data(show_spinner="Reading the models' reports…", ttl=60)
def overviews(root: str):
    """Every model's overview (read again after a minute: `dvc repro` may have changed them)."""
    return project_overview(Path(root))


models = overviews(str(config.root))
cross_validation = [model.cross_validation().select(pl.lit(model.name).alias("model"), pl.all())
                    for model in models if model.cross_validation().height]
st.subheader("Cross-validation and leave one corpus out")
if cross_validation:
    st.dataframe(pl.concat(cross_validation), hide_index=True, width="stretch")
    st.caption("Speaker folds: accuracy and macro-F1 as mean ± std over the folds. ECE: expected calibration error of "
               "the pooled test clips, uncalibrated → divided by each fold's fitted temperature.")
else:
    st.info("No model has cross-validation results yet: run `dvc repro` (stages `<model>_cross_validate`, then "
            "`<model>_evaluate`).")
languages = [model.per_language().select(pl.lit(model.name).alias("model"), pl.all())
             for model in models if model.per_language().height]
if languages:
    st.markdown("**Accuracy per language** (the cross-validation's test clips, pooled)")
    st.dataframe(pl.concat(languages), hide_index=True, width="stretch",
                 column_config={"accuracy": st.column_config.NumberColumn(format="%.3f")})
st.subheader("Speaker-independent test split")
summary = pl.DataFrame([{
    "model": m.name,
    "test accuracy": (m.metrics or {}).get("accuracy"), "test macro-F1": (m.metrics or {}).get("macro_f1"),
    "test items": (m.metrics or {}).get("n"), "validation accuracy": (m.metrics or {}).get("val_accuracy"),
    "temperature": (m.calibration() or {}).get("temperature"),
    "test ECE before → after": "" if m.calibration() is None else
    f"{m.calibration()['ece_before']:.3f} → {m.calibration()['ece_after']:.3f}",
    "checkpoint": "missing" if m.checkpoint is None else
    {True: "as in dvc.lock", False: "differs from dvc.lock", None: "not in dvc.lock"}[m.matches_lock],
    "dvc.lock md5": m.locked_md5 or "",
} for m in models])
st.dataframe(summary, hide_index=True, width="stretch",
             column_config={c: st.column_config.NumberColumn(format="%.3f")
                            for c in ("test accuracy", "test macro-F1", "validation accuracy", "temperature")})
revision = git_revision(config.root)
st.caption(f"Models of {'git commit ' + revision if revision else 'a project outside git'}; `dvc pull` fetches "
           "the checkpoints dvc.lock names, `dvc repro` rebuilds them.")
links = prefect_links(os.environ.get("PREFECT_API_URL"))
if links:
    st.markdown("Prefect UI: " + " · ".join(f"[{name}]({url})" for name, url in links.items()))
else:
    st.caption("Set `PREFECT_API_URL` before `emotion app` to get links to the pipeline's runs in the Prefect UI.")

for tab, model in zip(st.tabs([m.name for m in models]), models):
    with tab:
        metrics = model.metrics
        if metrics is None:
            st.info(f"The {model.name} model has not been evaluated yet: run `dvc repro {model.name}_evaluate`.")
            continue
        folds, per_language = model.cross_validation(), model.per_language()
        if folds.height:
            st.markdown("**Cross-validation and leave one corpus out**")
            st.dataframe(folds, hide_index=True, width="stretch")
        if per_language.height:
            st.markdown("**Accuracy per language** (cross-validation test clips, pooled)")
            st.dataframe(per_language, hide_index=True, width="stretch", column_config=THREE_DECIMALS)
        calibration = model.calibration()
        if calibration is None:
            st.caption("Evaluated before calibration: its probabilities are the network's, untempered.")
        else:
            st.markdown(f"**Calibration**: temperature T = {calibration['temperature']:.2f} "
                        f"({calibration['note'] or 'fitted on validation speakers'}); expected calibration error "
                        f"on the test split {calibration['ece_before']:.3f} → {calibration['ece_after']:.3f}.")
        st.markdown("**Speaker-independent test split**")
        columns = st.columns(4)
        columns[0].metric("Test accuracy", f"{metrics['accuracy']:.1%}")
        columns[1].metric("Test macro-F1", f"{metrics['macro_f1']:.3f}")
        columns[2].metric("Test items", metrics["n"])
        columns[3].metric("Best epoch", metrics.get("trained_epoch") or "–")
        if not metrics["n"]:
            st.warning("The test split is empty: no speaker of this model's data was held out, so there is no "
                       "accuracy on unseen people to show.")
        left, right = st.columns(2)
        left.markdown("**Per class**")
        left.dataframe(model.per_class(), hide_index=True, width="stretch", column_config=THREE_DECIMALS)
        left.markdown("**Per corpus**")
        left.dataframe(model.per_corpus(), hide_index=True, width="stretch", column_config=THREE_DECIMALS)
        right.altair_chart(charts.confusion_chart(model.confusion()))
        if model.history is not None and model.history.height:
            st.markdown("**Training curves**")
            st.altair_chart(charts.curves_chart(model.history))
        ablations = model.ablations()
        if ablations.height:
            st.markdown("**Ablations and other evaluations** (views switched off, late vs learned fusion, "
                        "cross-validation folds), as in the model's report")
            st.dataframe(ablations, hide_index=True, width="stretch", column_config=THREE_DECIMALS)
        if model.trials is not None and model.trials.height:
            st.markdown(f"**Tuning trials** ({model.trials.height}; best hyperparameters: "
                        f"`{model.best_hyperparameters or 'none chosen'}`)")
            st.altair_chart(charts.trials_chart(model.trials), width="stretch", height=240)
            st.dataframe(model.trials, hide_index=True, width="stretch")
        if model.report:
            st.caption(f"Full report with figures: `{model.report.resolve()}`")
