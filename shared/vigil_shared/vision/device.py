"""Which torch device a service computes on, chosen the same by the trainer and inference."""

from __future__ import annotations

import torch


def pick_device(requested: str) -> str:
    """``auto``: CUDA when a GPU is visible, else the CPU; any other value as requested."""
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested
