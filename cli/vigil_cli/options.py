"""Options several commands share: a time range of a camera's footage, cut into groups as the
API cuts it (``vigil datasets from-camera``, ``vigil cameras retrain``)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

Start = Annotated[
    str, typer.Option(help="From this time (ISO 8601 with its zone, e.g. 2026-12-08T08:00Z).")
]
End = Annotated[str, typer.Option(help="To this time (ISO 8601 with its zone).")]
EveryN = Annotated[int, typer.Option(min=1, max=10_000, help="Keep one frame in every n.")]
GapS = Annotated[
    float | None,
    typer.Option(min=0.001, help="A pause longer than this (s) starts a new group (API default)."),
]
SegmentS = Annotated[
    float | None, typer.Option(min=0.001, help="A group is at most this long (s; API default).")
]


def given(**values: Any) -> dict[str, Any]:
    """The options set, for a body that leaves the rest to the API's defaults."""
    return {k: v for k, v in values.items() if v is not None}
