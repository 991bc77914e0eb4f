"""The trainer's model kinds: one run per job kind of the shared schema, and no kind importing
another (what two kinds share lives in the trainer's neutral modules)."""

from __future__ import annotations

import inspect
import pkgutil
import subprocess
import sys
from typing import get_args, get_type_hints

import pytest
from pydantic import Tag

import vigil_trainer
from vigil_shared.schemas.jobs import JobSpec
from vigil_shared.schemas.manifests import ModelManifest
from vigil_trainer.context import JobContext
from vigil_trainer.kinds import KINDS

DISPATCH = {"kinds", "jobs", "worker", "__main__"}
"""The modules that run every kind, so import them all; every other top-level module is neutral."""


def schema_kinds() -> dict[str, type]:
    """Each ``task`` tag of the shared ``JobSpec`` union and the spec class it parses to."""
    union = get_args(JobSpec)[0]
    kinds: dict[str, type] = {}
    for member in get_args(union):
        spec, *metadata = get_args(member)
        tag = next(m.tag for m in metadata if isinstance(m, Tag))
        kinds[tag] = spec
    return kinds


def kind_packages() -> dict[str, str]:
    """The package of each kind's run: ``vigil_trainer.classify`` for ``classify``."""
    return {task: run.__module__.rpartition(".")[0] for task, run in KINDS.items()}


def test_every_job_kind_of_the_schema_has_a_run() -> None:
    assert set(KINDS) == set(schema_kinds())


@pytest.mark.parametrize("task", sorted(schema_kinds()))
def test_each_run_takes_the_context_and_its_own_spec(task: str) -> None:
    run = KINDS[task]
    hints = get_type_hints(run)
    assert hints == {"ctx": JobContext, "spec": schema_kinds()[task], "return": ModelManifest}
    params = inspect.signature(run).parameters.values()
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params)


def test_every_trainer_subpackage_is_a_registered_kind() -> None:
    subpackages = {
        f"vigil_trainer.{m.name}" for m in pkgutil.iter_modules(vigil_trainer.__path__) if m.ispkg
    }
    assert subpackages == set(kind_packages().values())


def loaded_after_importing(modules: list[str], prefixes: list[str]) -> list[str]:
    """Modules under ``prefixes`` that importing ``modules`` in a fresh interpreter loads."""
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        f"print(' '.join(sorted(m for m in sys.modules if m.startswith({tuple(prefixes)!r}))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=180
    )
    return result.stdout.split()


def modules_of(package: str) -> list[str]:
    imported = __import__(package, fromlist=["_"])
    return [package, *(m.name for m in pkgutil.walk_packages(imported.__path__, f"{package}."))]


@pytest.mark.parametrize("task", sorted(KINDS))
def test_a_kind_imports_no_other_kind(task: str) -> None:
    packages = kind_packages()
    others = [f"{p}." for t, p in packages.items() if t != task]
    assert len(modules_of(packages[task])) > 1
    assert loaded_after_importing(modules_of(packages[task]), others) == []


def test_neutral_modules_import_no_kind() -> None:
    neutral = [
        f"vigil_trainer.{m.name}"
        for m in pkgutil.iter_modules(vigil_trainer.__path__)
        if not m.ispkg and m.name not in DISPATCH
    ]
    assert "vigil_trainer.context" in neutral
    kinds = [f"{p}." for p in kind_packages().values()]
    assert loaded_after_importing(neutral, kinds) == []
