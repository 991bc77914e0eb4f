"""Training throughput: images/s of forward + backward + optimizer step, Vigil's loop against
a naive baseline measured in the same run.

    python -m bench.train_throughput --size 128 --seconds 8 --json bench/results/train-cpu.json
    python -m bench.train_throughput --device cuda --size 224

Every variant trains the same network (the catalog's EfficientNet-Lite0 or ResNet-18 with a
two-class head, AdamW) on Ped2 frames:

- ``naive``: each step decodes its JPEGs with PIL and resizes them, one image per step, fp32
  NCHW (what a first script does);
- ``naive-batched``: the same PIL decode per step, in batches;
- ``cached``: frames decoded and resized once into a uint8 tensor (what the classify engine
  keeps in memory), batches sliced from it, fp32 NCHW;
- ``cached+augment``: plus the classify engine's default augmentation (random resized crop and
  flip, per image), i.e. the engine's own CPU path;
- ``cached+cl``: ``cached`` plus channels-last memory format;
- ``cached+bf16``: plus bf16 autocast (AMX on recent Xeons, tensor cores on CUDA);
- ``cached+cl+bf16``: both.

Each variant runs a few warm-up steps; then the variants take turns (``--rounds``), each
timing as many steps as fit in its share of ``--seconds``, so a shared machine whose load
changes during the run slows every variant alike.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from bench.ped2_data import Ped2MissingError, load_ped2, ped2_root
from vigil_shared.schemas.jobs import AugmentSpec
from vigil_shared.vision.catalog import architecture, build_classifier
from vigil_trainer.classify.augment import augment_batch, build_train_transform


@dataclass(frozen=True)
class Variant:
    name: str
    batch_size: int
    decode_per_step: bool
    channels_last: bool
    bf16: bool
    augment: bool = False


@dataclass(frozen=True)
class Result:
    arch: str
    variant: str
    batch_size: int
    steps: int
    images: int
    seconds: float
    images_per_s: float


def variants(batch_size: int) -> list[Variant]:
    return [
        Variant("naive", 1, True, False, False),
        Variant("naive-batched", batch_size, True, False, False),
        Variant("cached", batch_size, False, False, False),
        Variant("cached+augment", batch_size, False, False, False, augment=True),
        Variant("cached+cl", batch_size, False, True, False),
        Variant("cached+bf16", batch_size, False, False, True),
        Variant("cached+cl+bf16", batch_size, False, True, True),
    ]


def machine(device: str) -> dict[str, object]:
    cpu = platform.processor() or "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name() if device.startswith("cuda") else "cpu",
        "load_average": os.getloadavg()[0],
    }


def jpeg_files(limit: int) -> list[bytes]:
    paths = sorted((ped2_root() / "test_frames").glob("Test*/*.jpg"))[:limit]
    return [p.read_bytes() for p in paths]


def pil_batch(jpegs: list[bytes], size: int) -> torch.Tensor:
    """The naive input path: decode, convert, resize and convert to a tensor at every step."""
    arrays = [
        np.asarray(
            Image.open(io.BytesIO(data))
            .convert("RGB")
            .resize((size, size), Image.Resampling.BILINEAR)
        )
        for data in jpegs
    ]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


def batches(
    variant: Variant, *, cached: torch.Tensor, jpegs: list[bytes], size: int
) -> Iterator[torch.Tensor]:
    """Endless uint8 (B, 3, S, S) batches, from the cache or decoded on the spot."""
    start = 0
    n = len(jpegs) if variant.decode_per_step else len(cached)
    while True:
        index = [(start + i) % n for i in range(variant.batch_size)]
        start += variant.batch_size
        if variant.decode_per_step:
            yield pil_batch([jpegs[i] for i in index], size)
        else:
            yield cached[index]


def make_step(
    net: nn.Module, variant: Variant, *, device: str, arch: str, size: int
) -> Callable[[torch.Tensor], None]:
    prep = architecture(arch).preprocessing
    mean = torch.tensor(prep.mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(prep.std, device=device).view(1, 3, 1, 1)
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-4)
    loss_fn = nn.CrossEntropyLoss()
    device_type = "cuda" if device.startswith("cuda") else "cpu"

    transform = build_train_transform(AugmentSpec(), image_size=size)

    def step(images: torch.Tensor) -> None:
        augmented = variant.augment
        floats = augment_batch(transform, images) if augmented else images.float().div_(255.0)
        batch = (floats.to(device, non_blocking=True) - mean) / std
        if variant.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        targets = torch.arange(len(batch), device=device) % 2
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=variant.bf16):
            logits = net(batch)
        loss = loss_fn(logits.float(), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


@dataclass
class Runner:
    variant: Variant
    step: Callable[[torch.Tensor], None]
    source: Iterator[torch.Tensor]
    steps: int = 0
    seconds: float = 0.0


def prepare(
    variant: Variant, *, arch: str, device: str, size: int, cached: torch.Tensor, jpegs: list[bytes]
) -> Runner:
    torch.manual_seed(0)
    net = build_classifier(arch, n_classes=2).to(device).train()
    if variant.channels_last:
        net = net.to(memory_format=torch.channels_last)
    step = make_step(net, variant, device=device, arch=arch, size=size)
    source = batches(variant, cached=cached, jpegs=jpegs, size=size)
    for _ in range(2):  # warm-up: allocator, oneDNN/cuDNN kernel choice
        step(next(source))
    synchronize(device)
    return Runner(variant, step, source)


def timed(runner: Runner, *, device: str, seconds: float) -> None:
    began, steps = time.perf_counter(), 0
    while time.perf_counter() - began < seconds or steps < 2:
        runner.step(next(runner.source))
        steps += 1
    synchronize(device)
    runner.steps += steps
    runner.seconds += time.perf_counter() - began


def result(arch: str, runner: Runner) -> Result:
    images = runner.steps * runner.variant.batch_size
    return Result(
        arch,
        runner.variant.name,
        runner.variant.batch_size,
        runner.steps,
        images,
        round(runner.seconds, 3),
        round(images / runner.seconds, 2),
    )


def run(
    *,
    archs: list[str],
    device: str,
    size: int,
    batch_size: int,
    seconds: float,
    rounds: int,
    names: list[str],
) -> list[Result]:
    frames = load_ped2(size=size)
    cached = torch.from_numpy(frames.rgb()[:512].copy())
    jpegs = jpeg_files(512)
    results = []
    chosen = [v for v in variants(batch_size) if not names or v.name in names]
    for arch in archs:
        runners = [
            prepare(v, arch=arch, device=device, size=size, cached=cached, jpegs=jpegs)
            for v in chosen
        ]
        for _ in range(rounds):
            for runner in runners:
                timed(runner, device=device, seconds=seconds / rounds)
        for runner in runners:
            results.append(result(arch, runner))
            print(json.dumps(asdict(results[-1])), flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", action="append", choices=["efficientnet_lite0", "resnet18"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=8.0, help="timed per variant")
    parser.add_argument("--rounds", type=int, default=2, help="turns each variant takes")
    parser.add_argument("--variant", action="append", default=[], help="only these variants")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("--device cuda asked, but torch sees no CUDA device")
    info = machine(args.device)
    print(json.dumps(info), flush=True)
    try:
        results = run(
            archs=args.arch or ["efficientnet_lite0", "resnet18"],
            device=args.device,
            size=args.size,
            batch_size=args.batch_size,
            seconds=args.seconds,
            rounds=args.rounds,
            names=args.variant,
        )
    except Ped2MissingError as exc:
        raise SystemExit(str(exc)) from exc
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {"machine": info, "size": args.size, "results": [asdict(r) for r in results]}
        args.json.write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
