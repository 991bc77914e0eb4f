"""The model kinds inference can score, looked up by the manifest's ``task``.

The scoring side of the trainer's ``vigil_trainer.kinds``: each kind's ``FrameModel`` module
(``vision/<kind>_model.py``) builds its model from a manifest and the artifact's verified
tensors, and this table names which builds which. ``inferencer`` reads and verifies the
artifact, then calls the loader of the manifest's task; it knows no kind itself. A kind built on
other registry models (an ``ensemble``) is handed a function that loads one of them.
``tests/unit/test_model_kinds.py`` checks that every manifest task has a loader and every
trainable task a trainer kind. A new kind: its ``FrameModel`` module and one line in ``LOADERS``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
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


LOADERS: Final[Mapping[str, KindLoader]] = {
    "one_class": own_artifact(one_class_by_layout),
    "classify": own_artifact(ClassifierFrameModel.from_artifact),
    "ensemble": ensemble_from_artifact,
}
