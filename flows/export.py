"""Stage `scoring_export`: the trained models as the ONNX graphs scoring runs (models/scoring/)."""

from __future__ import annotations

from prefect import flow, get_run_logger

from emotion_models.params import load_params
from emotion_models.reports.markdown import export_markdown
from flows.common import publish_markdown, run_stage
from tasks.export import export_scoring_models


@flow(name="export", flow_run_name="scoring-export")
def export_flow(params_path: str | None = None) -> dict:
    """Export the three checkpoints to ONNX (face CNNs int8 with scoring.quantise) and check them
    against the checkpoints; reports/scoring/export.json and a Prefect artifact."""
    logger = get_run_logger()
    result = export_scoring_models(load_params(params_path), report=logger.info)
    publish_markdown("scoring-export", export_markdown(result), "Scoring graphs (ONNX) against the checkpoints")
    return result


if __name__ == "__main__":
    run_stage({"scoring": export_flow})
