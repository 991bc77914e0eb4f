"""Operator feedback on an event: confirmed or false positive, with an optional label and note.

The verdict is stored on the event row (``review*`` columns), which is what a feedback dataset
is built from: confirmed events are anomalies (with their label), false positives are normal
frames the next model should learn to leave alone. A later verdict replaces an earlier one.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from vigil_api.core import problems
from vigil_api.core.auth import OperatorDep
from vigil_api.core.deps import ClientsDep, SessionDep
from vigil_api.core.security import Principal
from vigil_api.routes.events import (
    EventOut,
    Verdict,
    event_not_found,
    event_out,
    snapshots_of,
    visible_event,
)
from vigil_shared.datasets import Label
from vigil_shared.db.models import Event
from vigil_shared.schemas.inputs import SafeText

router = APIRouter(prefix="/api/v1/events", tags=["events"])


class FeedbackIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"verdict": "confirmed", "label": "bicycle", "note": "cyclist on the walkway"},
                {"verdict": "false_positive", "note": "headlights on the glass door"},
            ]
        },
    )

    verdict: Verdict
    label: Label | None = Field(
        default=None,
        description="What the event shows (for a false positive: what it really is); a "
        "dataset label, since datasets are built from reviews: 1-64 ASCII letters, digits, "
        "spaces, '.', '_' or '-'.",
    )
    note: SafeText | None = None


def record_feedback(
    *, session: Session, event: Event, feedback: FeedbackIn, by: Principal
) -> Event:
    event.review = str(feedback.verdict)
    event.review_label = feedback.label
    event.review_note = feedback.note
    event.reviewed_by = by.name
    event.reviewed_at = datetime.now(UTC)
    session.commit()
    session.refresh(event)
    return event


@router.post(
    "/{event_id}/feedback", response_model=EventOut, responses=problems.responses(403, 404, 422)
)
def post_feedback(
    event_id: uuid.UUID,
    feedback: FeedbackIn,
    session: SessionDep,
    clients: ClientsDep,
    principal: OperatorDep,
) -> BaseModel:
    """Record an operator's verdict on the event (the key's name is the reviewer)."""
    event = visible_event(session=session, principal=principal, event_id=event_id)
    if event is None:
        raise event_not_found(event_id)
    event = record_feedback(session=session, event=event, feedback=feedback, by=principal)
    return event_out(event, snapshots_of(clients))
