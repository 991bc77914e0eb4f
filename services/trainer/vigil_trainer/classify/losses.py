"""Losses by name: the built-ins and any ``custom:<name>`` a deployment registers.

A loss factory gets the spec and the training split's class counts (for class weights) and
returns ``loss(logits, targets) -> scalar``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.nn import functional

from vigil_shared.schemas.jobs import HyperSpec
from vigil_trainer.errors import JobInputError

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
LossFactory = Callable[[HyperSpec, torch.Tensor], Loss]
LOSSES: dict[str, LossFactory] = {}


class UnknownLossError(JobInputError, KeyError):
    def __str__(self) -> str:
        return f"unknown loss {self.args[0]!r}; registered: {', '.join(sorted(LOSSES))}"


def register_loss(name: str) -> Callable[[LossFactory], LossFactory]:
    def add(factory: LossFactory) -> LossFactory:
        LOSSES[name] = factory
        return factory

    return add


def build_loss(spec: HyperSpec, class_counts: torch.Tensor) -> Loss:
    try:
        factory = LOSSES[spec.loss]
    except KeyError:
        raise UnknownLossError(spec.loss) from None
    return factory(spec, class_counts)


def balanced_weights(class_counts: torch.Tensor) -> torch.Tensor:
    """n / (C * n_c) over the C classes present: each weighs the same in total; a class absent
    from the training split gets weight 0."""
    counts = class_counts.float()
    present = int((counts > 0).sum())
    weights = counts.sum() / (max(1, present) * counts.clamp(min=1))
    return torch.where(counts > 0, weights, torch.zeros_like(weights))


def focal_loss(
    logits: torch.Tensor, targets: torch.Tensor, *, gamma: float, weight: torch.Tensor | None
) -> torch.Tensor:
    """Cross-entropy scaled by (1 - p_true)^gamma, so easy frames count less; gamma 0 is CE."""
    log_p = functional.log_softmax(logits.float(), dim=1)
    log_p_true = log_p.gather(1, targets[:, None]).squeeze(1)
    loss = -((1 - log_p_true.exp()) ** gamma) * log_p_true
    if weight is None:
        return loss.mean()
    w = weight.to(logits.device)[targets]
    return (loss * w).sum() / w.sum().clamp(min=1e-12)


@register_loss("cross_entropy")
def _cross_entropy(spec: HyperSpec, class_counts: torch.Tensor) -> Loss:
    def loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return functional.cross_entropy(
            logits.float(), targets, label_smoothing=spec.label_smoothing
        )

    return loss


@register_loss("weighted_cross_entropy")
def _weighted_cross_entropy(spec: HyperSpec, class_counts: torch.Tensor) -> Loss:
    weights = balanced_weights(class_counts)

    def loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return functional.cross_entropy(
            logits.float(),
            targets,
            weight=weights.to(logits.device),
            label_smoothing=spec.label_smoothing,
        )

    return loss


@register_loss("focal")
def _focal(spec: HyperSpec, class_counts: torch.Tensor) -> Loss:
    def loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return focal_loss(logits, targets, gamma=spec.focal_gamma, weight=None)

    return loss
