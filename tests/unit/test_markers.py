"""The markers CI selects by are on the tests, as a fresh pytest run sees them: ``integration``
on everything under tests/integration (a module without a ``pytestmark`` included), and ``gpu``
tests skipped, with the reason, where torch sees no CUDA device."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# test_database.py declares no marker of its own: only the collection hook can mark it.
INTEGRATION_FILE = "tests/integration/test_database.py"
UNIT_FILE = "tests/unit/test_score_metrics.py"


def pytest_run(*args: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    # 0: tests passed (or were collected); 5: none was selected.
    assert result.returncode in (0, 5), result.stdout + result.stderr
    return result.stdout


def collected(marker_expression: str) -> list[str]:
    out = pytest_run("--collect-only", "-q", "-m", marker_expression, INTEGRATION_FILE, UNIT_FILE)
    return [line for line in out.splitlines() if "::" in line]


def test_not_integration_leaves_out_every_integration_test() -> None:
    kept = collected("not integration")
    assert kept and all(test.startswith("tests/unit/") for test in kept), kept
    chosen = collected("integration")
    assert chosen and all(test.startswith(INTEGRATION_FILE) for test in chosen), chosen


@pytest.mark.slow  # a pytest run that imports torch and the trainer
def test_gpu_tests_skip_with_the_reason_without_cuda() -> None:
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")  # as on a machine without a GPU
    out = pytest_run("-q", "-rs", "-m", "gpu", "tests/unit/test_cuda_paths.py", env=env)
    assert "passed" not in out and "failed" not in out, out
    assert "needs a CUDA device: torch.cuda.is_available() is False" in out, out
