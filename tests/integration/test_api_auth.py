"""Every API route needs a key with the right role; the table below is checked against the app,
so a new route cannot ship without a decision about who may call it and what a scoped key sees.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.integration.conftest import IssueKey, bearer
from vigil_api.security import Role

VIEWER, OPERATOR, ADMIN = Role.VIEWER, Role.OPERATOR, Role.ADMIN


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    role: Role  # the weakest role allowed
    scope: str  # what a camera-scoped key gets: "cameras" (its own), "refused", "all", "admin"

    def url(self) -> str:
        return self.path.format(
            camera_id=f"cam-{uuid.uuid4().hex[:8]}",
            job_id=uuid.uuid4(),
            model_id="no-such-model",
            key_id=uuid.uuid4(),
        )

    def call(self, client: TestClient, headers: dict[str, str] | None = None) -> Any:
        # An empty body: authentication must answer before the body is even validated.
        body: dict[str, Any] | None = {} if self.method in {"POST", "PATCH"} else None
        return client.request(self.method, self.url(), headers=headers, json=body)

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


ROUTES = [
    Route("GET", "/api/v1/cameras", VIEWER, "cameras"),
    Route("POST", "/api/v1/cameras", OPERATOR, "cameras"),
    Route("GET", "/api/v1/cameras/{camera_id}", VIEWER, "cameras"),
    Route("PATCH", "/api/v1/cameras/{camera_id}", OPERATOR, "cameras"),
    Route("DELETE", "/api/v1/cameras/{camera_id}", OPERATOR, "cameras"),
    Route("GET", "/api/v1/events", VIEWER, "cameras"),
    Route("GET", "/api/v1/jobs", VIEWER, "refused"),
    Route("POST", "/api/v1/jobs", OPERATOR, "refused"),
    Route("GET", "/api/v1/jobs/{job_id}", VIEWER, "refused"),
    Route("GET", "/api/v1/models", VIEWER, "all"),  # registry metadata, no footage
    Route("GET", "/api/v1/models/{model_id}", VIEWER, "all"),
    Route("GET", "/api/v1/keys", ADMIN, "admin"),  # admin keys cannot be scoped
    Route("POST", "/api/v1/keys", ADMIN, "admin"),
    Route("DELETE", "/api/v1/keys/{key_id}", ADMIN, "admin"),
]
WEAKER = [(r, weak) for r in ROUTES for weak in Role if not weak.includes(r.role)]


def operations(api: TestClient) -> dict[tuple[str, str], dict[str, Any]]:
    """Every operation of the app, from its OpenAPI document: (METHOD, path) -> operation."""
    paths = api.get("/openapi.json").json()["paths"]
    return {(m.upper(), path): op for path, ops in paths.items() for m, op in ops.items()}


def test_the_table_lists_every_route_and_only_health_is_public(api: TestClient) -> None:
    ops = operations(api)
    protected = {r for r in ops if r[1].startswith("/api/")}
    assert protected == {(r.method, r.path) for r in ROUTES}
    assert {path for _, path in set(ops) - protected} == {"/healthz", "/readyz", "/metrics"}
    for route in protected:  # clients generated from the document know to send a key
        assert {"HTTPBearer", "APIKeyHeader"} <= {k for s in ops[route]["security"] for k in s}


def test_camera_routes_are_the_ones_taking_a_camera(api: TestClient) -> None:
    """A route that takes a camera id must filter by scope; no other route may forget it."""
    for (method, path), op in operations(api).items():
        if not path.startswith("/api/"):
            continue
        params = {p["name"] for p in op.get("parameters", [])}
        takes_camera = "camera_id" in params or path.startswith("/api/v1/cameras")
        scope = {r.scope for r in ROUTES if (r.method, r.path) == (method, path)}
        assert takes_camera == (scope == {"cameras"}), f"{method} {path}: scope {scope}"


@pytest.mark.parametrize("route", ROUTES, ids=str)
def test_no_key_is_a_401_problem_with_a_challenge(route: Route, anonymous: TestClient) -> None:
    response = route.call(anonymous)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"] == 'Bearer realm="vigil"'
    assert "Authorization: Bearer <key>" in response.json()["detail"]


@pytest.mark.parametrize("route", ROUTES, ids=str)
def test_an_unknown_key_is_a_401(route: Route, anonymous: TestClient) -> None:
    response = route.call(anonymous, {"X-API-Key": "vgl_" + "x" * 43})
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


@pytest.mark.parametrize(("route", "weak"), WEAKER, ids=lambda v: str(v))
def test_a_weaker_role_is_a_403(
    route: Route, weak: Role, anonymous: TestClient, issue_key: IssueKey
) -> None:
    response = route.call(anonymous, bearer(issue_key(weak)))
    assert response.status_code == 403, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert f"needs the {route.role} role; this key has {weak}" in response.json()["detail"]


@pytest.mark.parametrize("route", ROUTES, ids=str)
def test_the_weakest_allowed_role_gets_past_auth(
    route: Route, anonymous: TestClient, issue_key: IssueKey
) -> None:
    response = route.call(anonymous, bearer(issue_key(route.role)))
    assert response.status_code not in {401, 403}, response.text


@pytest.mark.parametrize("route", [r for r in ROUTES if r.scope == "refused"], ids=str)
def test_fleet_wide_routes_refuse_a_camera_scoped_key(
    route: Route, anonymous: TestClient, issue_key: IssueKey
) -> None:
    key = issue_key(route.role, camera_ids=["lobby"])
    response = route.call(anonymous, bearer(key))
    assert response.status_code == 403
    assert "camera-scoped key" in response.json()["detail"]
