"""Cameras: CRUD with validated sources and model assignment, and camera-scoped keys that see
nothing of any other camera: not its record, not its events."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from tests.factories import add_events, add_model, camera_body, make_event, new_id
from tests.integration.conftest import ADMIN_KEY, IssueKey, bearer
from vigil_api.core.settings import ApiSettings
from vigil_api.main import create_app
from vigil_shared.db.models import Camera
from vigil_shared.topics import Topics


def test_camera_lifecycle(topics: Topics, api: TestClient, sessions: sessionmaker[Session]) -> None:
    """``topics`` first: the app publishes the model assignment in this test's namespace."""
    camera_id = new_id("cam")
    created = api.post("/api/v1/cameras", json=camera_body(camera_id, target_fps=2.5))
    assert created.status_code == 201, created.text
    camera = created.json()
    assert camera["target_fps"] == 2.5 and camera["max_width"] == 640 and camera["enabled"]
    assert camera["model_id"] is None
    assert api.get(f"/api/v1/cameras/{camera_id}").json() == camera
    assert camera_id in {c["id"] for c in api.get("/api/v1/cameras", params={"limit": 500}).json()}

    model_id = add_model(sessions)
    changed = api.patch(
        f"/api/v1/cameras/{camera_id}", json={"model_id": model_id, "enabled": False}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["model_id"] == model_id and changed.json()["enabled"] is False
    assert changed.json()["name"] == camera["name"]
    assert changed.json()["updated_at"] > camera["updated_at"]
    unassigned = api.patch(f"/api/v1/cameras/{camera_id}", json={"model_id": None})
    assert unassigned.json()["model_id"] is None

    assert api.delete(f"/api/v1/cameras/{camera_id}").status_code == 204
    assert api.get(f"/api/v1/cameras/{camera_id}").status_code == 404
    assert api.delete(f"/api/v1/cameras/{camera_id}").status_code == 404


def test_a_second_camera_with_the_same_id_is_a_409(api: TestClient) -> None:
    camera_id = new_id("cam")
    assert api.post("/api/v1/cameras", json=camera_body(camera_id)).status_code == 201
    response = api.post("/api/v1/cameras", json=camera_body(camera_id))
    assert response.status_code == 409
    assert response.json()["detail"] == f"camera {camera_id} already exists"


def test_listing_pages_by_id(api: TestClient) -> None:
    label = new_id("page")
    ids = [f"{label}-{n}" for n in range(3)]
    for camera_id in ids:
        assert api.post("/api/v1/cameras", json=camera_body(camera_id)).status_code == 201
    first = api.get("/api/v1/cameras", params={"after": f"{label}-", "limit": 2}).json()
    assert [c["id"] for c in first] == ids[:2]
    rest = api.get("/api/v1/cameras", params={"after": ids[1], "limit": 1}).json()
    assert [c["id"] for c in rest] == ids[2:]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("javascript:alert(1)", "scheme 'javascript' is not allowed"),
        ("ftp://cams.example.com/feed", "scheme 'ftp' is not allowed"),
        ("file:///etc/passwd", "scheme 'file' is not allowed"),
        ("lobby-camera", "scheme 'lobby-camera' is not allowed"),
        ("rtsp://", "the URL has no host"),
        ("rtsp://cam:99999/main", "not a valid URL"),
        ("rtsp://cam/main stream", "must not contain spaces"),
        ("/datasets/../etc/passwd", "must not contain '..'"),
        ("/etc/passwd", "file sources are disabled; set VIGIL_API_CAMERA_FILE_ROOT"),
        ("rtsp://admin:***@cam/main", "the password is the redacted '***'"),
    ],
)
def test_invalid_sources_are_a_422_naming_the_field(
    api: TestClient, source: str, message: str
) -> None:
    response = api.post("/api/v1/cameras", json=camera_body(new_id("cam"), source=source))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    errors = response.json()["errors"]
    assert [e["field"] for e in errors] == ["body.source"]
    assert message in errors[0]["message"]


@pytest.fixture
def api_with_file_root() -> Iterator[TestClient]:
    app = create_app(ApiSettings(camera_file_root="/datasets"))
    with TestClient(app, headers=bearer(ADMIN_KEY)) as client:
        yield client


def test_file_sources_only_under_the_file_root(api_with_file_root: TestClient) -> None:
    inside = camera_body(new_id("cam"), source="/datasets/ucsd-ped2/test/Test002.mp4")
    assert api_with_file_root.post("/api/v1/cameras", json=inside).status_code == 201
    outside = camera_body(new_id("cam"), source="/home/operator/secret.mp4")
    response = api_with_file_root.post("/api/v1/cameras", json=outside)
    assert response.status_code == 422
    assert response.json()["errors"][0]["message"] == "a file source must be under /datasets"


def test_sampling_fields_are_bounded(api: TestClient) -> None:
    body = camera_body(new_id("cam"), target_fps=0, max_width=10, jpeg_quality=101, shutter="fast")
    response = api.post("/api/v1/cameras", json=body)
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"body.target_fps", "body.max_width", "body.jpeg_quality", "body.shutter"}


def test_an_unknown_model_is_a_422_and_changes_nothing(api: TestClient) -> None:
    camera_id = new_id("cam")
    response = api.post("/api/v1/cameras", json=camera_body(camera_id, model_id="no-such-model"))
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "body.model_id", "message": "model no-such-model does not exist"}
    ]
    assert api.get(f"/api/v1/cameras/{camera_id}").status_code == 404
    assert api.post("/api/v1/cameras", json=camera_body(camera_id)).status_code == 201
    patch = api.patch(f"/api/v1/cameras/{camera_id}", json={"model_id": "no-such-model"})
    assert patch.status_code == 422
    assert api.get(f"/api/v1/cameras/{camera_id}").json()["model_id"] is None


def test_patch_refuses_null_for_required_fields(api: TestClient) -> None:
    camera_id = new_id("cam")
    api.post("/api/v1/cameras", json=camera_body(camera_id))
    response = api.patch(f"/api/v1/cameras/{camera_id}", json={"name": None, "enabled": None})
    assert response.status_code == 422
    assert "enabled, name may not be null" in response.json()["detail"]


def test_a_source_password_is_stored_but_never_shown(
    api: TestClient, sessions: sessionmaker[Session]
) -> None:
    camera_id = new_id("cam")
    source = "rtsp://viewer:s3cr%40t@10.0.0.9:554/Streaming/101?transport=tcp"
    created = api.post("/api/v1/cameras", json=camera_body(camera_id, source=source)).json()
    shown = "rtsp://viewer:***@10.0.0.9:554/Streaming/101?transport=tcp"
    assert created["source"] == shown
    assert api.get(f"/api/v1/cameras/{camera_id}").json()["source"] == shown
    with sessions() as session:
        camera = session.get(Camera, camera_id)
        assert camera is not None and camera.source == source


# --- camera scope: what a key limited to some cameras may see of the others ----------------


@pytest.fixture
def two_cameras(api: TestClient, sessions: sessionmaker[Session]) -> tuple[str, str]:
    mine, other = new_id("mine"), new_id("other")
    for camera_id in (mine, other):
        assert api.post("/api/v1/cameras", json=camera_body(camera_id)).status_code == 201
        add_events(sessions, [make_event(camera_id, minute) for minute in range(3)])
    return mine, other


# Every request that names another camera; test_api_auth.py checks that every route taking a
# camera is scope-filtered, and the listing routes are checked below.
OTHER_CAMERA_REQUESTS = [
    ("GET", "/api/v1/cameras/{other}", None, 404),
    ("PATCH", "/api/v1/cameras/{other}", {"name": "taken over"}, 404),
    ("DELETE", "/api/v1/cameras/{other}", None, 404),
    ("POST", "/api/v1/cameras", "new camera outside the scope", 403),
    ("GET", "/api/v1/events?camera_id={other}", None, 403),
]


@pytest.mark.parametrize("role", ["viewer", "operator"])
@pytest.mark.parametrize(("method", "path", "body", "expected"), OTHER_CAMERA_REQUESTS)
def test_a_scoped_key_cannot_reach_another_camera(
    api: TestClient,
    anonymous: TestClient,
    issue_key: IssueKey,
    two_cameras: tuple[str, str],
    role: str,
    method: str,
    path: str,
    body: Any,
    expected: int,
) -> None:
    mine, other = two_cameras
    key = issue_key(role, camera_ids=[mine])
    if body == "new camera outside the scope":
        body = camera_body(new_id("outside"))
    response = anonymous.request(method, path.format(other=other), json=body, headers=bearer(key))
    # A viewer is refused for its role before the scope is even looked at.
    weak = role == "viewer" and method != "GET"
    assert response.status_code == (403 if weak else expected), response.text
    if expected == 404 and not weak:
        assert response.json()["detail"] == f"camera {other} does not exist"
    untouched = api.get(f"/api/v1/cameras/{other}").json()
    assert untouched["name"] == f"camera {other}"


def test_a_scoped_key_lists_only_its_cameras_and_their_events(
    anonymous: TestClient, issue_key: IssueKey, two_cameras: tuple[str, str]
) -> None:
    mine, _ = two_cameras
    headers = bearer(issue_key("viewer", camera_ids=[mine, "not-registered-yet"]))
    cameras = anonymous.get("/api/v1/cameras", params={"limit": 500}, headers=headers).json()
    assert [c["id"] for c in cameras] == [mine]
    events = anonymous.get("/api/v1/events", params={"limit": 500}, headers=headers).json()
    assert {e["camera_id"] for e in events["items"]} == {mine}
    assert len(events["items"]) == 3
    own = anonymous.get("/api/v1/events", params={"camera_id": mine}, headers=headers)
    assert len(own.json()["items"]) == 3
    assert anonymous.get(f"/api/v1/cameras/{mine}", headers=headers).status_code == 200


def test_a_scoped_operator_manages_cameras_in_its_scope(
    anonymous: TestClient, issue_key: IssueKey, two_cameras: tuple[str, str]
) -> None:
    mine, _ = two_cameras
    future = new_id("future")
    headers = bearer(issue_key("operator", camera_ids=[mine, future]))
    created = anonymous.post("/api/v1/cameras", json=camera_body(future), headers=headers)
    assert created.status_code == 201
    renamed = anonymous.patch(f"/api/v1/cameras/{mine}", json={"name": "x"}, headers=headers)
    assert renamed.status_code == 200 and renamed.json()["name"] == "x"
    assert anonymous.delete(f"/api/v1/cameras/{future}", headers=headers).status_code == 204
