"""A job's ``progress`` (what the trainer writes into its row, at most once a second) as one
bar: how far, out of what, the ETA the trainer estimated, and the latest metrics.

The trainer writes ``stage`` always; ``step``/``total`` within a stage (loading, banks,
scoring); ``epoch``/``epochs`` while training a classifier, with ``metrics`` of the last
validation; ``trial``/``trials`` (0-based trial number) during a search; ``eta_s`` where it can
estimate one. The API adds ``worker_lost`` when the trainer running the job stopped beating.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

FINISHED = frozenset({"succeeded", "failed", "cancelled"})
SHOWN_METRICS = 3


@dataclass(frozen=True)
class Snapshot:
    label: str
    """What is going on: stage, trial and epoch, e.g. ``train trial 2/8 epoch 3/10``."""
    completed: float
    total: float | None
    """None: no measure of how far (the bar pulses)."""
    eta_s: float | None
    metrics: str


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def metrics_text(metrics: Any) -> str:
    if not isinstance(metrics, Mapping):
        return ""
    numbers = [(k, v) for k, v in metrics.items() if isinstance(v, int | float)]
    return "  ".join(f"{k} {v:.3f}" for k, v in numbers[:SHOWN_METRICS])


def describe(job: Mapping[str, Any]) -> Snapshot:
    progress: Mapping[str, Any] = job.get("progress") or {}
    status = str(job.get("status", "queued"))
    parts = [str(progress.get("stage") or status)]
    trial, trials = _int(progress.get("trial")), _int(progress.get("trials"))
    if trial is not None and trials:
        parts.append(f"trial {trial + 1}/{trials}")
    epoch, epochs = _int(progress.get("epoch")), _int(progress.get("epochs"))
    step, total = _int(progress.get("step")), _int(progress.get("total"))
    if epoch is not None and epochs:
        parts.append(f"epoch {epoch}/{epochs}")
        within = step / total if step is not None and total else 1.0
        completed, of = (epoch - 1 + within), float(epochs)
    elif step is not None and total:
        completed, of = float(step), float(total)
    else:
        completed, of = 0.0, None
    if job.get("worker_lost"):
        parts.append("(worker lost: no heartbeat)")
    if status in FINISHED:
        parts = [status]
        completed, of = (of or 1.0), (of or 1.0)
    eta = progress.get("eta_s")
    return Snapshot(
        label=" ".join(parts),
        completed=completed,
        total=of,
        eta_s=float(eta) if isinstance(eta, int | float) else None,
        metrics=metrics_text(progress.get("metrics")),
    )


def eta_text(eta_s: float | None) -> str:
    if eta_s is None:
        return "eta -"
    minutes, seconds = divmod(round(eta_s), 60)
    hours, minutes = divmod(minutes, 60)
    return f"eta {hours}:{minutes:02d}:{seconds:02d}" if hours else f"eta {minutes}:{seconds:02d}"
