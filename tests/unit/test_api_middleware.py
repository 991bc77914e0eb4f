"""Request ids and request metrics on a small app: the id is taken or made, returned, in every
log line of the request and in problem details; metrics are per route template."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from vigil_api.core import problems
from vigil_api.core.middleware import MetricsMiddleware, RequestIdMiddleware
from vigil_shared.logging import JsonFormatter

log = logging.getLogger("test_api_middleware")


def make_app() -> FastAPI:
    app = FastAPI()
    problems.install(app)
    app.add_middleware(MetricsMiddleware)
    app.add_middleware(RequestIdMiddleware)

    @app.get("/things/{thing_id}")
    def get_thing(thing_id: int) -> dict[str, int]:  # sync: runs in the thread pool
        log.info("looking up a thing")
        if thing_id == 404:
            raise HTTPException(404, "thing 404 does not exist")
        if thing_id == 500:
            raise RuntimeError("the database fell over")
        return {"id": thing_id}

    return app


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(make_app(), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("api"))
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    root.setLevel(old_level)


def lines_with(stream: io.StringIO, message: str) -> list[dict[str, str]]:
    entries = [json.loads(line) for line in stream.getvalue().splitlines()]
    return [e for e in entries if e["msg"] == message]


def test_a_valid_request_id_is_kept_and_bound_into_the_logs(
    client: TestClient, log_lines: io.StringIO
) -> None:
    response = client.get("/things/1", headers={"X-Request-ID": "proxy-7f3a.42"})
    assert response.headers["X-Request-ID"] == "proxy-7f3a.42"
    assert lines_with(log_lines, "looking up a thing")[0]["request_id"] == "proxy-7f3a.42"


@pytest.mark.parametrize("presented", [None, "", "has spaces", "x" * 129, "semi;colon"])
def test_a_missing_or_invalid_request_id_is_replaced(
    client: TestClient, log_lines: io.StringIO, presented: str | None
) -> None:
    headers = {} if presented is None else {"X-Request-ID": presented}
    response = client.get("/things/1", headers=headers)
    made = response.headers["X-Request-ID"]
    assert made != presented and len(made) == 32
    assert lines_with(log_lines, "looking up a thing")[-1]["request_id"] == made


def test_problems_name_the_request_even_for_an_unexpected_error(
    client: TestClient, log_lines: io.StringIO
) -> None:
    for path, status in (("/things/404", 404), ("/things/x", 422), ("/things/500", 500)):
        response = client.get(path)
        assert response.status_code == status
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert body["request_id"] == response.headers["X-Request-ID"], path
        assert body["instance"] == path
    assert "fell over" not in body["detail"]  # the 500 hides internals, the log keeps them
    logged = lines_with(log_lines, "unhandled error")[0]
    assert logged["request_id"] == body["request_id"] and "fell over" in logged["exc"]


def test_metrics_count_by_route_template_not_by_path(client: TestClient) -> None:
    def count(route: str, status: str) -> float:
        labels = {"method": "GET", "route": route, "status": status}
        return REGISTRY.get_sample_value("vigil_api_requests_total", labels) or 0.0

    before = count("/things/{thing_id}", "200"), count("unmatched", "404")
    client.get("/things/1")
    client.get("/things/2")
    client.get("/no/such/path")
    assert count("/things/{thing_id}", "200") == before[0] + 2
    assert count("unmatched", "404") == before[1] + 1
    latency = REGISTRY.get_sample_value(
        "vigil_api_request_seconds_count", {"method": "GET", "route": "/things/{thing_id}"}
    )
    assert latency is not None and latency >= 2
