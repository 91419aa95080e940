"""Scoring videos with the trained models: windows, views, outputs keyed by content hash."""
