"""The trainer's side of the model kinds: the run of the kind a job spec's ``task`` names.

Which module fits a kind is written once, beside its scoring loader, in the table both sides
read (``vigil_shared.vision.model_kinds.KINDS``); this module imports that module the first time
a job of the kind runs and keeps its ``run``, so the job runner knows no kind. Each kind is a
package (``one_class``, ``classify``) whose ``job.run`` takes the job's context and its validated
spec and returns the registered model's manifest. Kinds import no other kind
(``tests/unit/test_trainer_kinds.py``): what two kinds share lives in the neutral modules beside
this one (``context``, ``registry``, ``reporting``, ``weights``, ``cancel``, ``errors``).
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import Any, Protocol, cast

from vigil_shared.schemas.jobs import JobSpec
from vigil_shared.schemas.manifests import ModelManifest
from vigil_shared.vision.model_kinds import KINDS
from vigil_trainer.context import JobContext


class KindRun(Protocol):
    """A kind's whole job: data, fit, evaluation, registration. ``spec`` is the kind's own spec
    class (the test of the kinds checks each against the shared schema)."""

    def __call__(self, *, ctx: JobContext, spec: Any) -> ModelManifest: ...


class KindNotTrainableError(LookupError):
    """The registry names no trainer module for the kind, or one this install cannot import:
    a deployment or registry mistake, not the job's input."""


@cache
def kind_run(task: str) -> KindRun:
    """The ``run`` of the trainer module ``KINDS[task]`` names, imported once."""
    module_name = KINDS[task].trainer
    if module_name is None:
        raise KindNotTrainableError(f"model kind {task!r} is not trained by a job of its own")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is None or not f"{module_name}.".startswith(f"{exc.name}."):
            raise  # the module exists but a dependency of it is missing: that error says which
        raise KindNotTrainableError(
            f"model kind {task!r}: its trainer module {module_name} is not installed; "
            "install the trainer package with it, or fix the name in vision/model_kinds.py"
        ) from exc
    run = getattr(module, "run", None)
    if not callable(run):
        raise KindNotTrainableError(f"model kind {task!r}: {module_name} has no run(ctx=, spec=)")
    return cast(KindRun, run)


def run_kind(*, ctx: JobContext, spec: JobSpec) -> ModelManifest:
    """Run the kind ``spec.task`` names; every task the schema accepts has one."""
    return kind_run(spec.task)(ctx=ctx, spec=spec)
