"""Options several commands share: times (absolute, or relative to now), and a time range of a
camera's footage cut into groups as the API cuts it (``vigil datasets from-camera``, ``vigil
cameras retrain``, ``vigil events list --since``)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer

UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
RELATIVE = re.compile(r"^-([0-9]+(?:\.[0-9]+)?)([smhd])$")


def when(text: str | None, now: datetime | None = None) -> str | None:
    """An option's time as the API takes it: ``now``, ``-90s``, ``-30m``, ``-2h``, ``-7d`` (that
    long ago) become an ISO time in UTC; anything else is sent as written (an ISO time with its
    zone; the API names the field when it is not one)."""
    if text is None:
        return None
    spoken = text.strip().lower()
    now = now or datetime.now(UTC)
    if spoken == "now":
        return now.isoformat()
    relative = RELATIVE.match(spoken)
    if relative is None:
        return text
    seconds = float(relative.group(1)) * UNITS_S[relative.group(2)]
    try:
        return (now - timedelta(seconds=seconds)).isoformat()
    except OverflowError as exc:
        raise ValueError(f"{text.strip()} ago is before year 1") from exc


def time_option(value: str | None) -> str | None:
    """``when`` as an option's callback (typer passes the value alone); a time out of range is
    a usage error naming it."""
    try:
        return when(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


TIME_HELP = "an ISO 8601 time with its zone (2026-12-08T08:00Z), now, or ago: -30m, -2h, -7d"
Start = Annotated[str, typer.Option(callback=time_option, help=f"From: {TIME_HELP}.")]
End = Annotated[str, typer.Option(callback=time_option, help=f"To: {TIME_HELP}.")]
EveryN = Annotated[int, typer.Option(min=1, max=10_000, help="Keep one frame in every n.")]
GapS = Annotated[
    float | None,
    typer.Option(min=0.001, help="A pause longer than this (s) starts a new group (API default)."),
]
SegmentS = Annotated[
    float | None, typer.Option(min=0.001, help="A group is at most this long (s; API default).")
]


Reason = Annotated[
    str | None, typer.Option(help="Why (kept in the deletion audit log: /api/v1/audit/deletions).")
]


def given(**values: Any) -> dict[str, Any]:
    """The options set, for a body that leaves the rest to the API's defaults."""
    return {k: v for k, v in values.items() if v is not None}
