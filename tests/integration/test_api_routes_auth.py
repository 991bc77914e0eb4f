"""Auth coverage read from the app's own route table, so a route added tomorrow is checked
without anyone editing a list: 401 without a key, with an unknown key and with a revoked key;
403 for every role weaker than the one the route asks for; a camera-scoped key refused (403) or
told "not found" (404) for another camera's data on every route that takes a camera or an event.

The role a route needs is read from its ``Require`` dependency; the cameras and events it takes,
from its OpenAPI parameters. The first test fails if the parametrized table and the running
app's document ever disagree, so no route can be skipped silently.
"""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from tests.factories import add_rows, make_camera, make_event, new_id
from tests.integration.conftest import IssueKey, bearer
from vigil_api.core.auth import Require
from vigil_api.core.security import Role
from vigil_api.core.settings import ApiSettings
from vigil_api.main import create_app
from vigil_api.routes.event_stream import StreamLimits, get_stream_limits
from vigil_shared.logging import JsonFormatter

PUBLIC = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics")}
# Routes outside the OpenAPI document that need no key: the console's HTML shells (they hold no
# data; every fragment they load does need the key).
PUBLIC_PAGES = {("GET", "/console"), ("GET", "/console/{page}")}
CAMERA_PARAMS = {"camera_id", "event_id"}


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    role: Role  # the weakest role allowed
    fleet_wide: bool  # a camera-scoped key is refused outright
    path_params: dict[str, dict[str, Any]]  # name -> JSON schema
    query_params: frozenset[str]
    body: Any  # the request body's first OpenAPI example; None when it takes no body

    @property
    def takes_camera(self) -> bool:
        return bool(CAMERA_PARAMS & (set(self.path_params) | self.query_params))

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def _requirements(dependant: Dependant) -> Iterator[Require]:
    if isinstance(dependant.call, Require):
        yield dependant.call
    for sub in dependant.dependencies:
        yield from _requirements(sub)


def body_example(document: dict[str, Any], operation: dict[str, Any]) -> Any:
    content = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if content is None:
        return None
    if "example" in content:
        return content["example"]
    schema = content["schema"]
    if "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema.get("examples", [{}])[0]


def route_table(app: FastAPI) -> list[Operation]:
    """Every keyed operation of ``app``, with the role and scope its dependencies ask for."""
    full = app.openapi()
    document = full["paths"]
    table: list[Operation] = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue  # the console's routes: test_routes_outside_the_document_need_a_key
        for method in sorted(context.methods or ()):
            path = str(context.path)
            if (method, path) in PUBLIC:
                continue
            requires = list(_requirements(route.dependant))
            operation = document[path][method.lower()]
            parameters = operation.get("parameters", [])
            table.append(
                Operation(
                    method=method,
                    path=path,
                    role=max((r.role for r in requires), key=lambda r: r.rank, default=Role.VIEWER),
                    fleet_wide=any(r.fleet_wide for r in requires),
                    path_params={p["name"]: p["schema"] for p in parameters if p["in"] == "path"},
                    query_params=frozenset(p["name"] for p in parameters if p["in"] == "query"),
                    body=body_example(full, operation),
                )
            )
    return table


OPERATIONS = route_table(create_app(ApiSettings()))
WEAKER = [(op, weak) for op in OPERATIONS for weak in Role if not weak.includes(op.role)]
SCOPED = [op for op in OPERATIONS if op.takes_camera and not op.fleet_wide]


@dataclass(frozen=True)
class OtherCamera:
    camera_id: str
    event_id: uuid.UUID


@pytest.fixture
def client(api: TestClient) -> Iterator[TestClient]:
    """The running app without a default key; live streams end after a moment."""
    api.app.dependency_overrides[get_stream_limits] = lambda: StreamLimits(  # type: ignore[attr-defined]
        poll_s=0.05, settle_s=0, max_duration_s=0.2
    )
    yield TestClient(api.app)
    api.app.dependency_overrides.clear()  # type: ignore[attr-defined]


@pytest.fixture
def other(sessions: sessionmaker[Session]) -> OtherCamera:
    """A camera and an event a camera-scoped key must not reach."""
    camera = make_camera(new_id("other"), name="other")
    event = make_event(camera.id)
    add_rows(sessions, [camera, event])
    return OtherCamera(camera_id=camera.id, event_id=event.event_id)


def _value(name: str, schema: dict[str, Any], other: OtherCamera | None) -> str:
    if other is not None and name == "camera_id":
        return other.camera_id
    if other is not None and name == "event_id":
        return str(other.event_id)
    if schema.get("format") == "uuid":
        return str(uuid.uuid4())
    if schema.get("type") == "integer":
        return "1"
    return f"x{uuid.uuid4().hex[:8]}"


def call(
    client: TestClient,
    op: Operation,
    headers: dict[str, str] | None = None,
    other: OtherCamera | None = None,
) -> httpx2.Response:
    url = op.path.format(**{n: _value(n, s, other) for n, s in op.path_params.items()})
    params = {"camera_id": other.camera_id} if other and "camera_id" in op.query_params else None
    # A valid body (the documented example), so a refusal cannot hide behind a 422.
    return client.request(op.method, url, headers=headers, params=params, json=op.body)


def test_the_table_is_every_operation_of_the_running_app(api: TestClient) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    running = {(m.upper(), p) for p, ops in paths.items() for m in ops}
    assert running - {(op.method, op.path) for op in OPERATIONS} == PUBLIC
    assert len(OPERATIONS) == len(running) - len(PUBLIC)
    assert SCOPED, "no route takes a camera or an event: the scope tests would check nothing"
    for op in OPERATIONS:  # clients generated from the document know to send a key
        schemes = {k for s in paths[op.path][op.method.lower()]["security"] for k in s}
        assert {"HTTPBearer", "APIKeyHeader"} <= schemes, op


def undocumented_routes(app: FastAPI) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path, path parameters) of every keyed route left out of the document."""
    found: list[tuple[str, str, dict[str, Any]]] = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute) and not route.include_in_schema:
            params: dict[str, Any] = {p.name: {} for p in route.dependant.path_params}
            found += [(m, str(context.path), params) for m in sorted(context.methods or ())]
    return found


UNDOCUMENTED = undocumented_routes(create_app(ApiSettings()))


@pytest.mark.parametrize("route", UNDOCUMENTED, ids=lambda r: f"{r[0]} {r[1]}")
def test_routes_outside_the_document_need_a_key(
    client: TestClient, route: tuple[str, str, dict[str, Any]]
) -> None:
    """The console's fragments and actions: 401 without a key and with an unknown one; its
    page shells alone are public."""
    method, path, params = route
    url = path.format(**{n: _value(n, s, None) for n, s in params.items()})
    if (method, path) in PUBLIC_PAGES:
        assert client.request(method, path.format(page="live")).status_code == 200
        return
    for headers in ({}, {"X-API-Key": "vk_unknown"}):
        response = client.request(method, url, headers=headers)
        assert response.status_code == 401, (method, url, headers, response.text)


def test_the_console_has_undocumented_routes_to_check() -> None:
    assert len(UNDOCUMENTED) > len(PUBLIC_PAGES), "the console's routes are not in the table"


@pytest.mark.parametrize("op", OPERATIONS, ids=str)
def test_no_key_an_unknown_key_and_a_revoked_key_are_401(
    op: Operation, client: TestClient, api: TestClient, issue_key: IssueKey
) -> None:
    revoked = issue_key("admin")
    key_id = next(
        k["id"] for k in api.get("/api/v1/keys").json() if revoked.startswith(k["prefix"])
    )
    assert api.delete(f"/api/v1/keys/{key_id}").status_code == 200
    missing = call(client, op)
    assert missing.status_code == 401, missing.text
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.headers["www-authenticate"] == 'Bearer realm="vigil"'
    assert "Authorization: Bearer <key>" in missing.json()["detail"]
    for headers in ({"X-API-Key": "vgl_" + "x" * 43}, bearer(revoked)):
        response = call(client, op, headers)
        assert response.status_code == 401, (headers, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert 'error="invalid_token"' in response.headers["www-authenticate"]


@pytest.mark.parametrize(("op", "weak"), WEAKER, ids=lambda v: str(v))
def test_a_weaker_role_is_a_403(
    op: Operation, weak: Role, client: TestClient, issue_key: IssueKey
) -> None:
    response = call(client, op, bearer(issue_key(weak)))
    assert response.status_code == 403, response.text
    assert f"needs the {op.role} role; this key has {weak}" in response.json()["detail"]


@pytest.mark.parametrize("op", OPERATIONS, ids=str)
def test_the_weakest_allowed_role_gets_past_auth(
    op: Operation, client: TestClient, issue_key: IssueKey
) -> None:
    response = call(client, op, bearer(issue_key(op.role)))
    assert response.status_code not in {401, 403}, response.text


@pytest.mark.parametrize("op", [op for op in OPERATIONS if op.fleet_wide], ids=str)
def test_fleet_wide_routes_refuse_a_camera_scoped_key(
    op: Operation, client: TestClient, issue_key: IssueKey
) -> None:
    response = call(client, op, bearer(issue_key(op.role, camera_ids=["lobby"])))
    assert response.status_code == 403
    assert "camera-scoped key" in response.json()["detail"]


@pytest.mark.parametrize("op", SCOPED, ids=str)
def test_a_scoped_key_cannot_reach_another_cameras_data(
    op: Operation, client: TestClient, issue_key: IssueKey, other: OtherCamera
) -> None:
    key = issue_key(op.role, camera_ids=[f"mine-{uuid.uuid4().hex[:8]}"])
    response = call(client, op, bearer(key), other)
    assert response.status_code in {403, 404}, response.text
    assert response.headers["content-type"] == "application/problem+json"  # no data, a refusal
    if response.status_code == 404:  # exactly what a missing camera or event says
        assert "does not exist" in response.json()["detail"]


def test_failed_auth_is_logged_with_the_key_prefix_at_most(
    client: TestClient, issue_key: IssueKey
) -> None:
    unknown = "vgl_" + uuid.uuid4().hex + "A" * 11  # well formed, never issued
    junk = "not-a-vigil-key-" + uuid.uuid4().hex
    viewer = issue_key("viewer")
    handler = logging.StreamHandler(stream := io.StringIO())
    handler.setFormatter(JsonFormatter("api"))
    logging.getLogger("vigil_api.auth").addHandler(handler)
    try:
        client.get("/api/v1/events", headers={"X-API-Key": unknown})
        client.get("/api/v1/events", headers=bearer(junk))
        client.get("/api/v1/keys", headers=bearer(viewer))  # a 403 is logged too
    finally:
        logging.getLogger("vigil_api.auth").removeHandler(handler)
    text = stream.getvalue()
    for secret in (unknown, junk, viewer):
        assert secret not in text
    entries = [json.loads(line) for line in text.splitlines()]
    assert [e["reason"] for e in entries] == ["unknown", "unknown", "role"]
    assert entries[0]["key_prefix"] == unknown[:12] and entries[1]["key_prefix"] is None
    assert entries[2]["key_prefix"] == viewer[:12]
    assert all(len(e["request_id"]) == 32 for e in entries)
