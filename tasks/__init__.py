"""Pipeline stages as plain functions (one module each); flows/ and dvc.yaml wire them."""
