"""Decode + score throughput in one process, no Kafka: what one inference process's device can do.

JPEG frames (Ped2's 360x240 test frames when the dataset is beside the checkout, else synthetic
frames of a moving square encoded by torchvision at the same size) are decoded a batch at a
time as the worker does (``decode_many``: nvJPEG on CUDA) and scored by the model the worker
would hold, round-robin over ``--cameras`` cameras:

- ``warmup``: the built-in warm-up model (Lite0 embedding, per-camera kNN bank; fp16 autocast on
  CUDA); each camera's first frames fill its bank and are excluded from the count.
- ``one_class``: the detector's inferencer (patch kNN + motion, ``--motion`` flow method). Its
  bank and projection are random of the default spec's sizes: the work per frame is the fitted
  model's, its scores mean nothing (no Ped2 fit needs S3 here), so only frames/s is reported.

    python -m bench.decode_score --model warmup --device cuda --json /tmp/decode-warmup.json
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import torch
from torchvision.io import encode_jpeg

from bench.report import emit
from vigil_inference.models import FrameScorer
from vigil_inference.service import warmup_model
from vigil_inference.settings import InferenceSettings
from vigil_shared.datasets import DatasetRef
from vigil_shared.schemas.one_class import OneClassSpec
from vigil_shared.settings import default_datasets_dir
from vigil_shared.vision.backbones import LITE0_PREPROCESSING
from vigil_shared.vision.one_class_model import (
    APPEARANCE_BANK,
    APPEARANCE_NORM,
    MOTION_NORM,
    PROJECTION_COMPONENTS,
    PROJECTION_MEAN,
    SCENE_BANK,
    OneClassScorer,
    build_extractor,
    calibrated_tails,
)
from vigil_shared.vision.patches import LITE0_STAGE_CHANNELS
from vigil_shared.vision.preprocess import decode_many
from vigil_shared.vision.tail_scores import fit_tail


def jpeg_frames(limit: int) -> tuple[list[bytes], str]:
    paths = sorted((default_datasets_dir() / "ucsd-ped2" / "test_frames").glob("Test*/*.jpg"))
    if paths:
        return [p.read_bytes() for p in paths[:limit]], "ucsd-ped2 test frames (360x240)"
    frames = []
    generator = torch.Generator().manual_seed(0)
    background = (torch.rand((1, 240, 360), generator=generator) * 120 + 60).to(torch.uint8)
    for step in range(limit):
        image = background.expand(3, -1, -1).clone()
        x = (20 + 4 * step) % 300
        image[:, 100:140, x : x + 40] = 230
        frames.append(bytes(encode_jpeg(image, quality=90).numpy()))
    return frames, "synthetic moving square (360x240, torchvision encode_jpeg)"


def one_class_model(device: str, motion: str) -> OneClassScorer:
    spec = OneClassSpec.model_validate(
        {"name": "bench", "dataset": DatasetRef(name="bench", version="0" * 64)}
    )
    assert spec.motion is not None
    spec = spec.model_copy(update={"motion": spec.motion.model_copy(update={"method": motion})})
    dim = spec.appearance.whiten_dim
    generator = torch.Generator().manual_seed(0)
    raw_dim = sum(LITE0_STAGE_CHANNELS[s] for s in spec.appearance.stages)
    tensors = {
        APPEARANCE_BANK: torch.randn((spec.appearance.bank_size, dim), generator=generator),
        APPEARANCE_NORM: torch.tensor([0.0, 1.0]),
        MOTION_NORM: torch.tensor([0.0, 1.0]),
        SCENE_BANK: torch.randn((1024, dim), generator=generator),  # a site's normal frames
        PROJECTION_MEAN: torch.zeros(raw_dim),
        PROJECTION_COMPONENTS: torch.randn((raw_dim, dim), generator=generator),
    }
    # Made-up normal ranges: the cost of the default (calibrated) fusion, not its scores.
    for name in calibrated_tails(spec):
        tensors[name] = fit_tail(torch.rand(200, generator=generator), two_sided=True)
    prep = LITE0_PREPROCESSING.model_copy(update={"image_size": spec.image_size})
    return OneClassScorer(
        spec=spec,
        preprocessing=prep,
        threshold=1.0,
        extractor=build_extractor(spec, tensors, device, expect_sha256=None),
        tensors=tensors,
        device=device,
    )


def measure(model: FrameScorer, frames: list[bytes], args: argparse.Namespace) -> dict[str, Any]:
    """Frames/s over ``--rounds`` passes of the frames, after one untimed pass (warm-up banks,
    kernel selection); the device is synchronised before the clock stops."""
    ids = [f"cam{i % args.cameras}" for i in range(len(frames))]

    def one_pass() -> int:
        done = 0
        for start in range(0, len(frames), args.batch_size):
            images = decode_many(frames[start : start + args.batch_size], args.device)
            tensors = [image for image in images if isinstance(image, torch.Tensor)]
            model.score_frames(ids[start : start + len(tensors)], tensors)
            done += len(tensors)
        return done

    one_pass()
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    started = time.perf_counter()
    scored = sum(one_pass() for _ in range(args.rounds))
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    return {"frames": scored, "seconds": round(seconds, 3), "frames_per_s": scored / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("warmup", "one_class"), default="warmup")
    parser.add_argument(
        "--motion", choices=("farneback", "lucas_kanade", "dis"), default="farneback"
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--cameras", type=int, default=50)
    parser.add_argument("--image-size", type=int, default=160, help="the warm-up model's")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    frames, source = jpeg_frames(args.frames)
    if args.model == "warmup":
        os.environ["VIGIL_INFERENCE_WARMUP_IMAGE_SIZE"] = str(args.image_size)
        model: FrameScorer = warmup_model(
            InferenceSettings(), args.device, max_batch=min(args.batch_size, 64)
        )
    else:
        model = one_class_model(args.device, args.motion)
    report = {
        "model": args.model,
        "motion": args.motion if args.model == "one_class" else None,
        "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
        "torch": torch.__version__,
        "frames_source": source,
        "batch_size": args.batch_size,
        "cameras": args.cameras,
        "load_average": os.getloadavg()[0],
        **measure(model, frames, args),
    }
    emit(report, args.json)


if __name__ == "__main__":
    main()
