"""Released versions of the published schemas, frozen, and the rule that links them.

``docs/schemas/<name>.v<N>.json`` is a schema as the code has it now. Each release of it is kept
as ``docs/schemas/released/<name>.v<N>.<R>.json`` (R = 0, 1, ... within version N) and never
edited after: ``SHA256SUMS`` beside them pins every file. A release must not break a consumer of
the one before (``compatibility_problems``); a change that would is a new version N+1, which for a
topic means a new topic (docs/topics.md). ``python -m vigil_shared.schemas.export --release``
freezes every schema that changed since its last release and refuses a breaking one.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

Schema = dict[str, Any]
SUMS = "SHA256SUMS"


class BreakingChangeError(ValueError):
    """A schema change that a consumer of the last release could not read."""


def releases(directory: Path, name: str) -> list[Path]:
    """The released files of ``name`` (e.g. ``event.v2.json``), oldest first."""
    stem = name.removesuffix(".json")
    found = []
    for path in directory.glob(f"{stem}.*.json"):
        revision = path.name.removeprefix(f"{stem}.").removesuffix(".json")
        if revision.isdigit():
            found.append((int(revision), path))
    return [path for _, path in sorted(found)]


def pinned_sums(directory: Path) -> dict[str, str]:
    """File name → sha256 of every released file, as ``SHA256SUMS`` pins them."""
    sums = directory / SUMS
    lines = sums.read_text().splitlines() if sums.is_file() else []
    return {name: digest for digest, name in (line.split("  ", 1) for line in lines if line)}


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def freeze(directory: Path, name: str, text: str, *, message: bool) -> Path | None:
    """Release ``text`` as the next revision of ``name``; None when it is the last one already.

    Raises ``BreakingChangeError`` when a reader of the last release could not read it
    (``message``: a topic's message, see ``compatibility_problems``).
    """
    history = releases(directory, name)
    revision = 0
    if history:
        last = history[-1]
        if last.read_text() == text:
            return None
        old, new = json.loads(last.read_text()), json.loads(text)
        problems = compatibility_problems(old, new, message=message)
        if problems:
            raise BreakingChangeError(
                f"{name} would break consumers of {last.name}: {'; '.join(problems)}. "
                "Keep the change additive, or publish it as a new version (a new topic)."
            )
        revision = int(last.name.removesuffix(".json").rsplit(".", 1)[1]) + 1
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name.removesuffix('.json')}.{revision}.json"
    path.write_text(text)
    with (directory / SUMS).open("a") as sums:
        sums.write(f"{sha256_of(path)}  {path.name}\n")
    return path


def _types(prop: Schema) -> set[str]:
    """What a property may hold, as comparable names: JSON types and referenced definitions."""
    if "$ref" in prop:
        return {prop["$ref"]}
    if "anyOf" in prop:
        return {t for option in prop["anyOf"] for t in _types(option)}
    kind = prop.get("type")
    return set(kind) if isinstance(kind, list) else {kind} if kind else {"any"}


def _enum(prop: Schema) -> set[Any] | None:
    """The values a property may take when it is an enumeration (or one or null)."""
    options = [prop, *prop.get("anyOf", [])]
    values = [v for option in options for v in option.get("enum", [])]
    return set(values) if values else None


def _value_problems(old: Schema, new: Schema, where: str, *, message: bool) -> list[str]:
    problems = []
    if old.get("const") != new.get("const"):
        problems.append(f"{where}constant changed")
    old_enum, new_enum = _enum(old), _enum(new)
    if old_enum is not None and not old_enum <= (new_enum or set()):
        problems.append(f"{where}enum lost values {sorted(old_enum - (new_enum or set()))}")
    if message and old_enum is not None and new_enum is not None and new_enum - old_enum:
        problems.append(f"{where}enum gained values {sorted(new_enum - old_enum)}")
    return problems


def compatibility_problems(
    old: Schema, new: Schema, *, message: bool = False, where: str = ""
) -> list[str]:
    """Why code written against ``old`` could break on ``new`` (empty: compatible).

    Removed or newly required fields, changed types or constants and lost enum values break a
    reader; a schema that stops allowing additional properties breaks the rule that additive
    fields keep a version (``wire``). For a ``message`` (a topic's, read by consumers of older
    releases) a new enum value breaks too: an older consumer refuses a value it does not know.
    """
    problems = _value_problems(old, new, where, message=message)
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    for name in old_props.keys() - new_props.keys():
        problems.append(f"{where}{name}: removed")
    for name in set(new.get("required", [])) - set(old.get("required", [])):
        problems.append(f"{where}{name}: newly required")
    for name in old_props.keys() & new_props.keys():
        if _types(old_props[name]) != _types(new_props[name]):
            problems.append(f"{where}{name}: type changed")
        problems += _value_problems(
            old_props[name], new_props[name], f"{where}{name}: ", message=message
        )
    if old.get("additionalProperties") is not False and new.get("additionalProperties") is False:
        problems.append(f"{where}closed to additional properties")
    for name, definition in old.get("$defs", {}).items():
        if name not in new.get("$defs", {}):
            problems.append(f"$defs/{name}: removed")
        else:
            problems += compatibility_problems(
                definition, new["$defs"][name], message=message, where=f"$defs/{name}/"
            )
    return problems
