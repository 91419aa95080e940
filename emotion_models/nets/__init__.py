"""The networks and each model's spec (features, build, checkpoint) by name."""
