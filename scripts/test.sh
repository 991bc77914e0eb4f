#!/usr/bin/env bash
# The test command: installs what is missing, starts the real servers, then lint, types, tests.
#   scripts/test.sh                  everything
#   scripts/test.sh -m "not slow"    extra arguments go to pytest
#   VIGIL_TEST_WORKERS=0 scripts/test.sh   one process (pytest-xdist's -n; default 2)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/bootstrap.sh
bash scripts/stack.sh start
set -a
# shellcheck disable=SC1091
. .stack/env
set +a

echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy"
.venv/bin/mypy
echo "== pytest"
# Spread over processes (pytest-xdist): most integration tests wait on servers and subprocesses,
# so two workers overlap that waiting even on two cores. VIGIL_TEST_WORKERS=0 runs in one process.
.venv/bin/pytest -n "${VIGIL_TEST_WORKERS:-2}" --dist worksteal "$@"
