"""The classify optimizer: built from the spec's ``hyper``, its learning-rate schedule (a
function of the epoch alone), and its state as flat named tensors for an epoch's checkpoint."""

from __future__ import annotations

import math
from typing import Any

import torch

from vigil_shared.schemas.jobs import HyperSpec


def lr_factor(hyper: HyperSpec, epoch: int) -> float:
    """Warm-up, then the schedule; a function of the epoch only, so resuming needs no state."""
    if epoch < hyper.warmup_epochs:
        return (epoch + 1) / (hyper.warmup_epochs + 1)
    t = epoch - hyper.warmup_epochs
    span = max(1, hyper.epochs - hyper.warmup_epochs)
    if hyper.schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * t / span))
    if hyper.schedule == "step":
        return float(0.1 ** (t // max(1, span // 3)))
    return 1.0


def make_optimizer(hyper: HyperSpec, groups: list[dict[str, Any]]) -> torch.optim.Optimizer:
    if hyper.optimizer == "sgd":
        return torch.optim.SGD(
            groups, lr=hyper.lr, momentum=hyper.momentum, weight_decay=hyper.weight_decay
        )
    if hyper.optimizer == "adam":
        return torch.optim.Adam(groups, lr=hyper.lr, weight_decay=hyper.weight_decay)
    return torch.optim.AdamW(groups, lr=hyper.lr, weight_decay=hyper.weight_decay)


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], int]:
    tensors: dict[str, torch.Tensor] = {}
    state = optimizer.state_dict()["state"]
    for index, entry in state.items():
        for name, value in entry.items():
            tensors[f"optim.{index}.{name}"] = torch.as_tensor(value)
    return tensors, len(state)


def restore_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]) -> None:
    current = optimizer.state_dict()
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": current["param_groups"]})
