"""Interactive prediction: one file through the trained checkpoints (torch), as `emotion predict` and the
app's /predict page use it."""
