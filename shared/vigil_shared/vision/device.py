"""Which torch device a service computes on, chosen the same by the trainer and inference."""

from __future__ import annotations

import torch


def pick_device(requested: str) -> str:
    """``auto``: CUDA when a GPU is visible, else the CPU; any other value as requested."""
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


def set_cpu_threads(threads: int) -> None:
    """Intra-op threads of both libraries a model computes with on a CPU: torch (backbone, kNN)
    and OpenCV (Farneback flow). A worker that scores cameras on several threads runs each one
    single-threaded; OpenCV left at its default would start a pool of its own per call and
    oversubscribe the cores the scoring threads already fill."""
    import cv2  # imported here: only the one_class motion stream needs it loaded

    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
