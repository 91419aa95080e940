"""The trained checkpoints (torch) as the ONNX graphs scoring runs (stage scoring_export)."""
