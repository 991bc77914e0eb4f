"""The published contract: current, compatible with every schema's last release (frozen files),
described, and its samples valid."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from vigil_shared.schemas.events import EventMessage
from vigil_shared.schemas.export import DEFAULT_DIR, RELEASED_DIR, SCHEMAS, render
from vigil_shared.schemas.releases import (
    BreakingChangeError,
    compatibility_problems,
    freeze,
    pinned_sums,
    releases,
    sha256_of,
)
from vigil_shared.schemas.wire import WireMessage
from vigil_shared.settings import REPO_ROOT
from vigil_shared.topics import Topics

DOCS = REPO_ROOT / "docs"
FIRST_V2 = RELEASED_DIR / "event.v2.0.json"
CURRENT = DEFAULT_DIR / "event.v2.json"
Schema = dict[str, Any]


def is_message(name: str) -> bool:
    """A topic's message: read by consumers of older releases (``WireMessage``)."""
    return issubclass(SCHEMAS[name], WireMessage)


def test_published_event_schema_is_generated_from_the_code() -> None:
    assert CURRENT.read_text() == render(EventMessage), (
        "docs/schemas/event.v2.json is stale: run python -m vigil_shared.schemas.export"
    )


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_every_schema_is_backward_compatible_with_its_last_release(name: str) -> None:
    history = releases(RELEASED_DIR, name)
    assert history, f"{name} was never released: python -m vigil_shared.schemas.export --release"
    old, new = json.loads(history[-1].read_text()), json.loads((DEFAULT_DIR / name).read_text())
    assert compatibility_problems(old, new, message=is_message(name)) == [], (
        f"a change that breaks {history[-1].name} needs a new version (for a topic: a new topic)"
    )


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_every_release_kept_the_consumers_of_the_one_before(name: str) -> None:
    history = [json.loads(path.read_text()) for path in releases(RELEASED_DIR, name)]
    for old, new in itertools.pairwise(history):
        assert compatibility_problems(old, new, message=is_message(name)) == []


def test_released_schemas_are_never_edited() -> None:
    released = {p.name for p in RELEASED_DIR.glob("*.json")}
    pinned = pinned_sums(RELEASED_DIR)
    assert set(pinned) == released, "release with python -m vigil_shared.schemas.export --release"
    edited = sorted(name for name in released if sha256_of(RELEASED_DIR / name) != pinned[name])
    assert edited == [], "a released schema is frozen: release a new revision instead"


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda s: s["properties"].pop("score"), "score: removed"),
        (lambda s: s["required"].append("label"), "label: newly required"),
        (lambda s: s["properties"]["frame_seq"].update(type="string"), "frame_seq: type changed"),
        (lambda s: s["$defs"]["EventPhase"]["enum"].remove("end"), "enum lost values"),
        (lambda s: s["properties"]["schema"].update(const="x"), "schema: constant changed"),
        (lambda s: s.update(additionalProperties=False), "closed to additional properties"),
        (
            lambda s: s["$defs"]["ModelRef"]["properties"]["kind"]["enum"].remove("warmup"),
            "kind: enum lost values ['warmup']",
        ),
        (lambda s: s["$defs"]["EventPhase"]["enum"].append("pause"), "enum gained values"),
    ],
)
def test_the_compatibility_check_catches_breaking_changes(change: Any, problem: str) -> None:
    old = json.loads(CURRENT.read_text())
    new = json.loads(CURRENT.read_text())
    change(new)
    assert any(problem in p for p in compatibility_problems(old, new, message=True))


def test_a_new_enum_value_breaks_only_a_message() -> None:
    old = {"properties": {"state": {"enum": ["online", "offline"], "type": "string"}}}
    new = {"properties": {"state": {"enum": ["online", "offline", "degraded"], "type": "string"}}}
    assert compatibility_problems(old, new, message=False) == []  # a request body takes more
    assert compatibility_problems(old, new, message=True) == [
        "state: enum gained values ['degraded']"  # an older consumer refuses it
    ]


def test_the_first_v2_is_kept_as_it_was_released() -> None:
    first = json.loads(FIRST_V2.read_text())
    assert first["additionalProperties"] is False  # what v2.1 opened (docs/topics.md)
    assert compatibility_problems(first, json.loads(CURRENT.read_text()), message=True) == []


def test_a_release_freezes_changes_only_and_refuses_a_breaking_one(tmp_path: Path) -> None:
    schema = json.loads(CURRENT.read_text())

    def release() -> Path | None:
        return freeze(tmp_path, "event.v2.json", json.dumps(schema), message=True)

    assert release() == tmp_path / "event.v2.0.json"
    assert release() is None
    schema["properties"]["added_by_this_test"] = {"type": "string"}
    assert release() == tmp_path / "event.v2.1.json"
    del schema["properties"]["score"]
    with pytest.raises(BreakingChangeError, match="score: removed"):
        release()
    assert [p.name for p in releases(tmp_path, "event.v2.json")] == list(pinned_sums(tmp_path))
    assert all(
        sha256_of(tmp_path / name) == digest for name, digest in pinned_sums(tmp_path).items()
    )


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "$ref"] + [
            r for v in node.values() for r in _refs(v)
        ]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def _resolve(document: Any, pointer: str) -> Any:
    node = document
    for part in filter(None, pointer.lstrip("/").split("/")):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def test_asyncapi_names_exactly_the_topics_and_every_ref_resolves() -> None:
    document = yaml.safe_load((DOCS / "asyncapi.yaml").read_text())
    assert document["asyncapi"].startswith("3.")
    addresses = sorted(channel["address"] for channel in document["channels"].values())
    assert addresses == sorted(Topics().all())
    for ref in _refs(document):
        target, _, pointer = ref.partition("#")
        if target:
            path = DOCS / target
            assert path.is_file(), f"asyncapi.yaml refers to missing {target}"
            _resolve(json.loads(path.read_text()), pointer)
        else:
            _resolve(document, pointer)


SAMPLE_SCHEMAS = {
    "vigil.event.v2": "event.v2.json",
    "vigil.camera-status.v1": "camera-status.v1.json",
    "vigil.model-assignment.v1": "model-assignment.v1.json",
    "vigil.scoring-status.v1": "scoring-status.v1.json",
    "vigil.shadow-score.v1": "shadow-score.v1.json",
}


def samples() -> list[dict[str, Any]]:
    text = (DOCS / "topics.md").read_text()
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)```", text, re.S)]


def test_topics_md_shows_an_event_of_each_phase_a_reader_needs() -> None:
    phases = {s["phase"] for s in samples() if s.get("schema") == "vigil.event.v2"}
    assert {"start", "end"} <= phases


@pytest.mark.parametrize("sample", samples(), ids=lambda s: f"{s['schema']}")
def test_samples_in_topics_md_validate_against_their_schema(sample: dict[str, Any]) -> None:
    schema_file = SAMPLE_SCHEMAS.get(sample["schema"])
    assert schema_file, f"topics.md shows a {sample['schema']} sample with no known schema"
    schema = json.loads((DEFAULT_DIR / schema_file).read_text())
    errors = [e.message for e in Draft202012Validator(schema).iter_errors(sample)]
    assert errors == []
    if sample["schema"] == "vigil.event.v2":
        EventMessage.model_validate(sample)  # the code accepts it too (cross-field rules)
