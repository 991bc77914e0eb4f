"""Property-based fuzzing of the whole OpenAPI document with Schemathesis, in process against the
app with its real PostgreSQL, Redis, S3 and Kafka, called with the admin key: no request may
cause a 5xx, and every response must match what the document declares (status code, content
type, headers, body schema). A bounded number of examples per operation keeps it to about two
minutes on a small CPU; ``VIGIL_FUZZ_EXAMPLES`` raises it for a deeper run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.integration.conftest import ADMIN_KEY
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
