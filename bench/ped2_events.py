"""What an operator would see on UCSD Ped2 and on synthetic scenes: frame- and event-level figures.

One run fits, on Ped2's training clips (stored as an S3 dataset, as ``bench.ped2_one_class``
does), the one_class model of the **default spec** (whatever ``OneClassSpec``'s defaults are),
the **previous defaults** (weighted fusion 0.2 / 0.8, threshold at 1% of one held-out fifth's
frames, no cross-fitting; skipped while they are the
defaults) and the **baseline** (a pretrained Lite0 patch kNN: appearance only, no whitening, no
motion), each through the trainer's ``fit_one_class`` and each calibrated by its own fit. Each
model then scores, in order through ``score_frames``, Ped2's test clips and the synthetic
scenes of ``bench.synthetic_scenes`` (built from training clips; SYNTHETIC, see there), and
``vigil_shared.vision.event_metrics`` replays the scores through the worker's event lifecycle
(default ``LifecycleSettings``) at the model's own threshold. Nothing is chosen on the test clips:
the thresholds come from the fits.

    set -a; . .stack/env; set +a
    python -m bench.ped2_events --json bench/results/ped2-events-cpu.json
    python -m bench.ped2_events --quick       # 3 train clips, 2 test clips, 2 scenes, default only
    python -m bench.ped2_events --quick --all-models --kinds empties,fills,moved,covered-dark,\
        covered-blur,far-motion --scene-clips Train004,...,Train016  # scenes of unseen clips
    python -m bench.ped2_events --train-clips Train001,...,Train008 \
        --normal-clips Train009,...,Train016 --scene-clips Train009,...,Train016  # half held out
    python -m bench.ped2_events --fps 5   # every clip at 5 fps, with capture times
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from bench.ped2_one_class import (
    QUICK_TEST,
    QUICK_TRAIN,
    RecordingModel,
    clip_frames,
    fit_and_score,
    frame_model,
    labels_of,
    ped2_root,
    score_clip,
    training_dataset,
)
from bench.report import run_and_emit
from bench.synthetic_scenes import KINDS, build_scenes, training_clips, write_scenes
from vigil_shared.datasets import DatasetManifest, DatasetRef
from vigil_shared.event_lifecycle import LifecycleSettings
from vigil_shared.event_simulation import replay
from vigil_shared.schemas.one_class import OneClassSpec
from vigil_shared.settings import REPO_ROOT, S3Settings
from vigil_shared.vision.event_metrics import CAUSAL_WINDOW, GRACE_S, evaluate
from vigil_trainer.one_class.alarm_rate import AlarmRate

FPS = 10.0
QUICK_KINDS = ("fills", "covered-dark")
NORMAL_FRAMES = 200  # every frame of a Ped2 training clip (120 to 180)
PREDICTED_RATES = (1000.0, 300.0, 100.0)
PREVIOUS_DEFAULTS = {
    "fusion": "weighted",
    "appearance": {"weight": 0.2},
    "motion": {"weight": 0.8},
    "cross_fit_folds": 1,
    "false_alarms_per_hour": None,
}
BASELINE = {"fusion": "weighted", "appearance": {"weight": 1.0, "whiten_dim": 0}, "motion": None}
BASELINE_WHAT = "pretrained Lite0 stride-8+16 patch kNN, coreset bank, no motion, no whitening"

Clips = dict[str, tuple[list[Path], torch.Tensor]]
"""A clip's frame files in order and its per-frame abnormal labels, by clip name."""


def merged(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` applied, nested dicts merged key by key."""
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def specs(
    dataset: DatasetManifest,
    overrides: dict[str, Any],
    *,
    previous: bool,
    baseline: bool,
    variant: dict[str, Any] | None = None,
) -> dict[str, OneClassSpec]:
    """The specs compared, by row name; the previous defaults only while they differ; a
    ``variant`` (overrides of the default) as a row of its own."""
    ref = DatasetRef(name=dataset.name, version=dataset.version)
    base = merged({"name": "ped2", "dataset": ref}, overrides)
    out = {"default": OneClassSpec.model_validate(base)}
    if variant is not None:
        out["variant"] = OneClassSpec.model_validate(merged(base, variant))
    if previous:
        spec = OneClassSpec.model_validate(merged(base, PREVIOUS_DEFAULTS))
        if spec != out["default"]:
            out["previous_defaults"] = spec
    if baseline:
        out["baseline"] = OneClassSpec.model_validate(merged(base, BASELINE))
    return out


def ped2_test_clips(root: Path, names: Sequence[str]) -> Clips:
    clips: Clips = {}
    for name in names:
        paths = clip_frames(root, name)
        clips[name] = (paths, labels_of(root, name, len(paths)))
    return clips


def synthetic_clips(root: Path, train: Sequence[str], kinds: Sequence[str], seed: int) -> Clips:
    """The synthetic scenes built from the ``train`` clips, written as JPEGs under ``.cache``."""
    built = build_scenes(training_clips(root, list(train)), seed=seed)
    scenes = [s for s in built if s.name in kinds]
    out = REPO_ROOT / ".cache" / "ped2-synthetic" / f"seed{seed}-{train[0]}-{len(train)}clips"
    folders = write_scenes(scenes, out, seed=seed)
    return {
        s.name: (sorted(folders[s.name].glob("*.jpg")), torch.from_numpy(s.abnormal))
        for s in scenes
    }


def normal_clips(root: Path, names: Sequence[str], frames: int) -> Clips:
    """Training clips no model was fitted on, as unseen normal footage (first ``frames`` of
    each, JPEG q95 like the test frames, under ``.cache``): where a threshold calibrated on
    held-out clips must keep its false-alarm rate."""
    out = REPO_ROOT / ".cache" / "ped2-unseen-normal"
    clips: Clips = {}
    for name, clip in training_clips(root, list(names)).items():
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        for index, frame in enumerate(clip[:frames]):
            Image.fromarray(frame).save(folder / f"{index + 1:03d}.jpg", quality=95)
        paths = sorted(folder.glob("*.jpg"))[:frames]
        clips[name] = (paths, torch.zeros(len(paths), dtype=torch.bool))
    return clips


def measure(
    args: argparse.Namespace,
    root: Path,
    spec: OneClassSpec,
    dataset: DatasetManifest,
    sets: dict[str, Clips],
) -> dict[str, Any]:
    """Fit ``spec``, score every clip of every set in order, and evaluate each set."""
    fit, fit_s, _, _ = fit_and_score(args, root, spec, dataset, ())
    model = frame_model(fit, args.device)
    assert isinstance(model, RecordingModel)
    threshold = model.manifest.threshold
    row: dict[str, Any] = {
        "spec": fit.spec.model_dump(mode="json", exclude={"dataset", "name"}),
        "fit_s": round(fit_s, 1),
        "threshold": threshold,
        "fit_metrics": fit.metrics,
    }
    for name, clips in sets.items():
        started = time.perf_counter()
        results = {
            clip: score_clip(model, paths, args.batch_size, fps=args.fps)
            for clip, (paths, _) in clips.items()
        }
        scores = {clip: torch.tensor(r.scores).double() for clip, r in results.items()}
        frames = sum(len(s) for s in scores.values())
        labels = {clip: abnormal for clip, (_, abnormal) in clips.items()}
        flagged = sum(int((s >= threshold).sum()) for s in scores.values())
        row[name] = evaluate(scores, labels, threshold=threshold, fps=args.fps or FPS) | {
            "frames_per_s": round(frames / (time.perf_counter() - started), 2),
            "frames_at_or_above_threshold": flagged / frames,
        }
        for clip, report in row[name]["clips"].items():  # what each event would say
            report["event_labels"] = [results[clip].labels[i] for i in report["peaks"]]
        row[name]["event_labels"] = dict(
            Counter(str(label) for r in row[name]["clips"].values() for label in r["event_labels"])
        )
        if name == "unseen_normal":
            row[name]["predicted_vs_measured"] = predicted_vs_measured(
                fit.metrics, scores, threshold, fps=args.fps or FPS
            )
    return row


def predicted_vs_measured(
    metrics: dict[str, float], scores: dict[str, torch.Tensor], threshold: float, *, fps: float
) -> list[dict[str, float]]:
    """False alarms per hour the fit predicted against those measured on normal clips it
    never saw, at the model's threshold and at the thresholds the fit's curve puts at
    ``PREDICTED_RATES`` (a short set of clips can only measure frequent alarms)."""
    rate = AlarmRate.from_metrics(metrics)
    if rate is None:
        return []
    clips = list(scores.values())
    hours = sum(c.numel() for c in clips) / fps / 3600
    out = []
    for at in [*(rate.threshold_for(r) for r in PREDICTED_RATES), threshold]:
        events = sum(
            len(replay(c.tolist(), threshold=at, settings=LifecycleSettings(), fps=fps))
            for c in clips
        )
        low, high = rate.interval(at)
        out.append(
            {
                "threshold": at,
                "predicted_per_hour": rate.per_hour(at),
                "predicted_low": low,
                "predicted_high": high,
                "measured_per_hour": events / hours,
                "measured_events": float(events),
                "hours": hours,
            }
        )
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(args.threads)
    root = ped2_root()
    train = QUICK_TRAIN if args.quick else tuple(f"Train{i:03d}" for i in range(1, 17))
    if args.train_clips:
        train = tuple(args.train_clips.split(","))
    test = QUICK_TEST if args.quick else tuple(f"Test{i:03d}" for i in range(1, 13))
    kinds = args.kinds.split(",") if args.kinds else QUICK_KINDS if args.quick else KINDS
    scene_clips = args.scene_clips.split(",") if args.scene_clips else train
    dataset = training_dataset(root, train, S3Settings(), fps=args.fps)
    sets = {
        "ped2_test": ped2_test_clips(root, test),
        "synthetic": synthetic_clips(root, scene_clips, kinds, args.seed),
    }
    if args.normal_clips:
        sets["unseen_normal"] = normal_clips(root, args.normal_clips.split(","), NORMAL_FRAMES)
    if args.fps is not None:  # a camera at that rate: every n-th frame, with capture times
        step = round(FPS / args.fps)
        sets = {
            name: {c: (paths[::step], abnormal[::step]) for c, (paths, abnormal) in clips.items()}
            for name, clips in sets.items()
        }
    compared = specs(
        dataset,
        json.loads(args.spec) if args.spec else {},
        previous=not args.quick or args.all_models or args.previous,
        baseline=not args.quick or args.all_models,
        variant=json.loads(args.variant) if args.variant else None,
    )
    report: dict[str, Any] = {
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs, torch threads {args.threads}",
        "device": args.device,
        "quick": args.quick,
        "dataset": {"name": dataset.name, "version": dataset.version, "frames": len(dataset.items)},
        "lifecycle": asdict(LifecycleSettings()),
        "fps": args.fps or FPS,
        "capture_times": args.fps is not None,
        "grace_s": GRACE_S,
        "causal_window": CAUSAL_WINDOW,
        "synthetic_seed": args.seed,
        "synthetic_from": list(scene_clips),
        "baseline_is": BASELINE_WHAT,
        "models": {},
    }
    for name, spec in compared.items():
        print(json.dumps({"fitting": name}), flush=True)
        report["models"][name] = measure(args, root, spec, dataset, sets)
    report["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return report


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 train, 2 test clips, 2 scenes")
    parser.add_argument("--all-models", action="store_true", help="quick, but every row")
    parser.add_argument("--previous", action="store_true", help="quick, with previous defaults")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=max(1, min(2, os.cpu_count() or 1)))
    parser.add_argument("--spec", help="JSON overrides of every OneClassSpec compared")
    parser.add_argument(
        "--variant", help="JSON overrides of the default spec, fitted and reported as a row"
    )
    parser.add_argument(
        "--train-clips",
        help="training clips the models are fitted on, comma-separated (default: Train001-003 "
        "quick, all 16 otherwise); the rest can then be --normal-clips and --scene-clips",
    )
    parser.add_argument("--seed", type=int, default=0, help="of the synthetic scenes")
    parser.add_argument(
        "--fps",
        type=float,
        choices=(10.0, 5.0),
        help="footage and cameras at this rate, frames with capture times (default: Ped2's "
        "10 fps, without them, as an uploaded archive)",
    )
    parser.add_argument("--kinds", help=f"synthetic scene kinds, comma-separated ({KINDS})")
    parser.add_argument(
        "--scene-clips",
        help="training clips to build the scenes from, comma-separated (default: the fitted "
        "ones; others give scenes whose normal frames no model saw)",
    )
    parser.add_argument(
        "--normal-clips",
        help=f"training clips no model was fitted on, comma-separated: scored (first "
        f"{NORMAL_FRAMES} frames each) as unseen normal footage, for false alarms",
    )
    parser.add_argument("--json", type=Path, help="also write the report here")
    parser.add_argument("--verbose", action="store_true", help="print fit progress")
    return run_and_emit(run, parser.parse_args(argv))


if __name__ == "__main__":
    main()
