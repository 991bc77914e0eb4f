"""The published event contract: current, backward compatible, described, and its samples valid."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from vigil_shared.schemas.events import EventMessage
from vigil_shared.schemas.export import DEFAULT_DIR, render
from vigil_shared.settings import REPO_ROOT
from vigil_shared.topics import Topics

DOCS = REPO_ROOT / "docs"
BASELINE = REPO_ROOT / "tests" / "contract" / "event.v2.baseline.json"
CURRENT = DEFAULT_DIR / "event.v2.json"
Schema = dict[str, Any]


def test_published_event_schema_is_generated_from_the_code() -> None:
    assert CURRENT.read_text() == render(EventMessage), (
        "docs/schemas/event.v2.json is stale: run python -m vigil_shared.schemas.export"
    )


def _types(prop: Schema) -> set[str]:
    """What a property may hold, as comparable names: JSON types and referenced definitions."""
    if "$ref" in prop:
        return {prop["$ref"]}
    if "anyOf" in prop:
        return {t for option in prop["anyOf"] for t in _types(option)}
    kind = prop.get("type")
    return set(kind) if isinstance(kind, list) else {kind} if kind else {"any"}


def compatibility_problems(old: Schema, new: Schema, where: str = "") -> list[str]:
    """Why a consumer written against ``old`` could break on ``new`` (empty: compatible)."""
    problems = []
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    for name in old_props.keys() - new_props.keys():
        problems.append(f"{where}{name}: removed")
    for name in set(new.get("required", [])) - set(old.get("required", [])):
        problems.append(f"{where}{name}: newly required")
    for name in old_props.keys() & new_props.keys():
        if _types(old_props[name]) != _types(new_props[name]):
            problems.append(f"{where}{name}: type changed")
    if "enum" in old and not set(old["enum"]) <= set(new.get("enum", [])):
        problems.append(f"{where}enum lost values {set(old['enum']) - set(new.get('enum', []))}")
    for name, definition in old.get("$defs", {}).items():
        if name not in new.get("$defs", {}):
            problems.append(f"$defs/{name}: removed")
        else:
            problems += compatibility_problems(definition, new["$defs"][name], f"$defs/{name}/")
    return problems


def test_the_current_event_schema_is_backward_compatible_with_the_first_v2() -> None:
    old, new = json.loads(BASELINE.read_text()), json.loads(CURRENT.read_text())
    assert compatibility_problems(old, new) == [], "a breaking change needs vigil.event.v3"


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda s: s["properties"].pop("score"), "score: removed"),
        (lambda s: s["required"].append("label"), "label: newly required"),
        (lambda s: s["properties"]["frame_seq"].update(type="string"), "frame_seq: type changed"),
        (lambda s: s["$defs"]["EventPhase"]["enum"].remove("end"), "enum lost values"),
    ],
)
def test_the_compatibility_check_catches_breaking_changes(change: Any, problem: str) -> None:
    old = json.loads(BASELINE.read_text())
    new = json.loads(BASELINE.read_text())
    change(new)
    assert any(problem in p for p in compatibility_problems(old, new))


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
