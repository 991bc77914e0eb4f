"""Writes the JSON Schemas of the wire contract to ``docs/schemas``, and freezes releases.

``python -m vigil_shared.schemas.export [DIR]``; a test fails when the committed files differ
from the models, so the published contract cannot drift from the code.
``python -m vigil_shared.schemas.export --release`` also freezes every schema that changed since
its last release into ``docs/schemas/released`` (see ``releases``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pydantic import BaseModel

from vigil_shared.schemas.assignments import ModelAssignment
from vigil_shared.schemas.camera_status import CameraStatus
from vigil_shared.schemas.events import EventMessage
from vigil_shared.schemas.frames import FrameHeaders
from vigil_shared.schemas.jobs import JobSpecDocument
from vigil_shared.schemas.manifests import ModelManifest
from vigil_shared.schemas.releases import Schema, freeze
from vigil_shared.schemas.scoring_status import ScoringStatus
from vigil_shared.schemas.shadow_scores import ShadowScore
from vigil_shared.schemas.wire import WireMessage
from vigil_shared.settings import REPO_ROOT

SCHEMAS: dict[str, type[BaseModel]] = {
    "frame-headers.v1.json": FrameHeaders,
    "event.v2.json": EventMessage,
    "job-spec.v1.json": JobSpecDocument,
    "model-manifest.v1.json": ModelManifest,
    "camera-status.v1.json": CameraStatus,
    "model-assignment.v1.json": ModelAssignment,
    "scoring-status.v1.json": ScoringStatus,
    "shadow-score.v1.json": ShadowScore,
}
DEFAULT_DIR = REPO_ROOT / "docs" / "schemas"
RELEASED_DIR = DEFAULT_DIR / "released"


def published_schema(model: type[BaseModel]) -> Schema:
    """A topic's message as consumers may read it (``WireMessage``); any other document (the
    job spec, a request body; the manifest) as the code validates it: strictly."""
    if issubclass(model, WireMessage):
        return model.published_schema()
    return model.model_json_schema(by_alias=True, mode="serialization")


def render(model: type[BaseModel]) -> str:
    schema = published_schema(model)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def export(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, model in SCHEMAS.items():
        path = directory / name
        path.write_text(render(model))
        written.append(path)
    return written


def release(directory: Path = RELEASED_DIR) -> list[Path]:
    """Freeze each schema that differs from its last release; raises on a breaking change."""
    frozen = (
        freeze(directory, name, render(model), message=issubclass(model, WireMessage))
        for name, model in SCHEMAS.items()
    )
    return [path for path in frozen if path is not None]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m vigil_shared.schemas.export")
    parser.add_argument("directory", nargs="?", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--release", action="store_true", help="freeze changed schemas too")
    args = parser.parse_args()
    for path in export(args.directory):
        print(path)
    for path in release(args.directory / "released") if args.release else []:
        print(f"released {path}")
