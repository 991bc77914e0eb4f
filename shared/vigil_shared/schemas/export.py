"""Writes the JSON Schemas of the wire contract to ``docs/schemas``.

``python -m vigil_shared.schemas.export [DIR]``; a test fails when the committed files differ
from the models, so the published contract cannot drift from the code.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pydantic import BaseModel

from vigil_shared.schemas.assignments import ModelAssignment
from vigil_shared.schemas.camera_status import CameraStatus
from vigil_shared.schemas.events import EventMessage
from vigil_shared.schemas.frames import FrameHeaders
from vigil_shared.schemas.jobs import JobSpecDocument
from vigil_shared.schemas.manifests import ModelManifest
from vigil_shared.settings import REPO_ROOT

SCHEMAS: dict[str, type[BaseModel]] = {
    "frame-headers.v1.json": FrameHeaders,
    "event.v2.json": EventMessage,
    "job-spec.v1.json": JobSpecDocument,
    "model-manifest.v1.json": ModelManifest,
    "camera-status.v1.json": CameraStatus,
    "model-assignment.v1.json": ModelAssignment,
}
DEFAULT_DIR = REPO_ROOT / "docs" / "schemas"


def render(model: type[BaseModel]) -> str:
    schema = model.model_json_schema(by_alias=True, mode="serialization")
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


if __name__ == "__main__":
    for path in export(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_DIR):
        print(path)
