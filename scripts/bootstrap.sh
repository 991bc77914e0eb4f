#!/usr/bin/env bash
# Python environment: .venv with the pinned dependencies, reinstalled only when pyproject changes.
# pip's cache (~/.cache/pip) makes a reinstall on the same machine quick.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON="${PYTHON:-python3}"
stamp=.venv/.vigil-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)

if [[ ! -x .venv/bin/python ]]; then
  "$PYTHON" -m venv .venv || { echo "bootstrap: cannot create .venv with $PYTHON (need Python 3.11 with venv)" >&2; exit 1; }
fi
if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
  echo "bootstrap: installing Python dependencies into .venv (first time: several minutes, torch is large)"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".[vision,dev]"
  echo "$want" > "$stamp"
fi
