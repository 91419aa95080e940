"""Stage `scoring_export`: the trained models as the ONNX graphs scoring runs (models/scoring/)."""

from __future__ import annotations

from prefect import flow, get_run_logger

from emotion_models.params import load_params
from flows.common import publish_markdown, run_stage
from tasks.export import export_scoring_models


@flow(name="export", flow_run_name="scoring-export")
def export_flow(params_path: str | None = None) -> dict:
    """Export the three checkpoints to ONNX (face CNNs int8 with scoring.quantise) and check them
    against the checkpoints; reports/scoring/export.json and a Prefect artifact."""
    logger = get_run_logger()
    result = export_scoring_models(load_params(params_path), report=logger.info)
    face = result["face_test_split"]
    lines = ["# Scoring graphs against the checkpoints", "",
             f"Face test split: {face['n']} crops, the same class for {face['agreement']:.1%}; accuracy "
             f"{face['accuracy_checkpoint']:.3f} (checkpoint) vs {face['accuracy_scoring']:.3f} (scoring graph)", "",
             "| video window view | windows | same class |", "|---|---|---|"]
    lines += [f"| {view} | {row['n']} | {'-' if row['agreement'] is None else format(row['agreement'], '.1%')} |"
              for view, row in result["video_windows"].items()]
    lines += ["", "| face CNN, 64 crops | ms |", "|---|---|"]
    lines += [f"| {name} | {ms:.1f} |" for name, ms in result["face_ms_per_64_crops"].items()]
    publish_markdown("scoring-export", "\n".join(lines) + "\n", "Scoring graphs (ONNX) against the checkpoints")
    return result


if __name__ == "__main__":
    run_stage({"scoring": export_flow})
