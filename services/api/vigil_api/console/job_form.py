"""A job form made from the job spec's JSON Schema (``vigil_shared.schemas.jobs.JobSpec``).

Each task is one variant of the schema. Its scalar fields (text, numbers, choices, switches),
including those one object down (``dataset.name``, ``appearance.k``), become inputs with the
schema's default and description; what a form cannot say simply (lists, unions of objects) is
left to an optional JSON box merged over the form. The API validates the spec as always, so the
form never has to be complete: a field it leaves out takes the schema's default.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from typing import Any

from pydantic import TypeAdapter

from vigil_shared.schemas.jobs import JobSpec

SCALARS = {"string", "integer", "number", "boolean"}


@dataclass(frozen=True)
class Field:
    name: str  # dotted: "dataset.name"
    kind: str  # string, integer, number, boolean
    required: bool
    default: Any
    choices: tuple[Any, ...]
    description: str


@cache
def task_schemas() -> dict[str, dict[str, Any]]:
    """Each task's variant of the spec, by its ``task`` constant."""
    schema = TypeAdapter(JobSpec).json_schema()
    defs = schema["$defs"]
    variants = [defs[ref["$ref"].rsplit("/", 1)[1]] for ref in schema["oneOf"]]
    return {v["properties"]["task"]["const"]: _resolved(v, defs) for v in variants}


def _resolved(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        return defs[node["$ref"].rsplit("/", 1)[1]]  # type: ignore[no-any-return]
    options = [o for o in node.get("anyOf", []) if o.get("type") != "null"]
    if len(options) == 1:  # X or null: an optional X
        return {**node, **_resolved(options[0], defs), "nullable": True}
    return node


def fields(task: str) -> list[Field]:
    schema = task_schemas()[task]
    return list(_fields(schema, prefix="", defs=TypeAdapter(JobSpec).json_schema()["$defs"]))


def _fields(schema: dict[str, Any], *, prefix: str, defs: dict[str, Any]) -> Any:
    required = set(schema.get("required", []))
    for name, raw in schema.get("properties", {}).items():
        prop = _resolved(raw, defs)
        if name == "task":
            continue
        kind = prop.get("type")
        if kind in SCALARS:
            yield Field(
                name=prefix + name,
                kind=kind,
                required=name in required,
                default=prop.get("default"),
                choices=tuple(prop.get("enum", ())),
                description=str(prop.get("description") or raw.get("description") or ""),
            )
        elif kind == "object" and not prefix:  # one level down, then the JSON box
            yield from _fields(prop, prefix=f"{name}.", defs=defs)


def spec_from_form(task: str, form: dict[str, str]) -> dict[str, Any]:
    """The spec a submitted form describes: filled fields typed as the schema says, nested by
    their dotted names, the JSON box merged over them. Raises ValueError saying what is wrong."""
    spec: dict[str, Any] = {"task": task}
    for field in fields(task):
        text = form.get(field.name, "").strip()
        if not text:
            continue
        node = spec
        *parents, leaf = field.name.split(".")
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = _typed(field, text)
    extra = form.get("extra", "").strip()
    if extra:
        try:
            more = json.loads(extra)
        except ValueError as exc:
            raise ValueError(f"the JSON box is not JSON: {exc}") from exc
        if not isinstance(more, dict):
            raise ValueError('the JSON box holds an object: {"field": value, ...}')
        _merge(spec, more)
    return spec


def _typed(field: Field, text: str) -> Any:
    try:
        if field.kind == "integer":
            return int(text)
        if field.kind == "number":
            return float(text)
    except ValueError as exc:
        kind = "an integer" if field.kind == "integer" else "a number"
        raise ValueError(f"{field.name}: {text!r} is not {kind}") from exc
    if field.kind == "boolean":
        return text.lower() in {"true", "on", "1", "yes"}
    return text


def _merge(into: dict[str, Any], more: dict[str, Any]) -> None:
    for key, value in more.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value
