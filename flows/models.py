"""Model flows: feature extraction, training and evaluation of the audio, face and video models, and
the choice between late and learned fusion of the video's views. Each flow imports its own stage's
task, so a stage's code (and its dvc.yaml deps, tests/test_dvc_deps.py) is what it runs."""

from __future__ import annotations

from prefect import flow, get_run_logger

from emotion_models.nets.registry import MODEL_NAMES, get_spec
from emotion_models.params import load_params
from flows.common import publish_markdown, run_stage


@flow(name="features", flow_run_name="{model}-features")
def features_flow(model: str, params_path: str | None = None) -> dict[str, int]:
    """Extract the model's features from every manifest clip (parallel, resumable)."""
    from emotion_models.reports.markdown import rejects_markdown
    from tasks.features import extract_features

    logger = get_run_logger()
    spec, params = get_spec(model), load_params(params_path)
    extracted, rejected = extract_features(spec, params)
    rejects = spec.store(params).rejects()
    logger.info("%s features: %d extracted, %d rejected now", model, extracted, rejected)
    if rejects.height:
        publish_markdown(f"{model}-feature-rejects", rejects_markdown(rejects),
                         f"{model}: clips rejected by feature extraction")
    return {"extracted": extracted, "rejected": rejected}


@flow(name="pretrain", flow_run_name="{model}-pretrain")
def pretrain_flow(model: str, params_path: str | None = None) -> float:
    """Train the network on the large corpora alone (<model>.pretrain); <model>_train starts from it."""
    from tasks.train import pretrain

    logger = get_run_logger()
    history = pretrain(get_spec(model), load_params(params_path), report=logger.info)
    return max((h.val_accuracy for h in history), default=float("nan"))


@flow(name="train", flow_run_name="{model}-train")
def train_flow(model: str, params_path: str | None = None) -> float:
    """Train the model (GPU when present) and keep the best validation checkpoint."""
    from tasks.train import train

    logger = get_run_logger()
    history = train(get_spec(model), load_params(params_path), report=logger.info)
    return max(h.val_accuracy for h in history)


@flow(name="evaluate", flow_run_name="{model}-evaluate")
def evaluate_flow(model: str, params_path: str | None = None) -> dict:
    """Evaluate on the speaker-independent test split; reports/<model>/ and a Prefect artifact."""
    from emotion_models.reports.evaluation import metrics_markdown
    from tasks.evaluate import evaluate, report_extras

    spec, params = get_spec(model), load_params(params_path)
    trained = spec.load()
    metrics = evaluate(spec, params, trained, **report_extras(spec, params, trained))
    publish_markdown(f"{model}-metrics", metrics_markdown(f"{model} model: test split", metrics),
                     f"{model} model evaluation")
    return metrics


@flow(name="cross-validate", flow_run_name="{model}-cross-validate")
def cross_validate_flow(model: str, params_path: str | None = None) -> dict:
    """Train and test the recipe on params.yaml's speaker-independent protocols (speaker folds per
    corpus, leave one corpus out); reports/<model>/cross_validation.json."""
    from emotion_models.reports.markdown import cross_validation_markdown
    from tasks.cross_validate import cross_validate_stage

    logger = get_run_logger()
    result = cross_validate_stage(get_spec(model), load_params(params_path), report=logger.info)
    publish_markdown(f"{model}-cross-validation", cross_validation_markdown(model, result), f"{model} cross-validation")
    return result


@flow(name="fusion", flow_run_name="{model}-fusion")
def fusion_flow(model: str, params_path: str | None = None) -> dict:
    """Late against learned fusion on the validation split; models/video/fusion.json holds the choice."""
    from emotion_models.reports.markdown import fusion_markdown
    from tasks.fusion import select_fusion

    if model != "video":
        raise ValueError(f"only the video model fuses views; `fusion {model}` has nothing to do")
    record = select_fusion(load_params(params_path))
    publish_markdown("video-fusion", fusion_markdown(record), "video: late vs learned fusion")
    get_run_logger().info("fusion: %s (%s)", record["choice"], record["reason"])
    return record


STAGES = {"features": features_flow, "pretrain": pretrain_flow, "train": train_flow, "evaluate": evaluate_flow,
          "cross_validate": cross_validate_flow, "fusion": fusion_flow}

if __name__ == "__main__":
    run_stage(STAGES, MODEL_NAMES)
