#!/usr/bin/env bash
# Set up a fresh machine: system tools (ffmpeg) when missing, then the project in .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v ffmpeg >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null
  else
    echo "ffmpeg is missing: install it first (Debian/Ubuntu: sudo apt-get install ffmpeg; macOS: brew install ffmpeg)" >&2
    exit 1
  fi
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[dev]"
.venv/bin/dvc config --local core.analytics false >/dev/null 2>&1 || true
echo "installed: activate with '. .venv/bin/activate'"
