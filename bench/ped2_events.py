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
(default ``LifecycleSettings``, or ``--lifecycle``'s, which the fits then calibrate for) at the
model's own threshold. Nothing is chosen on the test clips: the thresholds come from the fits.

Any other camera's labeled footage in Ped2's layout (``bench.footage``) is measured the same
way with ``--footage DIR``: its training recordings fitted, its labeled recordings scored (the
set ``test``), no synthetic scenes (they are drawn on Ped2's geometry).

    set -a; . .stack/env; set +a
    python -m bench.ped2_events --json bench/results/ped2-events-cpu.json
    python -m bench.ped2_events --quick       # 3 train clips, 2 test clips, 2 scenes, default only
    python -m bench.ped2_events --quick --all-models --kinds empties,fills,moved,covered-dark,\
        covered-blur,far-motion --scene-clips Train004,...,Train016  # scenes of unseen clips
    python -m bench.ped2_events --train-clips Train001,...,Train008 \
        --normal-clips Train009,...,Train016 --scene-clips Train009,...,Train016  # half held out
    python -m bench.ped2_events --fps 5   # every clip at 5 fps, with capture times
    python -m bench.ped2_events --footage DIR --train-clips ... --normal-clips ...  # a site
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

from bench.footage import Clip, Footage, FootageError, opens_slot
from bench.ped2_one_class import (
    QUICK_TEST,
    QUICK_TRAIN,
    RecordingModel,
    fit_and_score,
    frame_model,
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

Clips = dict[str, Clip]
"""A set's clips (frame files, capture times, per-frame abnormal labels), by clip name."""


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


def test_clips(footage: Footage, names: Sequence[str], rate: float | None) -> Clips:
    return {name: footage.clip("test", name, rate=rate) for name in names}


def synthetic_clips(
    footage: Footage, train: Sequence[str], kinds: Sequence[str], seed: int, rate: float | None
) -> Clips:
    """The synthetic scenes built from the ``train`` clips, written as JPEGs under ``.cache``
    (Ped2's geometry: its 10 fps, its walkway), taken at ``rate``."""
    built = build_scenes(training_clips(footage.root, list(train)), seed=seed)
    scenes = [s for s in built if s.name in kinds]
    out = REPO_ROOT / ".cache" / "ped2-synthetic" / f"seed{seed}-{train[0]}-{len(train)}clips"
    folders = write_scenes(scenes, out, seed=seed)
    clips = {}
    for scene in scenes:
        paths = sorted(folders[scene.name].glob("*.jpg"))
        kept = [i for i in range(len(paths)) if opens_slot(i, fps=FPS, rate=rate or FPS)]
        clips[scene.name] = Clip(
            [paths[i] for i in kept],
            [i / FPS for i in kept],
            torch.from_numpy(scene.abnormal)[kept],
        )
    return clips


def normal_clips(footage: Footage, names: Sequence[str], rate: float | None) -> Clips:
    """Training clips no model was fitted on, as unseen normal footage: where a threshold
    calibrated on held-out clips must keep its false-alarm rate."""
    return {name: footage.clip("train", name, rate=rate) for name in names}


def measure(
    args: argparse.Namespace,
    footage: Footage,
    spec: OneClassSpec,
    dataset: DatasetManifest,
    sets: dict[str, Clips],
    rate: float | None,
    lifecycle: LifecycleSettings,
) -> dict[str, Any]:
    """Fit ``spec``, score every clip of every set in order (with capture times when taken
    at a ``rate``), and evaluate each set at that rate."""
    fps = rate or footage.fps
    fit, fit_s, _, _ = fit_and_score(args, footage.root, spec, dataset, (), lifecycle=lifecycle)
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
            clip_name: score_clip(
                model, clip.paths, args.batch_size, times=clip.times if rate else None
            )
            for clip_name, clip in clips.items()
        }
        scores = {clip: torch.tensor(r.scores).double() for clip, r in results.items()}
        frames = sum(len(s) for s in scores.values())
        labels = {clip_name: clip.abnormal for clip_name, clip in clips.items()}
        flagged = sum(int((s >= threshold).sum()) for s in scores.values())
        row[name] = evaluate(scores, labels, threshold=threshold, fps=fps, settings=lifecycle) | {
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
                fit.metrics, scores, threshold, fps=fps, lifecycle=lifecycle
            )
    return row


def predicted_vs_measured(
    metrics: dict[str, float],
    scores: dict[str, torch.Tensor],
    threshold: float,
    *,
    fps: float,
    lifecycle: LifecycleSettings,
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
            len(replay(c.tolist(), threshold=at, settings=lifecycle, fps=fps)) for c in clips
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


def lifecycle_of(args: argparse.Namespace) -> LifecycleSettings:
    """The lifecycle every fit calibrates for and every replay runs: inference's default,
    with ``--lifecycle``'s fields."""
    if not args.lifecycle:
        return LifecycleSettings()
    try:
        return LifecycleSettings(**json.loads(args.lifecycle))
    except (TypeError, ValueError) as error:  # not JSON, an unknown field, a bad value
        raise SystemExit(f"--lifecycle: {error}") from error


def bench_rate(footage: Footage, asked: float | None) -> float | None:
    """The rate clips are taken at: ``asked``, else every frame of footage at up to 10 fps
    (an uploaded archive, no capture times: Ped2 as before) and 10 fps of faster footage (a
    camera at the rate the defaults were chosen at)."""
    if asked is not None:
        if not 0 < asked <= footage.fps:
            raise SystemExit(f"--fps {asked:g}: the footage is shot at {footage.fps:g} fps")
        return asked
    return None if footage.fps <= FPS else FPS


def run(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(args.threads)
    try:
        footage = Footage.open(args.footage) if args.footage else Footage.ped2()
    except FootageError as error:
        raise SystemExit(f"--footage: {error}") from error
    rate = bench_rate(footage, args.fps)
    lifecycle = lifecycle_of(args)
    train = footage.train[: len(QUICK_TRAIN)] if args.quick else footage.train
    if args.train_clips:
        train = tuple(args.train_clips.split(","))
    test = footage.test[: len(QUICK_TEST)] if args.quick else footage.test
    if args.kinds and not footage.is_ped2:
        raise SystemExit("the synthetic scenes are drawn on Ped2's geometry: no --kinds here")
    default_kinds = QUICK_KINDS if args.quick else KINDS
    kinds = args.kinds.split(",") if args.kinds else default_kinds if footage.is_ped2 else ()
    scene_clips = args.scene_clips.split(",") if args.scene_clips else train
    dataset = training_dataset(footage, train, S3Settings(), fps=rate)
    test_set = "ped2_test" if footage.is_ped2 else "test"
    sets = {test_set: test_clips(footage, test, rate)}
    if kinds:
        sets["synthetic"] = synthetic_clips(footage, scene_clips, kinds, args.seed, rate)
    if args.normal_clips:
        sets["unseen_normal"] = normal_clips(footage, args.normal_clips.split(","), rate)
    overrides = json.loads(args.spec) if args.spec else {}
    if rate is None and footage.fps != FPS:  # an archive of another rate: say which
        overrides = {"footage_fps": footage.fps} | overrides
    compared = specs(
        dataset,
        overrides,
        previous=not args.quick or args.all_models or args.previous,
        baseline=not args.quick or args.all_models,
        variant=json.loads(args.variant) if args.variant else None,
    )
    report: dict[str, Any] = {
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs, torch threads {args.threads}",
        "device": args.device,
        "quick": args.quick,
        "footage": {
            "name": footage.name,
            "description": footage.description,
            "fps": footage.fps,
            "grey": footage.grey,
            "train_clips": list(train),
            "test_clips": list(test),
        },
        "dataset": {"name": dataset.name, "version": dataset.version, "frames": len(dataset.items)},
        "lifecycle": asdict(lifecycle),
        "fps": rate or footage.fps,
        "capture_times": rate is not None,
        "grace_s": GRACE_S,
        "causal_window": CAUSAL_WINDOW,
        "test_set": test_set,
        "baseline_is": BASELINE_WHAT,
        "models": {},
    }
    if kinds:
        report |= {"synthetic_seed": args.seed, "synthetic_from": list(scene_clips)}
    for name, spec in compared.items():
        print(json.dumps({"fitting": name}), flush=True)
        report["models"][name] = measure(args, footage, spec, dataset, sets, rate, lifecycle)
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
        "--footage",
        type=Path,
        help="a folder of labeled footage in the shared datasets' layout (bench/footage.py); "
        "default: UCSD Ped2 in ../shared/datasets",
    )
    parser.add_argument(
        "--fps",
        type=float,
        help="take every clip at this rate (at most the footage's), frames with capture times, "
        "as a camera at that rate (default: every frame of footage at up to 10 fps, without "
        "them, as an uploaded archive; 10 fps of faster footage)",
    )
    parser.add_argument(
        "--lifecycle",
        help="JSON fields of the event lifecycle (LifecycleSettings: open_k, open_n, "
        "close_after, close_ratio, ...) that every fit calibrates for and every replay runs",
    )
    parser.add_argument("--kinds", help=f"synthetic scene kinds, comma-separated ({KINDS})")
    parser.add_argument(
        "--scene-clips",
        help="training clips to build the scenes from, comma-separated (default: the fitted "
        "ones; others give scenes whose normal frames no model saw)",
    )
    parser.add_argument(
        "--normal-clips",
        help="training clips no model was fitted on, comma-separated: scored (every frame "
        "taken at the bench's rate) as unseen normal footage, for false alarms",
    )
    parser.add_argument("--json", type=Path, help="also write the report here")
    parser.add_argument("--verbose", action="store_true", help="print fit progress")
    return run_and_emit(run, parser.parse_args(argv))


if __name__ == "__main__":
    main()
