"""The model kinds by name, one table for both sides: ``KINDS[task]`` for a manifest's or a
job spec's ``task``.

Each ``ModelKind`` pairs the kind's scoring loader (its ``FrameModel`` module,
``vision/<kind>_model.py``, builds the model from a manifest and the artifact's verified
tensors) with the dotted path of the trainer module whose ``run`` fits it. Inference calls the
loader (``inferencer`` reads and verifies the artifact and knows no kind itself); the trainer
imports the module named here (``vigil_trainer.kinds``) and knows no kind either. The path is a
string because ``shared`` imports no service and the inference image has no trainer. A kind
built on other registry models (an ``ensemble``) is handed a function that loads one of them.
``tests/unit/test_model_kinds.py`` checks that every manifest task has an entry and every task
a job can train a trainer module with its ``run``. A new kind: its ``FrameModel`` module, its
trainer package, and one line in ``KINDS``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final, Protocol

import torch

from vigil_shared.schemas.manifests import EnsembleMember, ModelManifest
from vigil_shared.vision.classifier_model import ClassifierFrameModel
from vigil_shared.vision.knn import BANK_TENSOR, KnnFrameModel
from vigil_shared.vision.one_class_model import OneClassFrameModel
from vigil_shared.vision.score_ensemble import ensemble_from_artifact
from vigil_shared.vision.scoring import FrameModel

MemberLoader = Callable[[EnsembleMember], FrameModel]
"""Loads a registry model another model is built on, refusing one no longer as pinned."""


class KindLoader(Protocol):
    def __call__(
        self,
        *,
        manifest: ModelManifest,
        tensors: dict[str, torch.Tensor],
        device: str,
        members: MemberLoader,
    ) -> FrameModel: ...


FromArtifact = Callable[[ModelManifest, dict[str, torch.Tensor], str], FrameModel]


def own_artifact(build: FromArtifact) -> KindLoader:
    """The loader of a kind built from its own artifact alone (every kind but an ensemble)."""

    def load(
        *,
        manifest: ModelManifest,
        tensors: dict[str, torch.Tensor],
        device: str,
        members: MemberLoader,
    ) -> FrameModel:
        return build(manifest, tensors, device)

    return load


def one_class_by_layout(
    manifest: ModelManifest, tensors: dict[str, torch.Tensor], device: str
) -> FrameModel:
    """The first one_class models stored a bank of global embeddings (and ``k``); later ones
    the patch and motion banks of ``OneClassFrameModel``."""
    if BANK_TENSOR in tensors and manifest.k is not None:
        return KnnFrameModel.from_artifact(manifest, tensors, device)
    return OneClassFrameModel.from_artifact(manifest, tensors, device)


@dataclass(frozen=True)
class ModelKind:
    """What each side needs of one kind, so that neither keeps a table of its own."""

    load: KindLoader
    """Builds the kind's ``FrameModel`` from a verified artifact (inference)."""
    trainer: str | None
    """The trainer module whose ``run(ctx=, spec=)`` fits this kind from its job spec; None for
    a kind no job of its own makes (an ``ensemble`` is made by a ``classify`` job's fusion)."""


KINDS: Final[Mapping[str, ModelKind]] = {
    "one_class": ModelKind(
        load=own_artifact(one_class_by_layout), trainer="vigil_trainer.one_class.job"
    ),
    "classify": ModelKind(
        load=own_artifact(ClassifierFrameModel.from_artifact), trainer="vigil_trainer.classify.job"
    ),
    "ensemble": ModelKind(load=ensemble_from_artifact, trainer=None),
}
