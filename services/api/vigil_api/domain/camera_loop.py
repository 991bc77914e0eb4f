"""A camera's loop as one timeline: who reviewed which event, which dataset versions hold its
footage, which jobs made its models, how they were evaluated against production and what the
evaluation gate decided, what the shadow reports said, which promotions and
rollbacks changed its scoring and why, how each rollback watch ended, and what replays of its
retained frames found.

Stage changes of the global scope (``*``) count for every camera without its own assignment,
so they are part of each camera's timeline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil_shared.db.loop_models import RollbackWatch, ShadowReport
from vigil_shared.db.models import (
    Dataset,
    Evaluation,
    Event,
    GateDecision,
    Job,
    ModelStageChange,
)
from vigil_shared.db.replay_models import Replay
from vigil_shared.schemas.assignments import GLOBAL_SCOPE


@dataclass(frozen=True)
class Step:
    at: datetime
    kind: str
    summary: str
    actor: str | None = None
    ref: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def camera_loop(*, session: Session, camera_id: str, limit: int) -> list[Step]:
    """The latest ``limit`` steps of the camera's loop, oldest first."""
    scopes = (camera_id, GLOBAL_SCOPE)
    changes = list(
        session.scalars(select(ModelStageChange).where(ModelStageChange.scope.in_(scopes)))
    )
    reports = list(session.scalars(select(ShadowReport).where(ShadowReport.camera_id == camera_id)))
    evaluated = select(Evaluation.model_id).where(Evaluation.camera_ids.contains([camera_id]))
    models = (
        {c.model_id for c in changes}
        | {r.shadow_model_id for r in reports}
        | set(session.scalars(evaluated))
    )
    steps = [
        *_reviews(session, camera_id, limit),
        *_datasets(session, camera_id),
        *_jobs(session, {m for m in models if m is not None}),
        *_evaluations(session, camera_id),
        *_gate_decisions(session, camera_id),
        *(_report_step(r) for r in reports),
        *(_change_step(c) for c in changes),
        *_watches(session, scopes),
        *_replays(session, camera_id),
    ]
    steps.sort(key=lambda s: s.at)
    return steps[-limit:]


def _reviews(session: Session, camera_id: str, limit: int) -> list[Step]:
    query = (
        select(Event)
        .where(Event.camera_id == camera_id, Event.reviewed_at.is_not(None))
        .order_by(Event.reviewed_at.desc())
        .limit(limit)
    )
    return [
        Step(
            at=e.reviewed_at,
            kind="review",
            summary=f"event raised by {e.model_id} reviewed {e.review}",
            actor=e.reviewed_by,
            ref=str(e.event_id),
            detail={"label": e.review_label, "note": e.review_note, "model_id": e.model_id},
        )
        for e in session.scalars(query)
        if e.reviewed_at is not None
    ]


def _datasets(session: Session, camera_id: str) -> list[Step]:
    query = select(Dataset).where(Dataset.camera_ids.contains([camera_id]))
    return [
        Step(
            at=d.created_at,
            kind="dataset",
            summary=f"dataset {d.name} {d.version} ({d.source}, {d.n_items} items)",
            actor=d.created_by,
            ref=str(d.id),
            detail={"label_counts": d.label_counts},
        )
        for d in session.scalars(query)
    ]


def _jobs(session: Session, model_ids: set[str]) -> list[Step]:
    if not model_ids:
        return []
    query = select(Job).where(Job.model_id.in_(sorted(model_ids)))
    return [
        Step(
            at=j.created_at,
            kind="job",
            summary=f"{j.task} job {j.name} {j.status}, made model {j.model_id}",
            ref=str(j.id),
            detail={"model_id": j.model_id},
        )
        for j in session.scalars(query)
    ]


def _replays(session: Session, camera_id: str) -> list[Step]:
    """Replays of the camera's retained frames: what the model would have raised against
    production, once finished (docs/live-loop.md, "Replay")."""
    query = select(Replay).where(Replay.camera_ids.contains([camera_id]))
    return [
        Step(
            at=r.finished_at or r.created_at,
            kind="replay",
            summary=f"replay of {r.range_from.isoformat()} to {r.range_to.isoformat()} with "
            f"{r.model_id} {r.status}: {r.report.get('replay_events', 0)} events against "
            f"production's {r.report.get('production_events', 0)}",
            actor=r.created_by,
            ref=str(r.id),
            detail={"model_id": r.model_id, "error": r.error, "report": r.report},
        )
        for r in session.scalars(query)
    ]


def _evaluations(session: Session, camera_id: str) -> list[Step]:
    query = select(Evaluation).where(Evaluation.camera_ids.contains([camera_id]))
    return [
        Step(
            at=e.created_at,
            kind="evaluation",
            summary=f"{e.model_id} evaluated against {e.production_model_id or 'no model'} on "
            f"{e.dataset_name} {e.dataset_version}",
            ref=str(e.id),
            detail={"metrics": e.metrics, "production_metrics": e.production_metrics},
        )
        for e in session.scalars(query)
    ]


def _gate_decisions(session: Session, camera_id: str) -> list[Step]:
    query = select(GateDecision).where(GateDecision.scope.in_((camera_id, GLOBAL_SCOPE)))
    return [
        Step(
            at=d.created_at,
            kind="gate_decision",
            summary=f"gate {'passed' if d.passed else 'refused'} {d.model_id}: {d.summary}",
            actor=d.actor,
            ref=str(d.id),
            detail={"production_model_id": d.production_model_id, "checks": d.checks},
        )
        for d in session.scalars(query)
    ]


def _report_step(report: ShadowReport) -> Step:
    verdict = "passed" if report.passed else "failed"
    summary = (
        f"shadow report on {report.shadow_model_id} {verdict}: agreement "
        f"{report.agreement:.3f} over {report.frames} frames, {report.would_be_events} "
        f"would-be events against production's {report.production_events}"
    )
    return Step(
        at=report.created_at,
        kind="shadow_report",
        summary=summary,
        actor="loop",
        ref=str(report.id),
        detail={"reasons": report.reasons, "promoted": report.promoted},
    )


def _change_step(change: ModelStageChange) -> Step:
    scope = "every camera" if change.scope == GLOBAL_SCOPE else "the camera"
    summary = f"{change.action} {change.model_id} for {scope} (was {change.previous_model_id})"
    return Step(
        at=change.at,
        kind=change.action,
        summary=summary + (f": {change.reason}" if change.reason else ""),
        actor=change.actor,
        ref=str(change.change_id),
        detail={"scope": change.scope, "reason": change.reason},
    )


def _watches(session: Session, scopes: tuple[str, ...]) -> list[Step]:
    query = select(RollbackWatch).where(
        RollbackWatch.scope.in_(scopes), RollbackWatch.ended_at.is_not(None)
    )
    return [
        Step(
            at=w.ended_at or w.promoted_at,
            kind="rollback_watch",
            summary=f"watch over {w.model_id} ended {w.status}"
            + (f": {w.reason}" if w.reason else ""),
            actor="rollback-watch",
            ref=str(w.id),
            detail={"figures": w.figures},
        )
        for w in session.scalars(query)
    ]
