"""What trains and how fast: frozen stages, discriminative learning rates, gradual unfreezing.

Every parameter is always in the optimizer (one group per stage, plus the head); a frozen one
simply has no gradient, which the optimizers skip. Gradual unfreezing then only flips
``requires_grad`` at epoch boundaries and never rebuilds the optimizer, so a resumed job's
optimizer state lines up with the parameters.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from vigil_shared.schemas.jobs import FreezeSpec, StructureSpec
from vigil_shared.vision.catalog import ClassifierNet


def trainable_stages(freeze: FreezeSpec, *, n_stages: int, epoch: int) -> int:
    """How many backbone stages (counted from the top) train during ``epoch`` (0-based)."""
    if freeze.mode == "none":
        return n_stages
    base = 0 if freeze.mode == "all_but_head" else freeze.last_n_stages
    if freeze.unfreeze_every is not None:
        base += epoch // freeze.unfreeze_every
    return min(base, n_stages)


def apply_freeze(net: ClassifierNet, freeze: FreezeSpec, *, epoch: int) -> int:
    """Set ``requires_grad`` for ``epoch`` and keep frozen stages' batch-norm statistics fixed
    (call after ``net.train()``). Returns the number of trainable stages."""
    stages = net.stage_modules()
    n_train = trainable_stages(freeze, n_stages=len(stages), epoch=epoch)
    for index, modules in enumerate(stages):
        trains = index >= len(stages) - n_train
        for module in modules:
            module.requires_grad_(trains)
            if not trains:
                module.eval()
    net.head.requires_grad_(True)
    return n_train


def param_groups(net: ClassifierNet, spec: StructureSpec, *, lr: float) -> list[dict[str, Any]]:
    """The head at ``lr``; stage k below it (k = 1 for the top stage) at ``lr * lr_decay**k``.

    Groups carry ``base_lr`` so the schedule scales each one without losing the ratios.
    """
    groups: list[dict[str, Any]] = [
        {"params": list(net.head.parameters()), "lr": lr, "base_lr": lr, "name": "head"}
    ]
    stages = net.stage_modules()
    for depth, modules in enumerate(reversed(stages), start=1):
        params = [p for m in modules for p in m.parameters()]
        if params:
            stage_lr = lr * spec.lr_decay**depth
            name = f"stage{len(stages) - depth}"
            groups.append({"params": params, "lr": stage_lr, "base_lr": stage_lr, "name": name})
    return groups


def count_trainable(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
