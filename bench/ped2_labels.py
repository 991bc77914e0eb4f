"""What a site's labels buy on UCSD Ped2: one_class fitted with labeled anomalies, judged on clips
its labels never saw.

A site that has labeled footage (a labeled dataset, or many confirmed events) gets two things
from it in a one_class fit: the streams' **gains** fitted on the labels
(``vigil_trainer.one_class.label_fusion``, kept only when they win held out by group) and the
**F1-best threshold** on the labeled frames (both only with enough labels:
``vigil_trainer.one_class.fit.enough_labels``).
Neither had been measured on real anomalies: Ped2's twelve test clips are its only labeled
ones, and a model cannot be judged on the labels it was fitted on.

So the test clips are dealt into ``--folds`` folds; for each fold the **default spec** is fitted
on the training clips (normal) plus every *other* fold's test clips, labeled frame by frame
(each clip its own group), and scores its own fold's clips, in order through ``score_frames``.
Every test clip is thus scored by a model whose labels never included it. The same run fits the
default spec on the training clips alone (no labels: what every other bench measures) and
scores every test clip with it. Both are evaluated pooled by ``vigil_shared.vision.event_metrics``
at each model's own threshold: each fold's scores are divided by its threshold, so 1.0 is every
model's operating point (the order within a fold is unchanged). With 6 folds a fold's model has
10 labeled clips, the least the label rules accept.

    set -a; . .stack/env; set +a
    python -m bench.ped2_labels --json bench/results/ped2-labels-cpu.json
    python -m bench.ped2_labels --quick     # 3 train clips, 2 test clips in 2 folds, small spec
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from collections.abc import Sequence
from typing import Any

import torch

from bench.footage import Footage
from bench.ped2_events import FPS, merged
from bench.ped2_loop import (
    QUICK_SPEC,
    add_fit_arguments,
    fit,
    report_head,
    scores_of,
    store,
)
from bench.ped2_one_class import (
    QUICK_TEST,
    QUICK_TRAIN,
    clip_frames,
    clip_images,
    labeled_test_images,
    labels_of,
)
from bench.report import emit
from vigil_shared.schemas.one_class import OneClassSpec
from vigil_shared.settings import S3Settings
from vigil_shared.vision.event_metrics import CAUSAL_WINDOW, evaluate

LABEL_METRICS = (
    "n_labeled_abnormal",
    "validation_auroc",
    "fusion_from_labels",
    "fusion_heldout_auroc_max",
    "fusion_heldout_auroc_fitted",
    "threshold_from_labels",
    "threshold_normal",
    "threshold_labeled",
    "expected_false_alarms_per_hour",
    "expected_false_alarms_per_hour_labeled",
)


def deal(clips: Sequence[str], folds: int) -> list[list[str]]:
    """Clips dealt round-robin into ``folds`` folds (Test001 and Test007 together at 6)."""
    if not 2 <= folds <= len(clips):
        raise SystemExit(f"--folds must be between 2 and the {len(clips)} test clips")
    return [list(clips[i::folds]) for i in range(folds)]


def label_metrics(metrics: dict[str, float]) -> dict[str, float]:
    found = {name: metrics[name] for name in LABEL_METRICS if name in metrics}
    return found | {k: v for k, v in metrics.items() if k.startswith("fusion_gain_")}


def at_operating_point(scores: torch.Tensor, threshold: float) -> torch.Tensor:
    """Scores in units of the model's threshold (1.0 = where it raises events)."""
    if threshold <= 0:
        raise ValueError(f"a threshold of {threshold} has no operating point to scale to")
    return scores / threshold


def run(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(args.threads)
    footage = Footage.ped2()
    root = footage.root
    train = QUICK_TRAIN if args.quick else tuple(f"Train{i:03d}" for i in range(1, 17))
    test = QUICK_TEST if args.quick else tuple(f"Test{i:03d}" for i in range(1, 13))
    folds = deal(test, args.folds)
    overrides = json.loads(args.spec) if args.spec else (QUICK_SPEC if args.quick else {})
    spec = OneClassSpec.model_validate(
        merged({"name": "ped2-labels", "dataset": {"name": "pending"}}, overrides)
    )
    s3_settings = S3Settings()
    training = [image for c in train for image in clip_images(footage, c)]
    labels = {clip: labels_of(root, clip, len(clip_frames(root, clip))) for clip in test}
    labeled = {clip: labeled_test_images(root, clip) for clip in test}

    print(json.dumps({"fitting": "no labels"}), flush=True)
    plain_fit, plain, plain_fit_s = fit(
        args, root, spec, store(f"ped2-labels-train-{len(train)}", training, s3_settings)
    )
    started = time.perf_counter()
    plain_scores = {c: scores_of(plain, clip_frames(root, c), args.batch_size) for c in test}
    plain_s = time.perf_counter() - started
    plain_threshold = plain.manifest.threshold

    with_labels: dict[str, torch.Tensor] = {}
    fold_rows = []
    for number, held_out in enumerate(folds):
        others = [c for c in test if c not in held_out]
        images = training + [image for c in others for image in labeled[c]]
        dataset = store(f"ped2-labels-fold{number}-of-{len(folds)}", images, s3_settings)
        print(json.dumps({"fitting": f"fold {number}", "scores": held_out}), flush=True)
        fitted, model, fit_s = fit(args, root, spec, dataset)
        threshold = model.manifest.threshold
        for clip in held_out:
            raw = scores_of(model, clip_frames(root, clip), args.batch_size)
            with_labels[clip] = at_operating_point(raw, threshold)
        fold_rows.append(
            {
                "scores": held_out,
                "labeled": others,
                "model_threshold": threshold,
                "fit_s": round(fit_s, 1),
                "label_metrics": label_metrics(fitted.metrics),
            }
        )
    rows = {
        "no_labels": evaluate(
            {c: at_operating_point(s, plain_threshold) for c, s in plain_scores.items()},
            labels,
            threshold=1.0,
            fps=FPS,
        )
        | {
            "model_threshold": plain_threshold,
            "fit_s": round(plain_fit_s, 1),
            "frames_per_s": round(sum(len(s) for s in plain_scores.values()) / plain_s, 2),
            "label_metrics": label_metrics(plain_fit.metrics),
        },
        "with_labels": evaluate(with_labels, labels, threshold=1.0, fps=FPS) | {"folds": fold_rows},
    }
    return report_head(args, spec) | {
        "train_clips": list(train),
        "folds": folds,
        "fps": FPS,
        "scores_are": "each model's scores divided by its own threshold (1.0 = operating point)",
        "summary": {
            name: {
                "auroc": row["frames"]["auroc"],
                "auroc_causal": row["frames"][f"auroc_causal{CAUSAL_WINDOW}"],
                "event_recall": row["events"]["recall"],
                "event_recall_eventually": row["events"]["recall_eventually"],
                "median_delay_s": row["events"]["median_delay_s"],
                "false_alarms": row["events"]["false_alarms"],
            }
            for name, row in rows.items()
        },
        "models": rows,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_fit_arguments(parser)
    parser.add_argument("--folds", type=int, help="test-clip folds (default 6; quick 2)")
    args = parser.parse_args(argv)
    if args.folds is None:
        args.folds = 2 if args.quick else 6
    report = run(args)
    emit(report, args.json)
    return report


if __name__ == "__main__":
    main()
