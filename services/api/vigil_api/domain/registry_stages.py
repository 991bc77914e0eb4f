"""Which model scores which cameras: promotion, shadowing, clearing and rollback.

Each change is one database transaction that is committed only after its ``ModelAssignment``
was acknowledged by every in-sync replica of the compacted assignment topic: inference follows
the topic, so a change the topic never got must not be on record either. A failed publish rolls
the transaction back and raises ``AssignmentPublishError`` (the API answers 503).

Stages follow the assignments: a model that is in production for some scope is ``production``;
one that was replaced and is in production nowhere is ``archived``; a new model is
``candidate`` (shadowing does not change a stage).

Rollback does not trust the latest change alone: it replays a scope's history
(``model_stage_changes``, oldest first) as a stack of production models, so rolling back twice
goes two promotions back, not back and forth between the last two.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from kafka import KafkaProducer
from kafka.errors import KafkaError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vigil_shared.db.models import Model, ModelAssignmentRow, ModelStageChange
from vigil_shared.schemas.assignments import AssignmentAction, ModelAssignment

PRODUCTION = "production"
CANDIDATE = "candidate"
ARCHIVED = "archived"


class AssignmentPublishError(RuntimeError):
    """The assignment topic did not acknowledge a change; nothing was recorded."""


class NothingToRollBackError(LookupError):
    """The scope has no earlier production model to return to."""


class UnknownModelError(LookupError):
    """The model to assign is not in the registry."""


@dataclass(frozen=True)
class Publisher:
    """The producer and topic changes are published to, with how long to wait for the acks."""

    producer: KafkaProducer
    topic: str
    timeout_s: float = 10.0

    def publish(self, assignments: Sequence[ModelAssignment]) -> None:
        try:
            futures = [
                self.producer.send(self.topic, key=a.kafka_key(), value=a.to_json_bytes())
                for a in assignments
            ]
            for future in futures:
                future.get(timeout=self.timeout_s)
        except KafkaError as exc:
            raise AssignmentPublishError(
                f"the assignment topic {self.topic} did not acknowledge the change ({exc}); "
                "nothing was changed: check Kafka and retry"
            ) from exc


def promote(
    *,
    session: Session,
    publisher: Publisher,
    model_id: str,
    scopes: Sequence[str],
    actor: str,
    reason: str | None = None,
) -> list[ModelAssignment]:
    """Make ``model_id`` the production model of every scope (camera ids or ``*``); ``reason``
    is kept in the stage history (an admin's override of the gate, an automatic promotion)."""
    _require_model(session=session, model_id=model_id)
    changes = [
        _change(
            session=session,
            scope=scope,
            action=AssignmentAction.PROMOTE,
            production=model_id,
            actor=actor,
            reason=reason,
        )
        for scope in scopes
    ]
    return _commit(session=session, publisher=publisher, changes=changes)


def clear(
    *, session: Session, publisher: Publisher, scopes: Sequence[str], actor: str
) -> list[ModelAssignment]:
    """Remove the production and shadow models of the scopes: they fall back (camera → ``*``)."""
    changes = [
        _change(
            session=session,
            scope=scope,
            action=AssignmentAction.CLEAR,
            production=None,
            shadow=None,
            actor=actor,
        )
        for scope in scopes
    ]
    return _commit(session=session, publisher=publisher, changes=changes)


def shadow(
    *,
    session: Session,
    publisher: Publisher,
    model_id: str | None,
    scopes: Sequence[str],
    actor: str,
) -> list[ModelAssignment]:
    """Score ``model_id`` next to each scope's production model, without emitting events
    (``None`` stops shadowing)."""
    if model_id is not None:
        _require_model(session=session, model_id=model_id)
    changes = []
    for scope in scopes:
        row = _locked(session=session, scope=scope)
        current = row.production_model_id if row is not None else None
        changes.append(
            _change(
                session=session,
                scope=scope,
                action=AssignmentAction.SHADOW,
                production=current,
                shadow=model_id,
                actor=actor,
            )
        )
    return _commit(session=session, publisher=publisher, changes=changes)


def rollback(
    *, session: Session, publisher: Publisher, scope: str, actor: str, reason: str | None = None
) -> ModelAssignment:
    """Return ``scope`` to the production model it had before its latest promotion; ``reason``
    says why in the stage history (an automatic rollback states the limit it crossed)."""
    _locked(session=session, scope=scope)
    stack = production_history(session=session, scope=scope)
    if len(stack) < 2:
        raise NothingToRollBackError(
            f"scope {scope!r} has no earlier production model to roll back to"
        )
    change = _change(
        session=session,
        scope=scope,
        action=AssignmentAction.ROLLBACK,
        production=stack[-2],
        actor=actor,
        reason=reason,
    )
    return _commit(session=session, publisher=publisher, changes=[change])[0]


def production_history(*, session: Session, scope: str) -> list[str | None]:
    """The scope's production models as a stack (latest last): promotions and clears push,
    rollbacks pop."""
    stack: list[str | None] = []
    query = (
        select(ModelStageChange)
        .where(ModelStageChange.scope == scope)
        .order_by(ModelStageChange.id)
    )
    for change in session.scalars(query):
        if change.action == AssignmentAction.SHADOW:
            continue
        if change.action == AssignmentAction.ROLLBACK:
            if stack:
                stack.pop()
            if not stack or stack[-1] != change.model_id:
                stack.append(change.model_id)
            continue
        if not stack and change.previous_model_id is not None:
            stack.append(change.previous_model_id)  # assigned before history was kept
        if not stack or stack[-1] != change.model_id:
            stack.append(change.model_id)
    return stack


@dataclass(frozen=True)
class _Change:
    assignment: ModelAssignment
    replaced: str | None


def _require_model(*, session: Session, model_id: str) -> None:
    if session.get(Model, model_id) is None:
        raise UnknownModelError(f"model {model_id} does not exist")


def _artifact_sha256(*, session: Session, model_id: str | None) -> str | None:
    """The registry's sha256 of the model's artifact: inference checks what it reads from S3
    against this copy, not only against the manifest stored next to the artifact."""
    model = session.get(Model, model_id) if model_id is not None else None
    return model.artifact_sha256 if model is not None else None


def _locked(*, session: Session, scope: str) -> ModelAssignmentRow | None:
    # FOR UPDATE: two promotions of one scope at once are serialised, history stays a line.
    return session.get(ModelAssignmentRow, scope, with_for_update=True)


def _change(
    *,
    session: Session,
    scope: str,
    action: AssignmentAction,
    production: str | None,
    actor: str,
    shadow: str | None = None,
    reason: str | None = None,
) -> _Change:
    """Apply one change to the session (not committed) and describe it."""
    row = _locked(session=session, scope=scope)
    now = datetime.now(UTC)
    previous = row.production_model_id if row is not None else None
    if shadow is None and action in (AssignmentAction.PROMOTE, AssignmentAction.ROLLBACK):
        shadow = row.shadow_model_id if row is not None else None
    if shadow == production:
        shadow = None  # a model promoted from shadow stops being its own shadow
    if row is None:
        row = ModelAssignmentRow(scope=scope, updated_by=actor)
        session.add(row)
    row.production_model_id = production
    row.shadow_model_id = shadow
    row.updated_by = actor
    row.updated_at = now
    assignment = ModelAssignment(
        change_id=uuid.uuid4(),
        scope=scope,
        production_model_id=production,
        shadow_model_id=shadow,
        previous_production_model_id=previous,
        production_artifact_sha256=_artifact_sha256(session=session, model_id=production),
        shadow_artifact_sha256=_artifact_sha256(session=session, model_id=shadow),
        action=action,
        actor=actor[:128],
        changed_at=now,
    )
    session.add(
        ModelStageChange(
            change_id=assignment.change_id,
            scope=scope,
            action=action.value,
            model_id=production if action != AssignmentAction.SHADOW else shadow,
            previous_model_id=previous,
            actor=assignment.actor,
            reason=reason,
            at=now,
        )
    )
    session.flush()
    return _Change(assignment=assignment, replaced=previous)


def _commit(
    *, session: Session, publisher: Publisher, changes: Sequence[_Change]
) -> list[ModelAssignment]:
    assignments = [c.assignment for c in changes]
    try:
        _restage(session=session, changes=changes)
        publisher.publish(assignments)
    except BaseException:
        session.rollback()
        raise
    session.commit()
    return assignments


def _restage(*, session: Session, changes: Sequence[_Change]) -> None:
    touched = {c.assignment.production_model_id for c in changes} | {c.replaced for c in changes}
    for model_id in sorted(m for m in touched if m is not None):
        model = session.get(Model, model_id)
        if model is None:
            continue
        in_production = session.scalar(
            select(func.count())
            .select_from(ModelAssignmentRow)
            .where(ModelAssignmentRow.production_model_id == model_id)
        )
        if in_production:
            model.stage = PRODUCTION
        elif model.stage == PRODUCTION:
            model.stage = ARCHIVED
    session.flush()
