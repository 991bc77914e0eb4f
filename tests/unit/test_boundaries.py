"""The walls of the house: what each service may not import, checked in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys

import pytest
from packaging.utils import canonicalize_name

from tests.dockerfiles import extra_requirements, read_dockerfile

FORBIDDEN = {
    "vigil_api.main": ("torch", "vigil_trainer", "vigil_inference", "vigil_ingest"),
    "vigil_api.consumers.sink_main": ("torch", "vigil_trainer", "vigil_inference"),
    "vigil_inference.service": ("celery", "vigil_trainer", "vigil_api", "vigil_ingest"),
    "vigil_ingest.__main__": ("torch", "vigil_api", "vigil_inference", "vigil_trainer"),
    "vigil_trainer.worker": ("vigil_api", "vigil_inference", "vigil_ingest"),
    "vigil_shared.settings": ("torch", "vigil_api", "vigil_inference", "vigil_ingest"),
    # The CLI is an HTTP client on an operator's laptop: the API is all it knows.
    "vigil_cli.main": (
        "torch",
        "vigil_shared",
        "vigil_api",
        "vigil_trainer",
        "vigil_inference",
        "vigil_ingest",
        "kafka",
        "sqlalchemy",
        "minio",
    ),
}


@pytest.mark.parametrize("module", sorted(FORBIDDEN))
def test_module_does_not_import_across_walls(module: str) -> None:
    code = (
        f"import importlib, sys; importlib.import_module({module!r}); "
        f"bad = [m for m in {FORBIDDEN[module]!r} if m in sys.modules]; print(','.join(bad))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "", f"{module} pulls in {result.stdout.strip()}"


@pytest.mark.parametrize(
    ("service", "vision"),
    [("api", False), ("ingest", False), ("inference", True), ("trainer", True)],
)
def test_only_model_services_install_torch(service: str, vision: bool) -> None:
    extras = read_dockerfile(service).extras
    installed = {canonicalize_name(r.name) for e in extras for r in extra_requirements(e)}
    assert ("torch" in installed) is vision
