"""The trainer's model kinds: one run per job kind of the shared schema, resolved from the one
table of kinds, and no kind importing another (what two kinds share lives in the trainer's
neutral modules)."""

from __future__ import annotations

import inspect
import pathlib
import pkgutil
import subprocess
import sys
from typing import get_args, get_type_hints

import pytest
from pydantic import Tag

import vigil_trainer
from vigil_shared.schemas.jobs import JobSpec
from vigil_shared.schemas.manifests import ModelManifest
from vigil_shared.vision.model_kinds import KINDS, ModelKind
from vigil_trainer.context import JobContext
from vigil_trainer.kinds import KindNotTrainableError, kind_run

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


def trainer_modules() -> dict[str, str]:
    """The trainer module the table of kinds names for each kind a job trains."""
    return {task: kind.trainer for task, kind in KINDS.items() if kind.trainer is not None}


def kind_packages() -> dict[str, str]:
    """The package of each kind's run: ``vigil_trainer.classify`` for ``classify``."""
    return {task: module.rpartition(".")[0] for task, module in trainer_modules().items()}


def test_every_job_kind_of_the_schema_has_a_trainer_module_with_its_run() -> None:
    assert set(trainer_modules()) == set(schema_kinds())
    for task, module in trainer_modules().items():
        assert kind_run(task).__module__ == module


@pytest.mark.parametrize("task", sorted(schema_kinds()))
def test_each_run_takes_the_context_and_its_own_spec(task: str) -> None:
    run = kind_run(task)
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


@pytest.mark.parametrize(
    ("trainer", "problem"),
    [
        (None, "is not trained by a job of its own"),
        ("vigil_trainer.no_such_kind.job", "vigil_trainer.no_such_kind.job is not installed"),
        ("vigil_trainer.errors", "vigil_trainer.errors has no run"),
    ],
)
def test_a_kind_without_a_trainer_run_fails_saying_which(
    trainer: str | None, problem: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(KINDS, "new_kind", ModelKind(load=KINDS["classify"].load, trainer=trainer))
    with pytest.raises(KindNotTrainableError, match=f"model kind 'new_kind'.*{problem}"):
        kind_run("new_kind")


def test_a_trainer_module_missing_a_dependency_says_which(
    monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path
) -> None:
    (tmp_path / "kind_needing_more.py").write_text("import no_such_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(
        KINDS, "newer_kind", ModelKind(load=KINDS["classify"].load, trainer="kind_needing_more")
    )
    with pytest.raises(ModuleNotFoundError, match="no_such_dependency"):
        kind_run("newer_kind")


@pytest.mark.parametrize("task", sorted(trainer_modules()))
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
