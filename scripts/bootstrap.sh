#!/usr/bin/env bash
# Python environment: .venv with the pinned dependencies, reinstalled only when pyproject changes
# (or .venv lacks the pinned uv). uv, installed into .venv with pip, does the install: its cache
# (~/.cache/uv) makes a reinstall quick, and tests/integration/test_images.py installs every image
# (torch included) from that cache as the Dockerfiles do, in seconds instead of a download.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON="${PYTHON:-python3}"
UV_VERSION=0.13.9 # the images' too (services/*/Dockerfile); tests/unit/test_dependencies.py checks
stamp=.venv/.vigil-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)

if [[ ! -x .venv/bin/python ]]; then
  "$PYTHON" -m venv .venv || { echo "bootstrap: cannot create .venv with $PYTHON (need Python 3.11 with venv)" >&2; exit 1; }
fi
have_uv=$(.venv/bin/uv --version 2>/dev/null || true)
if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" || "$have_uv" != "uv $UV_VERSION"* ]]; then
  echo "bootstrap: installing Python dependencies into .venv (first time: several minutes, torch is large)"
  .venv/bin/python -m pip install --quiet "uv==$UV_VERSION"
  .venv/bin/uv pip install --quiet --python .venv/bin/python -e ".[vision,dev]"
  echo "$want" > "$stamp"
fi
