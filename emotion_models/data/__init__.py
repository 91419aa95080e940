"""Datasets: adapters for each corpus's naming, download, the harmonised manifest and its splits."""
