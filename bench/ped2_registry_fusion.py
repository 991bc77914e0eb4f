"""UCSD Ped2: a ``registry_models`` score ensemble of two one_class models, against each member.

Members (``--pair``): ``baseline``, the one_class model (appearance + motion) and the plain-kNN
baseline (appearance only, no motion, no whitening) fitted on the same 3 training clips;
``clips``, the one_class model fitted on two different sets of 3 training clips. Both are
fitted through the real path (``bench.ped2_one_class``). The fusion then runs the job's own
steps on a labeled dataset written to S3 (test clips labeled ``abnormal`` inside the ground
truth's ranges, plus one unused training clip the split keeps out; group = clip, sequence =
frame): ``held_out`` (the test clips are the validation groups), ``score_held_out`` (each clip
in order from its first frame), ``fit_ensemble`` (normalisations on the held-out normal frames,
best-F1 threshold, figures). The registry row and the member pins are covered by tests/integration.

    set -a; . .stack/env; set +a
    python -m bench.ped2_registry_fusion --json bench/results/ped2-registry-fusion-cpu.json
    python -m bench.ped2_registry_fusion --pair clips \
        --json bench/results/ped2-registry-fusion-clips-cpu.json
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from bench.footage import Footage
from bench.ped2_one_class import (
    QUICK_TRAIN,
    baseline_of,
    clip_images,
    frame_model,
    labeled_test_images,
    ped2_root,
)
from bench.ped2_one_class import training_dataset as train_clips
from bench.report import emit
from vigil_shared.datasets import DatasetManifest, DatasetRef, write_dataset
from vigil_shared.schemas.jobs import ClassifySpec, ValidationSplit
from vigil_shared.schemas.one_class import OneClassSpec
from vigil_shared.settings import S3Settings
from vigil_shared.storage import make_s3_client
from vigil_shared.vision.scoring import FrameModel
from vigil_trainer.classify.held_out import held_out, score_held_out
from vigil_trainer.classify.registry_fusion import fit_ensemble
from vigil_trainer.one_class import fit_one_class

TEST_CLIPS = ("Test001", "Test002", "Test004")
"""Clips with normal and abnormal frames (Test003 has 4 normal frames of 150)."""
SPARE_CLIP = "Train016"
OTHER_TRAIN = ("Train004", "Train005", "Train006")
FAST = {"image_size": 160, "appearance": {"frame_stride": 4, "bank_size": 512}}


def fusion_dataset(root: Path, s3_settings: S3Settings) -> DatasetManifest:
    spare = [replace(i, label="normal") for i in clip_images(Footage.ped2(), SPARE_CLIP)]
    images = spare + [image for clip in TEST_CLIPS for image in labeled_test_images(root, clip)]
    return write_dataset(
        make_s3_client(s3_settings),
        s3_settings.datasets_bucket,
        name="ped2-fusion",
        images=images,
        source="import",
        description="UCSD Ped2 labeled test clips and one training clip (ped2_registry_fusion)",
    )


def fitted_member(
    args: argparse.Namespace, spec: OneClassSpec, dataset: DatasetManifest, s3_settings: S3Settings
) -> tuple[FrameModel, float]:
    """A member fitted on the training clips, loaded as inference loads it; and the fit time."""
    started = time.perf_counter()
    fit = fit_one_class(
        s3=make_s3_client(s3_settings),
        bucket=s3_settings.datasets_bucket,
        spec=spec,
        dataset=dataset,
        device=args.device,
        batch_size=args.batch_size,
        progress=lambda _: None,
        should_stop=lambda: False,
    )
    return frame_model(fit, args.device), time.perf_counter() - started


def member_specs(pair: str) -> list[tuple[str, tuple[str, ...], OneClassSpec]]:
    """``baseline``: the one_class model and the plain kNN, on the same clips; ``clips``: the
    one_class model fitted on two different sets of training clips."""
    placeholder = DatasetRef(name="ped2-train")
    one_class = OneClassSpec.model_validate({"name": "ped2", "dataset": placeholder} | FAST)
    if pair == "clips":
        return [
            ("one_class_train001-003", QUICK_TRAIN, one_class),
            ("one_class_train004-006", OTHER_TRAIN, one_class),
        ]
    return [
        ("one_class", QUICK_TRAIN, one_class),
        ("baseline", QUICK_TRAIN, baseline_of(one_class)),
    ]


def run(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(args.threads)
    root = ped2_root()
    s3_settings = S3Settings()
    members: dict[str, FrameModel] = {}
    fit_s: dict[str, float] = {}
    for name, clips, member in member_specs(args.pair):
        train = train_clips(Footage.ped2(), clips, s3_settings)
        ref = DatasetRef(name=train.name, version=train.version)
        member = member.model_copy(update={"dataset": ref})
        members[name], fit_s[name] = fitted_member(args, member, train, s3_settings)
    dataset = fusion_dataset(root, s3_settings)
    spec = ClassifySpec(
        name="ped2-fusion",
        dataset=DatasetRef(name=dataset.name, version=dataset.version),
        validation=ValidationSplit(groups=TEST_CLIPS),
    )
    held = held_out(dataset, spec)
    started = time.perf_counter()
    scores = score_held_out(
        members,
        held,
        s3=make_s3_client(s3_settings),
        bucket=s3_settings.datasets_bucket,
        progress=lambda p: None,
        should_stop=lambda: False,
    )
    scored_s = time.perf_counter() - started
    fitted = fit_ensemble(list(scores.values()), held, method="score")
    return {
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs, torch threads {args.threads}",
        "device": args.device,
        "pair": args.pair,
        "held_out_clips": list(held.groups),
        "held_out_frames": len(held.items),
        "held_out_abnormal": int(held.positives.sum()),
        "member_train_clips": {name: list(clips) for name, clips, _ in member_specs(args.pair)},
        "member_fit_s": {k: round(v, 1) for k, v in fit_s.items()},
        "fusion_scoring_s": round(scored_s, 1),
        "members": dict(zip(scores, fitted.member_metrics, strict=True)),
        "norms": [{"center": n.center, "scale": n.scale} for n in fitted.fusion.norms],
        "ensemble": fitted.metrics,
        "threshold": fitted.threshold,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=max(1, min(2, os.cpu_count() or 1)))
    parser.add_argument("--pair", choices=("baseline", "clips"), default="baseline")
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args()
    args.verbose = False
    emit(run(args), args.json)


if __name__ == "__main__":
    main()
