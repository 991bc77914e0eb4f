"""What untrusted input may hold, in one place: names, free text, integers, JSON documents.

Names and ids (a key's name, a camera's name, a job's name, a group) are one line of text that
people read and compare, so they refuse every control character (C0, DEL, C1), line and
paragraph separators, and the bidirectional marks, embeddings, overrides and isolates (U+061C,
U+200E-200F, U+202A-202E, U+2066-2069) with which ``admin`` can be made to look like another
name. Free text (a description, a note) may hold tabs and line breaks, and bidirectional
controls, which right-to-left writing uses; it refuses NUL, the other C0 controls, DEL and C1.
PostgreSQL cannot store NUL in text at all, so nothing anywhere may carry it.

Integers are bounded to what PostgreSQL's ``bigint`` holds, and a JSON document (a request body,
an archive's manifest) is refused before it is parsed when it nests deeper than
``MAX_JSON_DEPTH``, and after when it holds a NUL or an unpaired surrogate in a string, a
non-finite number or an integer beyond 64 bits (``json_problem``).

The patterns are plain character classes that Python, pydantic's Rust engine and ECMAScript read
alike, so the OpenAPI document states exactly what the server checks.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator
from typing import Annotated, Any

from pydantic import AfterValidator, Field, StringConstraints

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
MAX_JSON_DEPTH = 32
NAME_MAX_LENGTH = 128
TEXT_MAX_LENGTH = 2000

# Characters no name may hold: controls, separators and bidirectional formatting.
NAME_FORBIDDEN = r"\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069"
# Characters no free text may hold: controls other than tab, line feed and carriage return.
_TEXT_FORBIDDEN = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
NAME_PATTERN = rf"^[^{NAME_FORBIDDEN}]+$"
TEXT_PATTERN = rf"^[^{_TEXT_FORBIDDEN}]*$"

_NAME_CHECK = re.compile(NAME_PATTERN)
_TEXT_CHECK = re.compile(TEXT_PATTERN)


def _refuse(pattern: re.Pattern[str], what: str) -> Callable[[str], str]:
    """A validator naming the first character ``pattern`` refuses (pydantic's own message
    would quote the pattern, which no one can read)."""

    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            bad = next((c for c in value if not pattern.fullmatch(c)), "")
            raise ValueError(f"{what} (U+{ord(bad):04X} found)" if bad else what)
        return value

    return check


# A name's check and what the OpenAPI document says of it (the validator checks the pattern,
# in words); ``SafeName`` bundles them, a longer name takes them with its own length.
ONE_LINE = AfterValidator(
    _refuse(_NAME_CHECK, "must be one line without control, separator or bidi characters")
)
ONE_LINE_SCHEMA = Field(json_schema_extra={"pattern": NAME_PATTERN})
SafeName = Annotated[
    str, StringConstraints(min_length=1, max_length=NAME_MAX_LENGTH), ONE_LINE, ONE_LINE_SCHEMA
]
SafeText = Annotated[
    str,
    StringConstraints(max_length=TEXT_MAX_LENGTH),
    AfterValidator(
        _refuse(_TEXT_CHECK, "may hold tabs and line breaks but no other control character")
    ),
    Field(json_schema_extra={"pattern": TEXT_PATTERN}),
]
Int64 = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]
RowId = Annotated[int, Field(ge=0, le=INT64_MAX)]

_STRUCTURE = re.compile(r'\\.|["\[\]{}]', re.DOTALL)
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def name_problem(value: str) -> str | None:
    """Why ``value`` cannot be a name (an archive entry, a group); None when it can."""
    if len(value) > 1024:
        return f"is {len(value)} characters long; names are at most 1024"
    if not _NAME_CHECK.fullmatch(value):
        return "holds a control, separator or bidirectional formatting character"
    return None


def too_deep(text: str, max_depth: int = MAX_JSON_DEPTH) -> bool:
    """Whether a JSON text nests arrays and objects deeper than ``max_depth``, found without
    parsing it (Python's parser recurses, so a deep enough document exhausts its stack)."""
    depth = 0
    in_string = False
    for match in _STRUCTURE.finditer(text):
        token = match.group()
        if token == '"':
            in_string = not in_string
        elif in_string or token[0] == "\\":
            continue
        elif token in "[{":
            depth += 1
            if depth > max_depth:
                return True
        else:
            depth -= 1
    return False


def json_problem(text: str | bytes) -> tuple[tuple[str | int, ...], str] | None:
    """Where and why a JSON document is refused, or None when it is acceptable or not JSON at
    all (the caller's own parser reports that)."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            return None
    if too_deep(text):
        return (), f"nests deeper than {MAX_JSON_DEPTH} levels of arrays and objects"
    try:
        document = json.loads(text, parse_constant=lambda name: float("nan"))
    except (ValueError, RecursionError):
        return None
    for location, value in _leaves(document, ()):
        problem = _leaf_problem(value)
        if problem is not None:
            return location, problem
    return None


def _leaves(
    value: Any, location: tuple[str | int, ...]
) -> Iterator[tuple[tuple[str | int, ...], Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield (*location, key), key
            yield from _leaves(item, (*location, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, (*location, index))
    else:
        yield location, value


def _leaf_problem(value: Any) -> str | None:
    if isinstance(value, str):
        if "\x00" in value:
            return "holds a NUL character (\\u0000)"
        if _SURROGATE.search(value):
            return "holds an unpaired UTF-16 surrogate"
    elif isinstance(value, bool):
        return None
    elif isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
        return f"{value} does not fit in 64 bits ({INT64_MIN} to {INT64_MAX})"
    elif isinstance(value, float) and not math.isfinite(value):
        return "is not a finite number"
    return None
