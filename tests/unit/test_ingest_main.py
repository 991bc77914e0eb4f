"""Settings to fix are one line on stderr naming each variable, and exit status 2."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import ValidationError

from vigil_ingest.__main__ import _settings_problems
from vigil_ingest.settings import IngestSettings


def problems(**values: object) -> str:
    with pytest.raises(ValidationError) as error:
        IngestSettings.model_validate(values)
    return _settings_problems(error.value)


def test_each_variable_to_fix_is_named() -> None:
    line = problems(fps=0, masks=[[[0, 0]]])
    assert "VIGIL_INGEST_FPS: Input should be greater than 0" in line
    assert "VIGIL_INGEST_MASKS" in line


def test_fleet_mode_without_a_key_says_how_to_get_one() -> None:
    line = problems(api_url="http://api:8000")
    assert line.startswith("VIGIL_INGEST_API_URL is set but VIGIL_INGEST_API_KEY is not")
    assert "operator key" in line


def test_the_process_exits_2_with_one_line() -> None:
    env = {"VIGIL_INGEST_API_URL": "http://api:8000", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "vigil_ingest"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "ingest: invalid settings: VIGIL_INGEST_API_URL is set but VIGIL_INGEST_API_KEY is not; "
        "issue an operator key (POST /api/v1/keys) and set it"
    ]
