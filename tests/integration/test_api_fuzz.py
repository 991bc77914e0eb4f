"""Property-based fuzzing of the whole OpenAPI document with Schemathesis, in process against the
app with its real PostgreSQL, Redis, S3 and Kafka, called with the admin key: no request may
cause a 5xx, and every response must match what the document declares (status code, content
type, headers, body schema). A bounded number of examples per operation keeps it to about two
minutes on a small CPU; ``VIGIL_FUZZ_EXAMPLES`` raises it for a deeper run.

The red-team pass takes one valid request per operation and sends it again with what attackers
sent (issue 16): NUL, bidi overrides, escapes and line breaks in every path and query parameter
and every string of the body, integers past 64 bits in every integer, a body nested 100 000
deep, an array where an object belongs, and the body sent chunked without a length. The same
checks apply: no 5xx, no status the document does not declare.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core import NOT_SET
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.integration.conftest import ADMIN_KEY
from tests.integration.test_api_routes_auth import body_example
from vigil_api.core.settings import ApiSettings
from vigil_api.main import create_app
from vigil_api.routes.event_stream import StreamLimits, get_stream_limits

EXAMPLES = int(os.environ.get("VIGIL_FUZZ_EXAMPLES", "6"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def fuzzed_app(test_environment: None) -> Iterator[FastAPI]:
    """The app started once (lifespan entered) for every generated request of this module."""
    app = create_app(ApiSettings())
    # A live stream would run for minutes per request; here each ends after a moment.
    app.dependency_overrides[get_stream_limits] = lambda: StreamLimits(
        poll_s=0.02, settle_s=0, max_duration_s=0.05
    )
    with TestClient(app):
        yield app


@pytest.fixture(scope="module")
def fuzz_schema(fuzzed_app: FastAPI) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", fuzzed_app)


def cases() -> list[tuple[GenerationMode, str]]:
    """Every operation of the document, read when tests are collected: valid requests for all,
    invalid ones for those that take something (a request without inputs has no invalid form)."""
    paths = create_app(ApiSettings()).openapi()["paths"]
    found = []
    for path, ops in paths.items():
        for method, op in ops.items():
            label = f"{method.upper()} {path}"
            found.append((GenerationMode.POSITIVE, label))
            if op.get("parameters") or op.get("requestBody"):
                found.append((GenerationMode.NEGATIVE, label))
    return found


@pytest.mark.parametrize(("mode", "label"), cases(), ids=lambda v: str(v))
def test_no_server_errors_and_responses_match_the_document(
    fuzz_schema: Any, label: str, mode: GenerationMode
) -> None:
    operation = fuzz_schema.find_operation_by_label(label)
    assert operation is not None, label
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case: Any) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    fuzz()


HOSTILE_TEXT = ["\x00", "a\x00b", "\u202eevil", "a\u2066b\u2069", "two\nlines", "\x1b[31m"]
HOSTILE_INTEGERS = [2**63, -(2**63) - 1, 10**30]
LONE_SURROGATE = "\ud800"  # only a JSON body can carry one (as \\ud800)
DEEP_JSON = "[" * 100_000 + "]" * 100_000
MAX_BODY_LEAVES = 16  # strings and integers of one body attacked, in document order
HEADERS = {"Authorization": f"Bearer {ADMIN_KEY}"}


def parameter_attacks(operation: dict[str, Any]) -> Iterator[tuple[str, str, Any]]:
    """(location, name, value) for every path and query parameter and every hostile value."""
    for parameter in operation.get("parameters", []):
        if parameter["in"] not in ("path", "query"):
            continue  # a header cannot carry NUL or a line break at all
        schema = json.dumps(parameter["schema"])
        values: list[Any] = list(HOSTILE_TEXT)
        if '"integer"' in schema:
            values += HOSTILE_INTEGERS
        is_list = '"array"' in schema and parameter["in"] == "query"
        for value in values:
            yield parameter["in"], parameter["name"], [value] if is_list else value


def body_leaves(body: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    if isinstance(body, dict):
        for key, value in body.items():
            yield from body_leaves(value, (*path, key))
    elif isinstance(body, list):
        for index, value in enumerate(body):
            yield from body_leaves(value, (*path, index))
    elif isinstance(body, str | int) and not isinstance(body, bool):
        yield path, body


def replaced(body: Any, path: tuple[Any, ...], value: Any) -> Any:
    copy = json.loads(json.dumps(body))
    target = copy
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return copy


def body_attacks(body: Any) -> Iterator[tuple[str, Any]]:
    for path, leaf in list(body_leaves(body))[:MAX_BODY_LEAVES]:
        values = [*HOSTILE_TEXT, LONE_SURROGATE] if isinstance(leaf, str) else HOSTILE_INTEGERS
        for value in values:
            yield f"body{list(path)} = {value!r}", replaced(body, path, value)
    yield "an array instead of the body", [body]


def raw_attacks(body: Any) -> Iterator[tuple[str, Any]]:
    """Bodies the case's own serialisation cannot send: nested too deep, and chunked."""
    yield "a body nested 100 000 deep", DEEP_JSON
    encoded = json.dumps(body).encode()
    yield "the body sent chunked", iter([encoded[i : i + 7] for i in range(0, len(encoded), 7)])


def sent(what: str, request: Callable[[], object]) -> None:
    try:
        request()
    except BaseException as exc:
        exc.add_note(f"red-team request: {what}")
        raise


def attack(
    case: Any, document: dict[str, Any], document_op: dict[str, Any], client: TestClient
) -> None:
    """Send ``case`` again with every hostile value in every place, and check each answer. A
    JSON body starts from the operation's documented example, so that each hostile value is
    the only thing wrong with the request (a generated body is often refused for another field
    first, which would hide what the hostile value does)."""
    operation = case.operation
    json_body = case.media_type == "application/json" and case.body is not None
    if json_body:
        case.body = body_example(document, document_op) or case.body
    body = case.body if json_body else NOT_SET

    def variant(**changes: Any) -> Any:
        fields = {"path_parameters": case.path_parameters, "query": case.query, "body": body}
        return operation.Case(media_type=case.media_type, **(fields | changes))

    for where, name, value in parameter_attacks(document_op):
        field = "path_parameters" if where == "path" else "query"
        hostile = variant(**{field: getattr(case, field) | {name: value}})
        sent(
            f"{where}.{name} = {value!r}",
            partial(hostile.call_and_validate, headers=HEADERS, checks=CHECKS),
        )
    if not json_body:
        return
    for what, hostile_body in body_attacks(case.body):
        hostile = variant(body=hostile_body)
        sent(what, partial(hostile.call_and_validate, headers=HEADERS, checks=CHECKS))
    for what, content in raw_attacks(case.body):

        def send(content: Any = content) -> None:
            response = client.request(
                case.method,
                case.formatted_path,
                params=case.query,
                content=content,
                headers=HEADERS | {"content-type": "application/json"},
            )
            case.validate_response(response, checks=CHECKS)

        sent(what, send)


POSITIVE_LABELS = [label for mode, label in cases() if mode is GenerationMode.POSITIVE]


@pytest.mark.parametrize("label", POSITIVE_LABELS)
def test_red_team_inputs_cause_no_server_error_and_only_documented_statuses(
    fuzzed_app: FastAPI, fuzz_schema: Any, label: str
) -> None:
    operation = fuzz_schema.find_operation_by_label(label)
    assert operation is not None, label
    method, path = label.split(" ", 1)
    document = fuzzed_app.openapi()
    document_op = document["paths"][path][method.lower()]
    client = TestClient(fuzzed_app)

    @given(case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE))
    @settings(
        max_examples=1,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def one_valid_request_made_hostile(case: Any) -> None:
        attack(case, document, document_op, client)

    one_valid_request_made_hostile()
