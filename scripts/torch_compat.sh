#!/usr/bin/env bash
# The tests on another torch/torchvision pair than the pinned one: by default the GPU host's
# own (2.11 / 0.26), which the code must also run on (README). It builds a virtualenv of its
# own (.venv-torch-<version>, ignored by git) with that pair and every other package at the
# version .venv has, so only torch differs, then runs pytest with it against the stack.
#   bash scripts/torch_compat.sh                       torch 2.11.0 / torchvision 0.26.0, tests/unit
#   bash scripts/torch_compat.sh 2.11.0 0.26.0 tests   the whole suite (about 12 minutes)
# Not part of CI: the pair is about 5 GB of wheels.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

TORCH="${1:-2.11.0}"
VISION="${2:-0.26.0}"
shift $(( $# < 2 ? $# : 2 ))
VENV=".venv-torch-$TORCH"

bash scripts/bootstrap.sh
if [[ ! -x "$VENV/bin/python" ]] \
    || ! "$VENV/bin/python" -c "import torch, torchvision, sys; sys.exit(not (torch.__version__.startswith('$TORCH') and torchvision.__version__.startswith('$VISION')))"; then
  echo "torch_compat: building $VENV (torch $TORCH, torchvision $VISION)"
  rm -rf "$VENV"
  python3.11 -m venv "$VENV"
  "$VENV/bin/pip" install -q "torch==$TORCH" "torchvision==$VISION"
  # Everything else as .venv has it; torch, its CUDA wheels and the project itself left out.
  .venv/bin/pip freeze --exclude-editable \
    | grep -viE '^(torch|torchvision|triton|nvidia-[^=]*|cuda-[^=]*)==' > "$VENV/others.txt"
  "$VENV/bin/pip" install -q -r "$VENV/others.txt" "torch==$TORCH" "torchvision==$VISION"
  "$VENV/bin/pip" install -q --no-deps -e .
fi
"$VENV/bin/python" -c "import torch, torchvision; print('torch_compat: torch', torch.__version__, 'torchvision', torchvision.__version__)"

bash scripts/stack.sh start
set -a
# shellcheck disable=SC1091
. .stack/env
set +a
"$VENV/bin/python" -m pytest -n "${VIGIL_TEST_WORKERS:-2}" --dist worksteal "${@:-tests/unit}"
