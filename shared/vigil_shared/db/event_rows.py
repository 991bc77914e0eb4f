"""How an event message becomes its ``events`` row: derived from the schema, renames written once.

Each field of ``EventMessage`` is stored in the column of its name, a nested model's fields in
``<field>_<subfield>`` (``model.id`` → ``model_id``), except the fields ``RENAMED`` sends to
another column and those ``NOT_STORED`` says why the row does not keep. So a new optional field
of the event needs a column of the same name in ``models.Event`` and a migration, nothing here;
``tests/unit/test_event_fields.py`` fails when one is missing. The sink adds ``status`` (from
``phase``) and merges the columns it has rules for; any other column keeps the value the event's
first stored message gave it (a field that is the same on every message of an event).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from vigil_shared.schemas.events import EventMessage, EventPhase

Row = dict[str, Any]

NOT_STORED: dict[str, str] = {
    "schema_": "names the message format, not the event",
    "message_id": "identifies one message; the row is the event",
    "phase": "kept as the row's status: open, or ended once an end arrived",
    "frame_seq": "this message's frame; the row keeps the peak frame's (peak_frame_seq)",
    "captured_at": "this message's frame; the row keeps the peak frame's (peak_captured_at)",
    "score": "this message's frame; the row keeps the peak frame's (peak_score)",
}
RENAMED: dict[str, str] = {
    "peak_frame_seq": "frame_seq",
    "peak_captured_at": "captured_at",
    "peak_score": "score",
}


@dataclass(frozen=True)
class StoredField:
    """A schema field kept in a column; ``path`` names it (and its sub-field, when nested)."""

    path: tuple[str, ...]
    info: FieldInfo


def stored_fields(model: type[BaseModel] = EventMessage) -> dict[str, StoredField]:
    """Column name → the schema field stored in it, in the schema's order."""
    columns: dict[str, StoredField] = {}
    for name, info in model.model_fields.items():
        if name in NOT_STORED:
            continue
        nested = info.annotation
        if isinstance(nested, type) and issubclass(nested, BaseModel):
            for sub, sub_info in nested.model_fields.items():
                columns[f"{name}_{sub}"] = StoredField((name, sub), sub_info)
        else:
            columns[RENAMED.get(name, name)] = StoredField((name,), info)
    return columns


EVENT_COLUMNS = stored_fields()


def event_row(message: EventMessage) -> Row:
    """What one message says about its event's row, before the sink merges it into the row."""
    values = message.model_dump()
    row = {column: _value_at(values, field.path) for column, field in EVENT_COLUMNS.items()}
    row["status"] = "ended" if message.phase is EventPhase.END else "open"
    return row


def _value_at(values: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = values
    for key in path:
        value = value[key]
    return value
