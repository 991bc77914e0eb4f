"""An event field lives in one place: every field of the event schema reaches the ``events``
table and the API's event, or says why not; a field added without a column fails here."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, SecretStr, create_model

from vigil_api.domain.event_snapshots import Presigner
from vigil_api.routes.events import SHOWN_AS, EventOut, Snapshots, event_out
from vigil_shared.db.event_rows import (
    EVENT_COLUMNS,
    NOT_STORED,
    RENAMED,
    event_row,
    stored_fields,
)
from vigil_shared.db.models import Event
from vigil_shared.schemas.events import EventMessage, EventPhase, ModelRef
from vigil_shared.settings import S3Settings

T0 = datetime(2026, 11, 28, 9, 14, tzinfo=UTC)
TABLE_COLUMNS = set(Event.__table__.columns.keys())


def every_field_set() -> EventMessage:
    """An ``end`` whose every field, optional ones too, holds a value no other field holds."""
    return EventMessage(
        message_id=uuid.uuid4(),
        event_id=uuid.uuid4(),
        phase=EventPhase.END,
        camera_id="gate-2",
        frame_seq=1071,
        captured_at=T0 + timedelta(seconds=7),
        started_at=T0,
        ended_at=T0 + timedelta(seconds=6),
        detected_at=T0 + timedelta(seconds=7, milliseconds=90),
        score=0.12,
        peak_score=0.63,
        peak_frame_seq=1055,
        peak_captured_at=T0 + timedelta(seconds=3),
        threshold=0.35,
        model=ModelRef(id="m-3f9a1c2b7d4e8f60", kind="registry"),
        label="bicycle",
        snapshot_key="events/gate-2/e/overlay.jpg",
    )


def value_at(message: BaseModel, path: tuple[str, ...]) -> Any:
    value: Any = message
    for name in path:
        value = getattr(value, name)
    return value


def missing_columns(model: type[BaseModel]) -> set[str]:
    return set(stored_fields(model)) - TABLE_COLUMNS


def test_every_schema_field_is_stored_or_says_why_not() -> None:
    stored = {field.path[0] for field in EVENT_COLUMNS.values()}
    assert set(EventMessage.model_fields) == stored | set(NOT_STORED)
    assert not stored & set(NOT_STORED)
    assert set(RENAMED) <= stored, "a rename names a field the schema no longer has"


def test_every_stored_field_has_a_column_of_the_events_table() -> None:
    assert missing_columns(EventMessage) == set(), (
        "add the column to vigil_shared.db.models.Event and a migration"
    )
    assert set(event_row(every_field_set())) <= TABLE_COLUMNS


def test_a_field_added_to_the_schema_without_a_column_is_caught() -> None:
    newer = create_model("Newer", __base__=EventMessage, added_later=(str | None, None))
    assert missing_columns(newer) == {"added_later"}


def test_the_row_keeps_the_peak_frame_and_the_status_of_the_message() -> None:
    message = every_field_set()
    row = event_row(message)
    assert (row["frame_seq"], row["captured_at"], row["score"]) == (
        message.peak_frame_seq,
        message.peak_captured_at,
        message.peak_score,
    )
    assert (row["model_id"], row["model_kind"], row["status"]) == (
        "m-3f9a1c2b7d4e8f60",
        "registry",
        "ended",
    )
    same_name = set(row) - set(RENAMED.values()) - {"model_id", "model_kind", "status"}
    assert same_name >= {"event_id", "camera_id", "started_at", "ended_at", "label"}
    assert {c: row[c] for c in same_name} == {c: getattr(message, c) for c in same_name}


def test_every_stored_field_reaches_the_api_with_its_value() -> None:
    message = every_field_set()
    row = Event(**event_row(message), updated_at=T0 + timedelta(seconds=8))
    s3 = S3Settings(
        endpoint="s3.example:9000",
        access_key="vigil",
        secret_key=SecretStr("a-secret-key-for-the-test"),
    )
    snapshots = Snapshots(Presigner.for_snapshots(s3, now=T0, expires=timedelta(minutes=5)))
    shown = event_out(row, snapshots).model_dump()
    for column, field in EVENT_COLUMNS.items():
        name = SHOWN_AS.get(column, column)
        assert name in EventOut.model_fields, f"{column} does not reach the API's event"
        if column not in SHOWN_AS:
            assert shown[name] == value_at(message, field.path), column
    assert shown["snapshot_url"].startswith("http://s3.example:9000/vigil-snapshots/events/gate-2/")
    assert shown["status"] == "ended"
