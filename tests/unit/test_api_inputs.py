"""One input-validation layer: every string and integer the API takes is bounded and refuses
control characters in its OpenAPI document (so a route added tomorrow with a bare ``str`` or
``int`` fails here), JSON documents are checked for depth, NUL, surrogates and numbers before
they are parsed, and request bodies are counted as they arrive."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.types import Message

from vigil_api.core import problems
from vigil_api.core.middleware import (
    BodyLimit,
    BodyLimitMiddleware,
    JsonBodyGuardMiddleware,
    RequestIdMiddleware,
)
from vigil_api.core.settings import ApiSettings
from vigil_api.main import create_app
from vigil_shared.schemas.inputs import (
    INT64_MAX,
    INT64_MIN,
    TEXT_PATTERN,
    SafeName,
    SafeText,
    json_problem,
    name_problem,
)

CONTROLS = ["\x00", "\x07", "\x1b", "\x7f", "\x85", "\x9b"]
BIDI = ["\u202a", "\u202e", "\u2066", "\u2069", "\u200f", "\u2028"]
UNBOUNDED = re.compile(r"[*+]|\{\d+,\}")


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return create_app(ApiSettings()).openapi()


def input_schemas(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every scalar schema an operation takes (parameters and bodies, nested), with where."""
    components = document["components"]["schemas"]

    def walk(schema: dict[str, Any], where: str, seen: frozenset[str]) -> Iterator[Any]:
        if "$ref" in schema:
            if schema["$ref"] in seen:
                return
            seen = seen | {schema["$ref"]}
            schema = components[schema["$ref"].rsplit("/", 1)[1]]
        for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
            for sub in schema.get(key, []):
                yield from walk(sub, where, seen)
        for name, sub in schema.get("properties", {}).items():
            yield from walk(sub, f"{where}.{name}", seen)
        for key in ("items", "additionalProperties"):
            if isinstance(schema.get(key), dict):
                yield from walk(schema[key], f"{where}[]", seen)
        if schema.get("type") in ("string", "integer"):
            yield where, schema

    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            name = f"{method.upper()} {path}"
            for parameter in operation.get("parameters", []):
                where = f"{name} {parameter['in']}.{parameter['name']}"
                yield from walk(parameter["schema"], where, frozenset())
            for media in operation.get("requestBody", {}).get("content", {}).values():
                yield from walk(media.get("schema", {}), f"{name} body", frozenset())


def string_problem(schema: dict[str, Any]) -> str | None:
    if "enum" in schema or "const" in schema or "format" in schema:
        return None  # a closed set, a uuid, a date-time or a file
    pattern = schema.get("pattern")
    if pattern is None:
        return "no pattern"
    if not (pattern.startswith("^") and pattern.endswith("$")):
        return f"pattern {pattern} is not anchored"
    if "maxLength" not in schema and UNBOUNDED.search(pattern):
        return "no maxLength"
    # Free text may hold bidirectional controls (right-to-left writing); names never.
    refused = CONTROLS if pattern == TEXT_PATTERN else CONTROLS + BIDI
    taken = [c for c in refused if re.fullmatch(pattern, c) or re.fullmatch(pattern, "a" + c)]
    return f"pattern {pattern} lets {[hex(ord(c)) for c in taken]} through" if taken else None


def integer_problem(schema: dict[str, Any]) -> str | None:
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    # Compared as floats: the document writes 2**63 - 1 as a JSON number, 9.223372036854776e18.
    if low is None or high is None or low < float(INT64_MIN) or high > float(INT64_MAX):
        return f"bounds {low}..{high} are not within 64 bits"
    return None


def test_every_string_and_integer_the_api_takes_is_bounded_and_refuses_controls(
    document: dict[str, Any],
) -> None:
    found = {}
    checked = 0
    for where, schema in input_schemas(document):
        checked += 1
        check = string_problem if schema["type"] == "string" else integer_problem
        problem = check(schema)
        if problem is not None:
            found[where] = problem
    assert found == {}
    assert checked > 100  # the walk reached the job spec, not just the query strings


@pytest.mark.parametrize("value", ["a\x00b", "a\u202eb", "line\nbreak", "tab\there", "x" * 129])
def test_a_name_refuses_controls_separators_bidi_and_length(value: str) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(SafeName).validate_python(value)


def test_a_name_says_which_character_it_refuses_and_free_text_keeps_lines() -> None:
    class Spec(BaseModel):
        name: SafeName
        text: SafeText = ""

    assert Spec(name="Lobby, north door é", text="line 1\nline 2\tend\u202e").name
    with pytest.raises(ValidationError, match=r"U\+202E"):
        Spec(name="admin\u202e")
    with pytest.raises(ValidationError, match=r"U\+0000"):
        Spec(name="ok", text="a\x00b")


@pytest.mark.parametrize(
    ("document", "where", "why"),
    [
        ("[" * 100_000 + "]" * 100_000, (), "deeper than 32"),
        ('{"a": [1, {"b": "x\\u0000"}]}', ("a", 1, "b"), "NUL"),
        ('{"a\\u0000": 1}', ("a\x00",), "NUL"),
        ('{"a": "\\ud800"}', ("a",), "surrogate"),
        ('{"a": 9223372036854775808}', ("a",), "64 bits"),
        ('{"a": -9223372036854775809}', ("a",), "64 bits"),
        ('{"a": NaN}', ("a",), "finite"),
        ('{"a": [1e400]}', ("a", 0), "finite"),
    ],
)
def test_json_documents_are_refused_with_where_and_why(
    document: str, where: tuple[str | int, ...], why: str
) -> None:
    refused = json_problem(document.encode())
    assert refused is not None and refused[0] == where and why in refused[1]


@pytest.mark.parametrize(
    "document",
    [
        '{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}',  # brackets inside a string
        '{"a": "x\\\\u0000"}',  # an escaped backslash, then the text u0000
        '{"a": 9223372036854775807, "b": -9223372036854775808, "c": true}',
        "not json at all",  # the route's own parser reports it
    ],
)
def test_acceptable_or_unparseable_documents_pass(document: str) -> None:
    assert json_problem(document.encode()) is None


def test_archive_names_are_names_of_at_most_1024_characters() -> None:
    assert name_problem("normal/clip01/0001.jpg") is None
    assert "1024" in (name_problem("a/" + "b" * 1100 + ".jpg") or "")
    assert "control" in (name_problem("normal/a\x00.jpg") or "")
    assert "bidi" in (name_problem("normal/gpj.\u202eexe.jpg") or "")


def small_app(limit: int) -> FastAPI:
    """An app behind the body middleware, as main.py stacks it; /read counts what it got."""
    app = FastAPI()
    problems.install(app)
    app.state.read = []
    app.add_middleware(JsonBodyGuardMiddleware)
    app.add_middleware(
        BodyLimitMiddleware,
        default=BodyLimit(limit, f"at most {limit} bytes"),
        routes={("POST", "/big"): BodyLimit(limit * 10, "at most ten times more")},
    )
    app.add_middleware(RequestIdMiddleware)

    async def read(request: Request) -> dict[str, int]:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            app.state.read.append(size)
        return {"read": size}

    app.add_api_route("/read", read, methods=["POST"])
    app.add_api_route("/big", read, methods=["POST"])

    @app.post("/json")
    def take(body: dict[str, Any]) -> dict[str, int]:
        return {"keys": len(body)}

    return app


def post_in_chunks(app: FastAPI, path: str, count: int, size: int) -> tuple[int, bytes, int]:
    """POST ``count`` chunks of ``size`` bytes without a Content-Length, one ``receive`` each
    (as a server hands over ``Transfer-Encoding: chunked``); the status, the response body and
    how many chunks the app took."""
    taken = 0
    sent: list[Message] = []

    async def receive() -> Message:
        nonlocal taken
        taken += 1
        return {"type": "http.request", "body": b"x" * size, "more_body": taken < count}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"transfer-encoding", b"chunked"), (b"content-type", b"text/plain")],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
    }
    asyncio.run(app(scope, receive, send))
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], body, taken


def test_a_chunked_body_is_refused_once_it_passes_the_limit_and_never_read_past_it() -> None:
    app = small_app(1000)
    status, body, taken = post_in_chunks(app, "/read", count=50, size=100)
    assert status == 413 and json.loads(body)["detail"] == "at most 1000 bytes"
    assert taken == 11  # the chunk that passed the limit was the last one taken
    assert app.state.read == [100 * n for n in range(1, 11)]  # the route never got byte 1001
    assert post_in_chunks(small_app(1000), "/read", count=10, size=100)[:2] == (
        200,
        b'{"read":1000}',
    )
    assert post_in_chunks(small_app(1000), "/big", count=50, size=100)[:2] == (
        200,
        b'{"read":5000}',
    )


def test_a_declared_length_over_the_limit_is_refused_before_reading() -> None:
    app = small_app(1000)
    with TestClient(app) as client:
        response = client.post("/read", content=b"x" * 1001)
        assert response.status_code == 413 and app.state.read == []


def test_a_hostile_json_body_is_a_422_naming_where_and_a_good_one_passes() -> None:
    with TestClient(small_app(10**7)) as client:
        deep = client.post(
            "/json",
            content="[" * 100_000 + "]" * 100_000,
            headers={"content-type": "application/json"},
        )
        assert deep.status_code == 422 and "deeper than 32" in deep.json()["detail"]
        nul = client.post("/json", content=b'{"a": {"b": "\\u0000"}}')
        assert nul.status_code == 422 and nul.json()["errors"][0]["field"] == "body.a.b"
        assert client.post("/json", json={"a": 1, "b": "é\u202e"}).json() == {"keys": 2}
