"""A one_class model's backbone fine-tuned on the site: the body of a registry classify model.

ImageNet features describe ImageNet; a classify job on a site's own labeled footage moves them
towards what matters there (the walkway's people and carts, not its textures). A one_class spec
names such a model in ``backbone_model_id``; the fitted model then carries the body's weights in
its own artifact (``backbone.*`` tensors), so it keeps scoring when the classify model it came
from is archived or deleted, and its sha256 covers them like every other tensor.
"""

from __future__ import annotations

import torch

from vigil_shared.schemas.jobs import ClassifySpec
from vigil_shared.schemas.manifests import ModelManifest, site_backbone_problem
from vigil_shared.vision.efficientnet_lite import EfficientNetLite0

BACKBONE_PREFIX = "backbone."
BODY_PREFIX = "body."  # a classify artifact: ``body.*`` the catalog network, ``head.*`` ours
HEAD_KEYS = "_fc."  # Lite0's ImageNet head, replaced in a classifier and unused by patches


class SiteBackboneError(ValueError):
    """The named model cannot serve as a one_class backbone; the message says why."""


def _lite0(state: dict[str, torch.Tensor], what: str) -> EfficientNetLite0:
    module = EfficientNetLite0()
    result = module.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith(HEAD_KEYS)]
    if missing or result.unexpected_keys:
        raise SiteBackboneError(
            f"{what} is not an efficientnet_lite0 body: missing {missing[:5]}, "
            f"unexpected {result.unexpected_keys[:5]}"
        )
    return module.eval()


def lite0_from_classifier(
    manifest: ModelManifest, tensors: dict[str, torch.Tensor]
) -> EfficientNetLite0:
    """The fine-tuned Lite0 of a classify model's artifact (its head left out)."""
    problem = site_backbone_problem(manifest)
    if problem is not None:
        raise SiteBackboneError(problem)
    body = {k.removeprefix(BODY_PREFIX): v for k, v in tensors.items() if k.startswith(BODY_PREFIX)}
    return _lite0(body, f"model {manifest.model_id}'s artifact")


def backbone_tensors(module: EfficientNetLite0) -> dict[str, torch.Tensor]:
    """What a one_class artifact stores of its backbone: every weight but the unused head."""
    return {
        BACKBONE_PREFIX + k: v.detach().cpu().contiguous()
        for k, v in module.state_dict().items()
        if not k.startswith(HEAD_KEYS)
    }


def stored_backbone(tensors: dict[str, torch.Tensor]) -> EfficientNetLite0 | None:
    """The backbone a one_class artifact carries, or None (it uses the pinned ImageNet weights)."""
    state = {
        k.removeprefix(BACKBONE_PREFIX): v
        for k, v in tensors.items()
        if k.startswith(BACKBONE_PREFIX)
    }
    return _lite0(state, "the one_class artifact's backbone") if state else None


def untouched_patch_stages(manifest: ModelManifest, stages: tuple[int, ...]) -> str | None:
    """A warning when the classify job kept every stage up to the deepest patch stage frozen:
    its body then gives exactly ImageNet's patch features (the default freezing trains only the
    last 2 of Lite0's 9 stages, past the patches at stages 2 and 4)."""
    if not isinstance(manifest.spec, ClassifySpec):
        return None
    freeze = manifest.spec.structure.freeze
    if freeze.mode == "none" or freeze.unfreeze_every is not None:
        return None
    catalog_stages = 9  # stem, the 7 block stages, the head conv
    trainable = 0 if freeze.mode == "all_but_head" else freeze.last_n_stages
    deepest = max(stages) + 1  # block stage s is catalog stage s + 1
    if catalog_stages - trainable > deepest:
        return (
            f"model {manifest.model_id} was fine-tuned with its first {catalog_stages - trainable} "
            f"of {catalog_stages} stages frozen, so patch stages {list(stages)} are ImageNet's "
            "unchanged; fine-tune with structure.freeze.mode none (or last_n_stages >= "
            f"{catalog_stages - deepest}) for features adapted to the site"
        )
    return None
