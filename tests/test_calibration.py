"""Temperature scaling and expected calibration error (emotion_models.training.calibration)."""

import numpy as np
import pytest
import torch

from emotion_models.training.calibration import (
    calibrate,
    expected_calibration_error,
    fit_temperature,
    reliability,
    softmax,
)


def _over_confident(temperature: float, rows: int = 20_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits ``temperature`` times sharper than the distribution the labels are drawn from."""
    rng = np.random.default_rng(seed)
    honest = rng.normal(0.0, 1.5, (rows, 5))
    probabilities = softmax(honest)
    labels = np.array([rng.choice(5, p=p) for p in probabilities])
    return honest * temperature, labels


def test_fitted_temperature_recovers_a_known_over_confidence_and_lowers_ece():
    logits, labels = _over_confident(2.5)
    temperature = fit_temperature(torch.from_numpy(logits), torch.from_numpy(labels))
    assert temperature == pytest.approx(2.5, rel=0.05)
    before = expected_calibration_error(softmax(logits), labels)
    after = expected_calibration_error(softmax(logits, temperature), labels)
    assert before > 0.1 and after < 0.02
    assert (softmax(logits, temperature).argmax(1) == logits.argmax(1)).all()  # no decision changes


def test_calibrate_records_the_fit_and_a_model_without_validation_rows_keeps_t_one():
    logits, labels = _over_confident(2.0, rows=5000)
    fitted = calibrate(logits, labels)
    record = fitted["calibration"]
    assert fitted["temperature"] == pytest.approx(2.0, rel=0.08) == record["fitted_temperature"]
    assert record["clips"] == 5000 and record["nll_after"] < record["nll_before"]
    assert record["val_ece_after"] < record["val_ece_before"]
    under = calibrate(*_over_confident(0.5, rows=5000))  # under-confident on validation: never sharpened
    assert under["calibration"]["fitted_temperature"] == pytest.approx(0.5, rel=0.08)
    assert under["temperature"] == 1.0
    empty = calibrate(np.zeros((0, 5)), np.zeros(0, int))
    assert empty["temperature"] == 1.0 and "no validation clips" in empty["calibration"]["note"]


def test_expected_calibration_error_of_a_hand_made_case():
    # confidences 0.95, 0.95 (bin 15: one right -> accuracy 0.5), 0.5 (bin 8, right), 0.25 (bin 4, wrong)
    probabilities = np.array([[0.95, 0.05, 0, 0, 0], [0.95, 0.05, 0, 0, 0],
                              [0.1, 0.5, 0.4, 0, 0], [0.25, 0.2, 0.2, 0.2, 0.15]])
    labels = np.array([0, 1, 1, 3])
    expected = (2 * abs(0.5 - 0.95) + abs(1 - 0.5) + abs(0 - 0.25)) / 4
    assert expected_calibration_error(probabilities, labels) == pytest.approx(expected)
    counts, confidence, accuracy = reliability(probabilities, labels)
    assert counts.tolist() == [0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 2]
    assert confidence[14] == pytest.approx(0.95) and accuracy[14] == 0.5 and np.isnan(accuracy[0])
    assert expected_calibration_error(np.eye(5), np.arange(5)) == 0.0  # sure and right
    assert np.isnan(expected_calibration_error(np.zeros((0, 5)), np.zeros(0, int)))


def test_a_checkpoint_keeps_its_temperature_and_scoring_divides_the_logits_by_it(tmp_path):
    import onnxruntime

    from emotion_models.export.graphs import AudioProbabilities, _export
    from emotion_models.nets.audio import AudioSpec
    from emotion_models.params import load_params
    from emotion_models.training.loop import save_checkpoint
    from tests.conftest import REPO

    spec, params = AudioSpec(), load_params(REPO / "params.yaml")
    config = spec.model_config(params)
    torch.manual_seed(0)
    model = spec.build(config).eval()
    save_checkpoint(tmp_path / "model.pt", model, {"config": config, "temperature": 1.7,
                                                   "calibration": {"clips": 12, "fitted_on": "validation clips"}})
    loaded, meta = spec.load(tmp_path / "model.pt")
    assert meta["temperature"] == 1.7 and meta["calibration"]["clips"] == 12
    shapes = spec.arrays(params)
    inputs = {name: torch.randn(4, *shape) for name, shape in shapes.items()}
    with torch.no_grad():
        logits = loaded(inputs).numpy()
    _export(AudioProbabilities(loaded, list(inputs), meta["temperature"]), inputs, tmp_path / "audio.onnx")
    session = onnxruntime.InferenceSession(str(tmp_path / "audio.onnx"), providers=["CPUExecutionProvider"])
    scored = session.run(None, {name: value.numpy() for name, value in inputs.items()})[0]  # as scoring runs it
    assert np.allclose(scored, softmax(logits, 1.7), atol=1e-5)
    assert not np.allclose(scored, softmax(logits), atol=1e-3)


def test_late_fusion_pools_the_calibrated_distributions():
    """The log-linear pool of calibrated views is the softmax of their weighted, temperature-scaled
    logits: each view counts by its calibrated confidence, and a lone view passes through as it is."""
    from emotion_models.scoring.fusion import late_fusion

    rng = np.random.default_rng(3)
    audio_logits, face_logits = rng.normal(0, 1.5, (6, 5)), rng.normal(0, 1.5, (6, 5))  # above the 1e-6 floor
    views = {"audio": softmax(audio_logits, 2.0), "face": softmax(face_logits, 0.8), "text": np.full((6, 5), np.nan)}
    weights = {"audio": 0.3, "face": 0.6, "text": 0.1}
    fused = late_fusion(views, weights)
    expected = softmax((0.3 * audio_logits / 2.0 + 0.6 * face_logits / 0.8) / 0.9)
    assert np.allclose(fused, expected, atol=1e-9)
    views["face"][:3] = np.nan  # no face in the first windows: the calibrated audio view alone
    assert np.allclose(late_fusion(views, weights)[:3], softmax(audio_logits[:3], 2.0))


def test_the_report_shows_the_calibration_and_its_reliability_diagram(tmp_path):
    from emotion_models.reports.evaluation import classification_metrics, reliability_png, render_report

    logits, labels = _over_confident(2.0, rows=400)
    before, after = softmax(logits), softmax(logits, 2.0)
    metrics = {**classification_metrics(labels, logits.argmax(1)), "per_dataset": {}, "temperature": 2.0,
               "ece_bins": 15, "ece_before": expected_calibration_error(before, labels),
               "ece_after": expected_calibration_error(after, labels),
               "calibration_note": "fitted on 40 validation clips"}
    plot = reliability_png(labels, before, after, 2.0, (metrics["ece_before"], metrics["ece_after"]))
    render_report(tmp_path, "Audio model", metrics, reliability_plot=plot)
    html = (tmp_path / "report.html").read_text()
    assert (tmp_path / "reliability.png").read_bytes() == plot
    assert "T = 2.000: fitted on 40 validation clips" in html
    assert f"<b>{metrics['ece_before']:.3f}</b> uncalibrated, <b>{metrics['ece_after']:.3f}</b> calibrated" in html
