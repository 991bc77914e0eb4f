"""Shadow reports: a closed ``ShadowWindow`` judged against what production raised in the same
span and what reviewers said of it, stored once, and (when configured) the candidate promoted.

A report passes when the candidate agrees with production on enough frames
(``shadow_min_agreement``), would not have raised more than ``shadow_max_extra_events`` events
beyond production's, and would have raised every event reviewers confirmed but
``shadow_max_missed_confirmed``. Reviews are those on record when the span closes.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from vigil_api.core.loop_settings import LoopSettings
from vigil_api.domain import gate, registry_stages
from vigil_api.domain.registry_stages import Publisher
from vigil_api.domain.shadow_window import ShadowWindow
from vigil_shared.db.loop_models import ShadowReport
from vigil_shared.db.models import Event, ModelAssignmentRow

REPORT_NAMESPACE = uuid.UUID("6f1d8f0e-2b7a-4c55-9a51-5a3c1f0de7a1")
AUTO_PROMOTER = "shadow-report"


def report_id(window: ShadowWindow) -> uuid.UUID:
    """The same span of the same camera and models always gives the same id."""
    key = window.key
    name = f"{key.camera_id}/{key.shadow_model_id}/{key.production_model_id}/"
    return uuid.uuid5(REPORT_NAMESPACE, f"{name}{window.partition}/{window.first_offset}")


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reasons: list[str]
    figures: dict[str, Any]


def judge(*, window: ShadowWindow, production: list[Event], settings: LoopSettings) -> Verdict:
    """Compare the window's would-be events with production's events of the span."""
    confirmed = [e for e in production if e.review == "confirmed"]
    rejected = [e for e in production if e.review == "false_positive"]
    missed = [e for e in confirmed if not _caught(window, e)]
    raised_rejected = [e for e in rejected if _caught(window, e)]
    would_be = len(window.events)
    reasons = []
    if window.agreement < settings.shadow_min_agreement:
        reasons.append(
            f"agreement {window.agreement:.3f} below {settings.shadow_min_agreement} "
            "(VIGIL_LOOP_SHADOW_MIN_AGREEMENT)"
        )
    if would_be > len(production) + settings.shadow_max_extra_events:
        reasons.append(
            f"{would_be} would-be events against production's {len(production)}, more than "
            f"{settings.shadow_max_extra_events} extra (VIGIL_LOOP_SHADOW_MAX_EXTRA_EVENTS)"
        )
    if len(missed) > settings.shadow_max_missed_confirmed:
        reasons.append(
            f"{len(missed)} of {len(confirmed)} confirmed events would not have been raised "
            "(VIGIL_LOOP_SHADOW_MAX_MISSED_CONFIRMED)"
        )
    figures = {
        "shadow_hot_frames": window.shadow_hot,
        "production_hot_frames": window.production_hot,
        "confirmed_events": len(confirmed),
        "confirmed_missed": [str(e.event_id) for e in missed],
        "false_positive_events": len(rejected),
        "false_positives_raised": [str(e.event_id) for e in raised_rejected],
        "would_be": [
            {
                "started_at": e.started_at.isoformat(),
                "ended_at": e.ended_at.isoformat() if e.ended_at else None,
                "peak_score": e.peak_score,
            }
            for e in window.events[:100]
        ],
    }
    return Verdict(passed=not reasons, reasons=reasons, figures=figures)


def store_report(*, session: Session, window: ShadowWindow, settings: LoopSettings) -> uuid.UUID:
    """Judge and insert the window's report (a replayed span inserts nothing); not committed."""
    production = production_events(session, window)
    verdict = judge(window=window, production=production, settings=settings)
    key = window.key
    rid = report_id(window)
    row = {
        "id": rid,
        "camera_id": key.camera_id,
        "shadow_model_id": key.shadow_model_id,
        "production_model_id": key.production_model_id,
        "partition": window.partition,
        "first_offset": window.first_offset,
        "last_offset": window.last_offset,
        "window_from": window.window_from,
        "window_to": window.window_to or window.window_from,
        "frames": window.frames,
        "agreement": window.agreement,
        "would_be_events": len(window.events),
        "production_events": len(production),
        "score_drift": window.score_drift,
        "passed": verdict.passed,
        "reasons": verdict.reasons,
        "figures": verdict.figures,
        "promoted": False,
    }
    session.execute(insert(ShadowReport).values(row).on_conflict_do_nothing(index_elements=["id"]))
    return rid


def production_events(session: Session, window: ShadowWindow) -> list[Event]:
    """Production's events of the camera that overlap the window's capture-time span."""
    start, end = window.window_from, window.window_to or window.window_from
    query = select(Event).where(
        Event.camera_id == window.key.camera_id,
        Event.model_id == window.key.production_model_id,
        Event.started_at <= end,
        or_(Event.ended_at.is_(None), Event.ended_at >= start),
    )
    return list(session.scalars(query))


def _caught(window: ShadowWindow, event: Event) -> bool:
    return any(w.overlaps(event.started_at, event.ended_at) for w in window.events)


def promote_if_passed(
    *, session: Session, publisher: Publisher, report: uuid.UUID, settings: LoopSettings
) -> str | None:
    """Promote the report's candidate for its camera when it passed, auto-promotion is on and
    the evaluation gate lets it (``gate.check``, recorded as the report's ``promotion_note``
    when it refuses); what was done, in words, or None. The camera must still be scored as the
    report saw it (the same production and shadow models): a later change by anyone stands."""
    row = session.get(ShadowReport, report)
    if row is None or not row.passed or not settings.auto_promote or row.promoted:
        return None
    current = session.get(ModelAssignmentRow, row.camera_id)
    if current is None or (current.production_model_id, current.shadow_model_id) != (
        row.production_model_id,
        row.shadow_model_id,
    ):
        return None
    decision = gate.check(
        session=session, model_id=row.shadow_model_id, scope=row.camera_id, actor=AUTO_PROMOTER
    )
    row = session.get(ShadowReport, report)
    assert row is not None
    if not decision.passed:
        row.promotion_note = f"not promoted: the evaluation gate refused ({decision.summary})"
        session.commit()
        return None
    reason = (
        f"shadow report {row.id}: agreement {row.agreement:.3f} over {row.frames} frames, "
        f"{row.would_be_events} would-be events against {row.production_events}; "
        f"gate decision {decision.id}: {decision.summary}"
    )
    registry_stages.promote(
        session=session,
        publisher=publisher,
        model_id=row.shadow_model_id,
        scopes=[row.camera_id],
        actor=AUTO_PROMOTER,
        reason=reason,
    )
    row = session.get(ShadowReport, report)
    assert row is not None
    row.promoted = True
    row.promotion_note = reason
    session.commit()
    return reason
