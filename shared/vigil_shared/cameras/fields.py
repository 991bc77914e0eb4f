"""The ranges of a camera's fields and the shape of its masks, checked the same on both sides.

The API refuses a camera outside them (a 422 naming the field); ingest skips a camera it reads
outside them (one stored before a range changed, say) rather than fail the whole fleet, and its
single-camera settings take the same ranges. Mask coordinates are fractions of the picture's
width and height, so one definition fits every resolution a camera sends.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

Fps = Annotated[float, Field(gt=0, le=60, description="Frames per second ingest publishes.")]
Pixels = Annotated[int, Field(ge=32, le=8192)]
JpegQuality = Annotated[int, Field(ge=10, le=100)]
RetentionDays = Annotated[
    int,
    Field(
        ge=1,
        le=36_500,
        description="Days its events, their snapshots and its frames in datasets are kept; "
        "unset: VIGIL_API_RETENTION_MAX_DAYS, which also caps it.",
    ),
]

Coordinate = Annotated[float, Field(ge=0, le=1)]
Point = tuple[Coordinate, Coordinate]
Polygon = Annotated[
    tuple[Point, ...],
    Field(min_length=3, max_length=256, description="[x, y] fractions of width and height."),
]
Masks = Annotated[
    tuple[Polygon, ...],
    Field(
        max_length=64,
        description="Areas ingest blacks out before anything else (privacy, ignore zones).",
        examples=[[[[0, 0], [0.25, 0], [0.25, 0.2], [0, 0.2]]]],
    ),
]
