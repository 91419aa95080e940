"""Evaluation metrics and the HTML reports (evaluation, Grad-CAM, scored batches)."""
