"""Model flows: feature extraction, training and evaluation of the audio, face and video models."""

from __future__ import annotations

from prefect import flow, get_run_logger

from emotion_models.nets.registry import MODEL_NAMES, get_spec
from emotion_models.params import load_params
from emotion_models.reports.evaluation import metrics_markdown
from flows.common import publish_markdown, run_stage
from tasks.evaluate import evaluate, report_extras
from tasks.features import extract_features
from tasks.train import pretrain, train


@flow(name="features", flow_run_name="{model}-features")
def features_flow(model: str, params_path: str | None = None) -> dict[str, int]:
    """Extract the model's features from every manifest clip (parallel, resumable)."""
    logger = get_run_logger()
    spec, params = get_spec(model), load_params(params_path)
    extracted, rejected = extract_features(spec, params)
    rejects = spec.store(params).rejects()
    logger.info("%s features: %d extracted, %d rejected now", model, extracted, rejected)
    if rejects.height:
        table = "\n".join(f"| {r['path']} | {r['reason']} |" for r in rejects.head(100).to_dicts())
        publish_markdown(f"{model}-feature-rejects", "| path | reason |\n|---|---|\n" + table,
                         f"{model}: clips rejected by feature extraction")
    return {"extracted": extracted, "rejected": rejected}


@flow(name="pretrain", flow_run_name="{model}-pretrain")
def pretrain_flow(model: str, params_path: str | None = None) -> float:
    """Train the network on the large corpora alone (<model>.pretrain); <model>_train starts from it."""
    logger = get_run_logger()
    history = pretrain(get_spec(model), load_params(params_path), report=logger.info)
    return max((h.val_accuracy for h in history), default=float("nan"))


@flow(name="train", flow_run_name="{model}-train")
def train_flow(model: str, params_path: str | None = None) -> float:
    """Train the model (GPU when present) and keep the best validation checkpoint."""
    logger = get_run_logger()
    history = train(get_spec(model), load_params(params_path), report=logger.info)
    return max(h.val_accuracy for h in history)


@flow(name="evaluate", flow_run_name="{model}-evaluate")
def evaluate_flow(model: str, params_path: str | None = None) -> dict:
    """Evaluate on the speaker-independent test split; reports/<model>/ and a Prefect artifact."""
    spec, params = get_spec(model), load_params(params_path)
    metrics = evaluate(spec, params, **report_extras(spec, params))
    publish_markdown(f"{model}-metrics", metrics_markdown(f"{model} model: test split", metrics),
                     f"{model} model evaluation")
    return metrics


STAGES = {"features": features_flow, "pretrain": pretrain_flow, "train": train_flow, "evaluate": evaluate_flow}

if __name__ == "__main__":
    run_stage(STAGES, MODEL_NAMES)
