"""A one_class model served on cameras at another frame rate than its fit's footage.

Fits the default spec on Ped2 training clips stored with capture times at ``--fit-fps`` (10:
every frame; 5: every second frame), then scores Ped2's test clips and unseen normal training
clips at each ``--live`` rate: frames taken at that rate, scored with their capture times (the
model measures each camera's rate, ``vigil_shared.vision.motion_pace``) or without them (as
before: one frame a step, whatever the rate). Event figures through the worker's lifecycle at
the live rate; nothing is chosen on the test clips.

    set -a; . .stack/env; set +a
    python -m bench.ped2_frame_rate --fit-fps 10 --live 10,5 --json bench/results/x.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from bench.footage import Footage, opens_slot
from bench.ped2_events import normal_clips, test_clips
from bench.ped2_one_class import (
    RecordingModel,
    fit_and_score,
    frame_model,
    score_clip,
    training_dataset,
)
from bench.report import run_and_emit
from vigil_shared.schemas.one_class import OneClassSpec
from vigil_shared.settings import S3Settings
from vigil_shared.vision.event_metrics import evaluate


def run(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(args.threads)
    footage = Footage.ped2()
    train = tuple(args.train_clips.split(","))
    dataset = training_dataset(footage, train, S3Settings(), fps=args.fit_fps)
    ref = {"name": dataset.name, "version": dataset.version}
    overrides = json.loads(args.spec) if args.spec else {}
    spec = OneClassSpec.model_validate({"name": "frame-rate", **overrides, "dataset": ref})
    fit, fit_s, _, _ = fit_and_score(args, footage.root, spec, dataset, ())
    model = frame_model(fit, args.device)
    assert isinstance(model, RecordingModel)
    threshold = model.manifest.threshold
    sets = {
        "ped2_test": test_clips(footage, args.test_clips.split(","), None),
        "unseen_normal": normal_clips(footage, args.normal_clips.split(","), None),
    }
    report: dict[str, Any] = {
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs, torch threads {args.threads}",
        "train_clips": list(train),
        "fit_fps": fit.metrics.get("fps"),
        "fit_s": round(fit_s, 1),
        "threshold": threshold,
        "rows": [],
    }
    for live in (float(x) for x in args.live.split(",")):
        for timed in (False, True) if live != args.fit_fps else (True,):
            row: dict[str, Any] = {"live_fps": live, "capture_times": timed}
            for name, clips in sets.items():
                scores, labels = {}, {}
                for clip_name, clip in clips.items():
                    kept = [
                        i
                        for i in range(len(clip.paths))
                        if opens_slot(i, fps=footage.fps, rate=live)
                    ]
                    result = score_clip(
                        model,
                        [clip.paths[i] for i in kept],
                        args.batch_size,
                        times=[clip.times[i] for i in kept] if timed else None,
                    )
                    scores[clip_name] = torch.tensor(result.scores).double()
                    labels[clip_name] = clip.abnormal[kept]
                figures = evaluate(scores, labels, threshold=threshold, fps=live)
                frames = sum(len(s) for s in scores.values())
                flagged = sum(int((s >= threshold).sum()) for s in scores.values())
                row[name] = {k: v for k, v in figures.items() if k != "clips"} | {
                    "frames_at_or_above_threshold": flagged / frames
                }
            print(json.dumps(row), flush=True)
            report["rows"].append(row)
    return report


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fit-fps", type=float, default=10.0, help="10 or 5 (Ped2 is 10)")
    parser.add_argument("--live", default="10,5", help="camera rates to score at, comma-separated")
    parser.add_argument("--train-clips", default=",".join(f"Train{i:03d}" for i in range(1, 9)))
    parser.add_argument("--normal-clips", default=",".join(f"Train{i:03d}" for i in range(9, 17)))
    parser.add_argument("--test-clips", default=",".join(f"Test{i:03d}" for i in range(1, 13)))
    parser.add_argument("--spec", help="JSON overrides of the default spec")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=max(1, min(2, os.cpu_count() or 1)))
    parser.add_argument("--verbose", action="store_true", help="print fit progress")
    parser.add_argument("--json", type=Path, help="also write the report here")
    return run_and_emit(run, parser.parse_args(argv))


if __name__ == "__main__":
    main()
