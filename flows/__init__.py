"""Prefect flows (thin wiring of the stage functions in tasks/) and the `emotion` command line that starts them."""

import os

# Telemetry is off unless a user turns it on explicitly (this must precede Prefect's import).
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
