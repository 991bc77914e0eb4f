"""The model kinds the trainer runs, looked up by the spec's ``task``.

Each kind is a package (``one_class``, ``classify``) whose ``job.run`` takes the job's context
and its validated spec and returns the registered model's manifest; the job runner knows no
kind beyond this table. Kinds import no other kind (``tests/unit/test_trainer_kinds.py``): what
two kinds share lives in the neutral modules beside this one (``context``, ``registry``,
``reporting``, ``weights``, ``cancel``, ``errors``). A new kind is a spec in the shared job
schema, a package here with its ``job.run``, and one line in ``KINDS``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Protocol

from vigil_shared.schemas.jobs import JobSpec
from vigil_shared.schemas.manifests import ModelManifest
from vigil_trainer.classify import job as classify_job
from vigil_trainer.context import JobContext
from vigil_trainer.one_class import job as one_class_job


class KindRun(Protocol):
    """A kind's whole job: data, fit, evaluation, registration. ``spec`` is the kind's own spec
    class (the test of this table checks each against the shared schema)."""

    def __call__(self, *, ctx: JobContext, spec: Any) -> ModelManifest: ...


KINDS: Final[Mapping[str, KindRun]] = {
    "one_class": one_class_job.run,
    "classify": classify_job.run,
}


def run_kind(*, ctx: JobContext, spec: JobSpec) -> ModelManifest:
    """Run the kind ``spec.task`` names; every task the schema accepts has one."""
    return KINDS[spec.task](ctx=ctx, spec=spec)
