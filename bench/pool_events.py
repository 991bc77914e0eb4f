"""Event figures of several cameras, pooled as the fleet's operators would count them.

A site's model is fitted on one camera's footage, so labeled footage of several cameras is one
folder per camera (``bench/footage.py``), each measured by its own run of ``python -m
bench.ped2_events --footage DIR --json REPORT``. This adds those reports up:

    python -m bench.pool_events hall.json square-a.json square-b.json [--json pooled.json]

Per model row and clip set found in every report:

- **events**: anomalous intervals found within 1 s and eventually, events, false alarms and
  repeats summed over the cameras; false alarms per camera-hour over the cameras' normal hours
  together; median and maximum detection delay over every interval found, in seconds at each
  camera's own rate;
- **frames**: each camera's AUROC (raw, causal) and AUPR, and their mean. Frame scores are not
  pooled across cameras: each camera has its own model and threshold, so one camera's score
  says nothing on another's scale, where an event (a score over its own camera's threshold)
  does.

Reports that disagree on the lifecycle, the recall's grace or the causal AUROC's window are
refused: their events (or causal scores) were not counted alike.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.report import run_and_emit

SUMMED = ("intervals", "found", "found_eventually", "events", "false_alarms", "repeats")
FRAME_FIGURES = ("auroc", "auroc_causal9", "aupr")
MUST_AGREE = ("lifecycle", "grace_s", "causal_window")


class PoolError(ValueError):
    """The reports cannot be pooled; says why."""


def pooled(reports: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The reports (by camera) added up, per model row and clip set they all have."""
    if not reports:
        raise PoolError("no reports to pool")
    first_name, first = next(iter(reports.items()))
    for name, report in reports.items():
        for key in MUST_AGREE:
            if report.get(key) != first.get(key):
                raise PoolError(
                    f"{name} and {first_name} differ in {key} ({report.get(key)} against "
                    f"{first.get(key)}): their events were not counted alike"
                )
    models = set.intersection(*(set(r["models"]) for r in reports.values()))
    if not models:
        raise PoolError("the reports share no model row (default, previous_defaults, ...)")
    out: dict[str, Any] = {
        "cameras": {
            name: {"footage": r["footage"]["name"], "fps": r["fps"]} for name, r in reports.items()
        },
        "lifecycle": first.get("lifecycle"),
        "models": {},
    }
    for model in sorted(models):
        rows = {name: r["models"][model] for name, r in reports.items()}
        sets = set.intersection(*(set(_clip_sets(row)) for row in rows.values()))
        if not sets:
            named = {name: _clip_sets(row) for name, row in rows.items()}
            raise PoolError(f"the reports share no clip set for {model}: {named}")
        out["models"][model] = {
            clip_set: _pooled_set(
                {name: rows[name][clip_set] for name in rows},
                {name: float(reports[name]["fps"]) for name in rows},
            )
            for clip_set in sorted(sets)
        }
    return out


def _clip_sets(row: dict[str, Any]) -> list[str]:
    return [key for key, value in row.items() if isinstance(value, dict) and "events" in value]


def _pooled_set(figures: dict[str, dict[str, Any]], fps: dict[str, float]) -> dict[str, Any]:
    events = {key: sum(int(f["events"][key]) for f in figures.values()) for key in SUMMED}
    hours = sum(float(f["events"]["normal_hours"]) for f in figures.values())
    delays = [
        frames / fps[camera]
        for camera, f in figures.items()
        for clip in f["clips"].values()
        for frames in clip["delays_frames"]
        if frames is not None
    ]
    intervals = events["intervals"]
    frames: dict[str, Any] = {"by_camera": {c: f["frames"] for c, f in figures.items()}}
    for key in FRAME_FIGURES:
        values = [f["frames"].get(key) for f in figures.values()]
        known = [v for v in values if v is not None]
        frames[f"mean_{key}"] = statistics.fmean(known) if known else None
    return {
        "events": events
        | {
            "recall": events["found"] / intervals if intervals else None,
            "recall_eventually": events["found_eventually"] / intervals if intervals else None,
            "median_delay_s": statistics.median(delays) if delays else None,
            "max_delay_s": max(delays) if delays else None,
            "normal_hours": hours,
            "false_alarms_per_hour": events["false_alarms"] / hours if hours else None,
        },
        "frames": frames,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    reports: dict[str, dict[str, Any]] = {}
    for path in args.reports:
        try:
            report = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise SystemExit(f"{path}: not a readable report ({error})") from error
        if not isinstance(report, dict) or "models" not in report or "footage" not in report:
            raise SystemExit(f"{path}: not a bench.ped2_events report")
        if path.stem in reports:
            raise SystemExit(f"two reports are named {path.stem}: name each after its camera")
        reports[path.stem] = report
    try:
        return pooled(reports)
    except PoolError as error:
        raise SystemExit(str(error)) from error


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "reports", nargs="+", type=Path, help="bench.ped2_events --json reports, one per camera"
    )
    parser.add_argument("--json", type=Path, help="also write the pooled figures here")
    return run_and_emit(run, parser.parse_args(argv))


if __name__ == "__main__":
    main()
