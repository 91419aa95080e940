#!/usr/bin/env bash
# Set up a fresh machine: system tools (ffmpeg, chromium, chromedriver) when missing, then the project in .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
# system tools: ffmpeg (decoding), chromium + chromedriver (the web app's browser test)
missing=()
command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  elif [[ " ${missing[*]} " == *" ffmpeg "* ]]; then
    echo "ffmpeg is missing: install it first (Debian/Ubuntu: sudo apt-get install ffmpeg; macOS: brew install ffmpeg)" >&2
    exit 1
  else
    echo "note: ${missing[*]} missing: the web app's browser test will be skipped" \
         "(Debian/Ubuntu: sudo apt-get install chromium chromium-driver)" >&2
  fi
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[dev]"
.venv/bin/dvc config --local core.analytics false >/dev/null 2>&1 || true
echo "installed: activate with '. .venv/bin/activate'"
