"""Where a one_class frame's time goes: each stage of the scoring path alone, per frame, by batch
size and torch threads, in one process (no Kafka).

The stages are those of ``OneClassScorer.score_frames`` on the model of ``bench.decode_score``
(the default spec's sizes, a random bank): JPEG decode, the patch backbone's blocks
(channels-last, ``CPU_CHUNK`` frames a pass on a CPU) beside the same blocks in the default
layout over the whole batch (what it did before), the patch kNN beside its previous form
(``topk`` over one product of the whole batch), each flow method, and the whole
``score_frames``. Same frames, same run; the machine's load is recorded.

On CUDA (``--device cuda``, run by ``bench/gpu.sh``) the stages are the device's: nvJPEG
decode, the backbone as the extractor runs it, the kNN with its float16 bank, and Farneback in
torch as a stream runs it: each frame's pyramid once (``flow_farneback_expand``), then its flow
against the frame before (``flow_farneback``); their sum is a frame's motion. The CPU-only
comparisons (previous forms, DIS) are left out there, and the device is synchronised around
every timing.

    python -m bench.one_class_stages --json bench/results/one-class-cpu-profile.json
    python -m bench.one_class_stages --device cuda --batch-sizes 64,256 --threads 1
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from bench.decode_score import jpeg_frames, one_class_model
from bench.report import emit
from vigil_shared.vision.device import set_cpu_threads
from vigil_shared.vision.efficientnet_lite import EfficientNetLite0
from vigil_shared.vision.motion_stream import gray_frames
from vigil_shared.vision.one_class_model import APPEARANCE_BANK, knn_distance
from vigil_shared.vision.patches import CPU_CHUNK
from vigil_shared.vision.preprocess import decode_many, to_batch


def per_frame_ms(work: Callable[[], object], frames: int, rounds: int) -> float:
    """Milliseconds per frame of ``work`` (one batch of ``frames``), after one untimed call;
    a CUDA device's queue is drained before the clock starts and before it stops."""
    work()
    synchronize()
    started = time.perf_counter()
    for _ in range(rounds):
        work()
    synchronize()
    return round((time.perf_counter() - started) * 1000 / (rounds * frames), 3)


def synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def previous_knn(queries: torch.Tensor, bank: torch.Tensor) -> torch.Tensor:
    """The kNN before the CPU chunking and the row minimum: one product, then ``topk``."""
    squared = queries.pow(2).sum(1, keepdim=True) - 2.0 * queries @ bank.T + bank.pow(2).sum(1)
    return squared.topk(1, dim=1, largest=False).values.clamp_min_(0).sqrt_().mean(dim=1)


def trunk(
    backbone: EfficientNetLite0, last_block: int, batch: torch.Tensor, *, chunk: int
) -> list[torch.Tensor]:
    """The backbone's blocks up to ``last_block``, ``chunk`` frames a pass, the input in the
    memory layout of the weights."""
    channels_last = backbone._conv_stem.weight.is_contiguous(memory_format=torch.channels_last)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    outs = []
    for part in torch.split(batch, chunk):
        out = backbone.act(
            backbone._bn0(backbone._conv_stem(part.contiguous(memory_format=layout)))
        )
        for index, block in enumerate(backbone._blocks):
            out = block(out)
            if index == last_block:
                break
        outs.append(out)
    return outs


def stages(batch_size: int, jpegs: list[bytes], rounds: int) -> dict[str, float]:
    """The CPU's stages (the module docstring)."""
    model = one_class_model("cpu", "farneback")
    extractor, farneback = model.extractor, model.motion
    lucas_kanade = one_class_model("cpu", "lucas_kanade").motion
    dis = one_class_model("cpu", "dis").motion
    assert extractor is not None and farneback is not None
    assert lucas_kanade is not None and dis is not None
    chunk = jpegs[:batch_size]
    images = [image for image in decode_many(chunk, "cpu") if isinstance(image, torch.Tensor)]
    cameras = [f"cam{i % 4}" for i in range(len(images))]
    batch = to_batch(images, model.preprocessing)
    n, grid = len(images), (15, 23)
    last_block = extractor.backbone.stage_ends[extractor.last]
    current = copy.deepcopy(extractor.backbone).to(memory_format=torch.channels_last)
    previous = copy.deepcopy(extractor.backbone).to(memory_format=torch.contiguous_format)
    with torch.inference_mode():
        features = extractor(batch)
        queries = features.permute(0, 2, 3, 1).reshape(-1, features.shape[1])
        bank = model.tensors[APPEARANCE_BANK]
        grays = gray_frames(images, farneback.params, "cpu")
        before = grays.roll(1, 0)
        return {
            "decode": per_frame_ms(lambda: decode_many(chunk, "cpu"), n, rounds),
            "backbone": per_frame_ms(
                lambda: trunk(current, last_block, batch, chunk=CPU_CHUNK), n, rounds
            ),
            "backbone_previous": per_frame_ms(
                lambda: trunk(previous, last_block, batch, chunk=n), n, rounds
            ),
            "knn": per_frame_ms(lambda: knn_distance(queries, bank, 1), n, rounds),
            "knn_previous": per_frame_ms(lambda: previous_knn(queries, bank), n, rounds),
            "flow_farneback": per_frame_ms(
                lambda: farneback._cell_motion((before,), (grays,), grid), n, rounds
            ),
            "flow_lucas_kanade": per_frame_ms(
                lambda: lucas_kanade._cell_motion((before,), (grays,), grid), n, rounds
            ),
            "flow_dis": per_frame_ms(
                lambda: dis._cell_motion((before,), (grays,), grid), n, rounds
            ),
            "score_frames": per_frame_ms(lambda: model.score_frames(cameras, images), n, rounds),
        }


def device_stages(
    device: str, batch_size: int, jpegs: list[bytes], rounds: int
) -> dict[str, float]:
    """A CUDA device's stages (the module docstring)."""
    model = one_class_model(device, "farneback")
    extractor, motion = model.extractor, model.motion
    assert extractor is not None and motion is not None
    chunk = jpegs[:batch_size]
    images = [image for image in decode_many(chunk, device) if isinstance(image, torch.Tensor)]
    cameras = [f"cam{i % 50}" for i in range(len(images))]
    n, grid = len(images), (15, 23)
    with torch.inference_mode():
        batch = to_batch(images, model.preprocessing)
        features = extractor(batch)
        queries = features.permute(0, 2, 3, 1).reshape(-1, features.shape[1])
        bank = model.tensors[APPEARANCE_BANK]
        grays = gray_frames(images, motion.params, device)
        inputs = motion.flow_inputs(grays)
        before = tuple(t.roll(1, 0) for t in inputs)
        return {
            "decode": per_frame_ms(lambda: decode_many(chunk, device), n, rounds),
            "backbone": per_frame_ms(lambda: extractor(batch), n, rounds),
            "knn": per_frame_ms(
                lambda: knn_distance(queries, bank, 1, half=model.half_bank), n, rounds
            ),
            "flow_farneback_expand": per_frame_ms(lambda: motion.flow_inputs(grays), n, rounds),
            "flow_farneback": per_frame_ms(
                lambda: motion._cell_motion(before, inputs, grid), n, rounds
            ),
            "score_frames": per_frame_ms(lambda: model.score_frames(cameras, images), n, rounds),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch-sizes", default="1,4,16")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    sizes = [int(b) for b in args.batch_sizes.split(",")]
    jpegs, source = jpeg_frames(max(64, *sizes))
    load_before = os.getloadavg()[0]
    rows: list[dict[str, Any]] = []
    for threads in (int(t) for t in args.threads.split(",")):
        set_cpu_threads(threads)
        for size in sizes:
            row = {"device": args.device, "threads": threads, "batch_size": size}
            if args.device == "cpu":
                rows.append(row | stages(size, jpegs, args.rounds))
            else:
                rows.append(row | device_stages(args.device, size, jpegs, args.rounds))
    emit(
        {
            "machine": {
                "platform": platform.platform(),
                "processor": platform.processor() or platform.machine(),
                "cpus": len(os.sched_getaffinity(0)),
                "torch": torch.__version__,
                "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
                "load_average_before": load_before,
                "load_average_after": os.getloadavg()[0],
            },
            "frames": source,
            "unit": "ms per frame",
            "rows": rows,
        },
        args.json,
    )


if __name__ == "__main__":
    main()
