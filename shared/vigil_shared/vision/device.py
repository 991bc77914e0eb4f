"""Which torch device a service computes on, chosen the same by the trainer and inference."""

from __future__ import annotations

import functools
import os
from concurrent.futures import ThreadPoolExecutor

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


@functools.cache
def helper_pool(purpose: str) -> ThreadPoolExecutor:
    """The process's threads for one kind of work that releases the GIL (OpenCV flow, a torch
    pass), as many as cores, started on first use. Each purpose has a pool of its own, so that
    a task of one purpose may wait on tasks of another without waiting behind itself.

    Spreading a batch's flow pairs over a pool as well was measured and dropped: 6 % more
    frames/s from a backlog, 15 ms more p50 latency at 4 cameras x 5 fps (docs/benchmarks.md)."""
    return ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix=f"vigil-{purpose}")
