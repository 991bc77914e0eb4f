"""Does a backbone fine-tuned on the site help one_class? Ped2, same run, same clips.

1. A classify job's engine fine-tunes EfficientNet-Lite0, every stage trainable, on labeled Ped2
   frames of the classify benchmark's train part (Train001-012, Test001-006; validation
   Train013-014, Test007-008).
2. one_class models are fitted on the normal training clips Train001-016 twice: on ImageNet
   Lite0, and on the fine-tuned body (``backbone_model_id``: the body travels in the artifact).
3. Both score Test009-Test012, clips neither the classifier nor its validation saw; frame-level
   AUROC pooled over those clips, for the fused model and for the appearance stream alone (the
   stream the backbone changes; motion does not use it).

    python -m bench.ped2_site_backbone --json bench/results/ped2-site-backbone-cpu.json
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path
from typing import Any

import torch

from bench.footage import Footage
from bench.ped2_classify import FULL, base_spec, classify_data
from bench.ped2_data import load_ped2
from bench.ped2_one_class import (
    figures,
    fit_and_score,
    labels_of,
    ped2_root,
    stream,
    training_dataset,
)
from bench.report import emit
from vigil_shared.datasets import DatasetRef
from vigil_shared.schemas.manifests import WeightsProvenance
from vigil_shared.schemas.one_class import OneClassSpec
from vigil_shared.settings import S3Settings
from vigil_shared.storage import sha256_hex
from vigil_shared.vision.backbones import LITE0_PREPROCESSING, Backbone
from vigil_shared.vision.efficientnet_lite import EfficientNetLite0
from vigil_trainer.classify.engine import FitHooks, fit_classifier

TEST = ("Test009", "Test010", "Test011", "Test012")
TRAIN = tuple(f"Train{i:03d}" for i in range(1, 17))


def fine_tuned_backbone(size: int, epochs: int, device: str) -> tuple[Backbone, dict[str, Any]]:
    frames = load_ped2(size=size)
    budget = FULL.__class__(**{**FULL.__dict__, "size": size, "epochs": epochs})
    data, _ = classify_data(frames, budget)
    # The patches come from stages 2 and 4 of 9: the classify default (last 2 stages trainable)
    # would leave them exactly as ImageNet made them, so every stage trains here.
    spec = base_spec(data, budget, structure={"freeze": {"mode": "none"}})
    started = time.perf_counter()
    hooks = FitHooks(on_epoch_end=lambda *_: None, log=lambda level, m: print(f"  {m}", flush=True))
    fit = fit_classifier(spec=spec, data=data, device=device, hooks=hooks)
    body = fit.model.body
    assert isinstance(body, EfficientNetLite0)
    digest = sha256_hex(b"".join(v.numpy().tobytes() for v in body.state_dict().values()))
    provenance = WeightsProvenance(
        name="efficientnet_lite0/site:ped2-bench", source="bench: classify fine-tune", sha256=digest
    )
    report = {
        "size": size,
        "epochs": epochs,
        "seconds": round(time.perf_counter() - started, 1),
        "validation": {k: round(fit.metrics[k], 4) for k in ("auroc", "macro_f1")},
    }
    site = Backbone(module=body.eval(), provenance=provenance, preprocessing=LITE0_PREPROCESSING)
    return site, report


def run(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(args.threads)
    root = ped2_root()
    print("== fine-tune", flush=True)
    backbone, classify = fine_tuned_backbone(args.size, args.epochs, args.device)
    dataset = training_dataset(Footage.ped2(), TRAIN, S3Settings())
    base = {"name": "ped2", "dataset": DatasetRef(name=dataset.name, version=dataset.version)}
    base |= {"image_size": args.size}
    rows: dict[str, Any] = {}
    for name, extra, chosen in (
        ("imagenet", {}, None),
        ("site", {"backbone_model_id": "ped2-bench"}, backbone),
    ):
        print(f"== one_class on {name} features", flush=True)
        spec = OneClassSpec.model_validate(base | extra)
        _, fit_s, results, _ = fit_and_score(args, root, spec, dataset, TEST, backbone=chosen)
        labels = {c: labels_of(root, c, len(r.scores)) for c, r in results.items()}
        scores = {c: torch.tensor(r.scores, dtype=torch.float64) for c, r in results.items()}
        rows[name] = {
            "fit_s": round(fit_s, 1),
            "model": figures(scores, labels),
            "appearance_only": figures(stream(results, "appearance"), labels),
        }
    return {
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs, torch threads {args.threads}",
        "device": args.device,
        "test_clips": TEST,
        "classify": classify,
        "one_class": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=160, help="fine-tune and one_class image size")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=max(1, min(2, os.cpu_count() or 1)))
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    emit(run(args), args.json)


if __name__ == "__main__":
    main()
