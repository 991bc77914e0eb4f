"""The rollback watch: each promotion is watched for ``watch_s``; when the new model's live
behaviour crosses a limit, its scope is rolled back by ``registry_stages.rollback`` (actor
``rollback-watch``, the limit as the reason), which publishes the assignment change.

What is compared, from the event store (rows stored since the promotion, by ``stored_at``, so
replayed footage with old capture times counts when it was scored):

- scoring errors: inference reports the promoted model cannot be loaded for a camera of the
  scope (``camera_scoring.problem``);
- event rate per camera-hour against the previous model's over as long before the promotion;
- the share of its reviewed events that reviewers marked false positives;
- the median delay between an event's start and its detection.

A watch whose scope was changed since (another promotion, a manual rollback) is ``superseded``.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from vigil_api.core.loop_settings import LoopSettings
from vigil_api.domain import registry_stages
from vigil_api.domain.registry_stages import NothingToRollBackError, Publisher
from vigil_shared.db.loop_models import RollbackWatch
from vigil_shared.db.models import CameraScoringRow, Event, ModelAssignmentRow, ModelStageChange
from vigil_shared.schemas.assignments import GLOBAL_SCOPE

WATCHER = "rollback-watch"
WATCHING, KEPT, ROLLED_BACK, SUPERSEDED, STUCK = (
    "watching",
    "kept",
    "rolled_back",
    "superseded",
    "stuck",
)


@dataclass(frozen=True)
class Behaviour:
    """The new model's live figures since its promotion, and the previous model's before."""

    watched_s: float
    has_previous: bool
    """Whether there is a previous model to compare with (and to roll back to)."""
    cameras: int
    events: int
    events_per_camera_hour: float
    previous_events: int
    previous_events_per_camera_hour: float
    reviewed: int
    false_positives: int
    median_delay_s: float | None
    scoring_problems: list[str]


def open_watches(*, session: Session, settings: LoopSettings, now: datetime) -> int:
    """A watch for each promotion of the last ``watch_s`` that has none yet; not committed."""
    watched = exists().where(RollbackWatch.change_id == ModelStageChange.change_id)
    query = (
        select(ModelStageChange)
        .where(
            ModelStageChange.action == "promote",
            ModelStageChange.at >= now - timedelta(seconds=settings.watch_s),
            ModelStageChange.model_id.is_not(None),
            ~watched,
        )
        .order_by(ModelStageChange.id)
    )
    opened = 0
    for change in session.scalars(query):
        assert change.model_id is not None
        session.add(
            RollbackWatch(
                change_id=change.change_id,
                scope=change.scope,
                model_id=change.model_id,
                previous_model_id=change.previous_model_id,
                promoted_at=change.at,
                until=change.at + timedelta(seconds=settings.watch_s),
                status=WATCHING,
                figures={},
            )
        )
        opened += 1
    session.flush()
    return opened


def check_watches(
    *, session: Session, publisher: Publisher, settings: LoopSettings, now: datetime
) -> list[RollbackWatch]:
    """Check every open watch; roll back those past a limit. Returns the watches that ended."""
    ended = []
    query = select(RollbackWatch).where(RollbackWatch.status == WATCHING)
    for watch in session.scalars(query.order_by(RollbackWatch.promoted_at)).all():
        if _check(session=session, publisher=publisher, settings=settings, watch=watch, now=now):
            ended.append(watch)
    session.commit()
    return ended


def _check(
    *,
    session: Session,
    publisher: Publisher,
    settings: LoopSettings,
    watch: RollbackWatch,
    now: datetime,
) -> bool:
    current = session.get(ModelAssignmentRow, watch.scope)
    if current is None or current.production_model_id != watch.model_id:
        _end(watch, SUPERSEDED, now, "the scope's production model was changed since")
        return True
    behaviour = measure(session=session, watch=watch, now=now)
    watch.figures = asdict(behaviour)
    watch.checked_at = now
    reason = breach(behaviour, settings)
    if reason is None:
        if now >= watch.until:
            _end(watch, KEPT, now, None)
            return True
        return False
    _end(watch, ROLLED_BACK, now, reason)
    try:  # commits the watch with the rollback, or neither (retried next tick)
        registry_stages.rollback(
            session=session,
            publisher=publisher,
            scope=watch.scope,
            actor=WATCHER,
            reason=f"{reason} (rollback watch {watch.id})",
        )
    except NothingToRollBackError as exc:
        _end(watch, STUCK, now, f"{reason}; but {exc}")
    return True


def _end(watch: RollbackWatch, status: str, now: datetime, reason: str | None) -> None:
    watch.status = status
    watch.reason = reason
    watch.ended_at = now


def breach(behaviour: Behaviour, settings: LoopSettings) -> str | None:
    """The first limit the behaviour crosses, in words, or None."""
    if behaviour.scoring_problems:
        return f"scoring errors: {behaviour.scoring_problems[0]}"
    if behaviour.has_previous and behaviour.events >= settings.rollback_min_events:
        allowed = settings.rollback_max_event_rate_ratio * max(
            behaviour.previous_events_per_camera_hour, 1.0
        )
        if behaviour.events_per_camera_hour > allowed:
            return (
                f"event rate {behaviour.events_per_camera_hour:.1f} per camera-hour, above "
                f"{allowed:.1f} ({settings.rollback_max_event_rate_ratio} x the previous "
                "model's; VIGIL_LOOP_ROLLBACK_MAX_EVENT_RATE_RATIO)"
            )
    if behaviour.reviewed >= settings.rollback_min_events:
        share = behaviour.false_positives / behaviour.reviewed
        if share > settings.rollback_max_false_positive_share:
            return (
                f"{behaviour.false_positives} of {behaviour.reviewed} reviewed events were false "
                f"positives, above {settings.rollback_max_false_positive_share:.0%} "
                "(VIGIL_LOOP_ROLLBACK_MAX_FALSE_POSITIVE_SHARE)"
            )
    delay = behaviour.median_delay_s
    if delay is not None and delay > settings.rollback_max_latency_s:
        return (
            f"median detection delay {delay:.1f} s, above {settings.rollback_max_latency_s} s "
            "(VIGIL_LOOP_ROLLBACK_MAX_LATENCY_S)"
        )
    return None


def measure(*, session: Session, watch: RollbackWatch, now: datetime) -> Behaviour:
    """The new model's events since its promotion against the previous model's over as long
    before it, per camera-hour of wall time."""
    watched_s = max((now - watch.promoted_at).total_seconds(), 1.0)
    before = watch.promoted_at - timedelta(seconds=watched_s)
    new = _events(session, watch.scope, watch.model_id, watch.promoted_at, now)
    old = (
        _events(session, watch.scope, watch.previous_model_id, before, watch.promoted_at)
        if watch.previous_model_id is not None
        else []
    )
    cameras = max(len({e.camera_id for e in new} | {e.camera_id for e in old}), 1)
    camera_hours = cameras * watched_s / 3600
    reviewed = [e for e in new if e.review is not None]
    delays = [(e.detected_at - e.started_at).total_seconds() for e in new]
    return Behaviour(
        watched_s=watched_s,
        has_previous=watch.previous_model_id is not None,
        cameras=cameras,
        events=len(new),
        events_per_camera_hour=len(new) / camera_hours,
        previous_events=len(old),
        previous_events_per_camera_hour=len(old) / camera_hours,
        reviewed=len(reviewed),
        false_positives=sum(e.review == "false_positive" for e in reviewed),
        median_delay_s=statistics.median(delays) if delays else None,
        scoring_problems=_scoring_problems(session, watch),
    )


def _events(
    session: Session, scope: str, model_id: str | None, since: datetime, until: datetime
) -> list[Event]:
    query = select(Event).where(
        Event.model_id == model_id, Event.stored_at >= since, Event.stored_at < until
    )
    if scope != GLOBAL_SCOPE:
        query = query.where(Event.camera_id == scope)
    return list(session.scalars(query))


def _scoring_problems(session: Session, watch: RollbackWatch) -> list[str]:
    query = select(CameraScoringRow.camera_id, CameraScoringRow.problem).where(
        CameraScoringRow.assigned_model_id == watch.model_id,
        CameraScoringRow.problem.is_not(None),
        CameraScoringRow.reported_at >= watch.promoted_at,
    )
    if watch.scope != GLOBAL_SCOPE:
        query = query.where(CameraScoringRow.camera_id == watch.scope)
    return [f"camera {camera}: {problem}" for camera, problem in session.execute(query)]


def latest_watches(*, session: Session, limit: int) -> list[RollbackWatch]:
    query = select(RollbackWatch).order_by(RollbackWatch.promoted_at.desc()).limit(limit)
    return list(session.scalars(query))


def count_watching(session: Session) -> int:
    query = select(func.count()).select_from(RollbackWatch)
    return session.scalar(query.where(RollbackWatch.status == WATCHING)) or 0
