"""Key management: shown once, stored hashed, revocable, expiring; failures logged safely."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session, sessionmaker

from tests.integration.conftest import ADMIN_KEY, IssueKey, bearer
from vigil_api.core.settings import ApiSettings
from vigil_api.main import create_app
from vigil_shared.db.models import ApiKey


def test_a_new_key_is_shown_once_and_stored_only_as_its_hash(
    api: TestClient, sessions: sessionmaker[Session]
) -> None:
    response = api.post("/api/v1/keys", json={"name": "wall screen", "role": "viewer"})
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    created = response.json()
    key = created["key"]
    assert key.startswith("vgl_") and len(key) == 47
    assert created["prefix"] == key[:12] and created["created_by"] == "env-admin"

    listed = [k for k in api.get("/api/v1/keys").json() if k["id"] == created["id"]]
    assert listed and "key" not in listed[0]
    assert listed[0]["prefix"] == key[:12]

    with sessions() as session:
        row = session.scalars(select(ApiKey).where(ApiKey.prefix == key[:12])).one()
        assert row.key_sha256 == hashlib.sha256(key.encode()).hexdigest()
        stored = session.execute(
            text("SELECT row_to_json(k)::text FROM api_keys k WHERE id = :id"), {"id": row.id}
        ).scalar_one()
    assert key not in stored and key[12:] not in stored and key[20:40] not in stored


def test_both_headers_carry_a_key_but_two_different_keys_are_refused(
    anonymous: TestClient, issue_key: IssueKey
) -> None:
    viewer, other = issue_key("viewer"), issue_key("viewer")
    assert anonymous.get("/api/v1/models", headers=bearer(viewer)).status_code == 200
    assert anonymous.get("/api/v1/models", headers={"X-API-Key": viewer}).status_code == 200
    both_same = {**bearer(viewer), "X-API-Key": viewer}
    assert anonymous.get("/api/v1/models", headers=both_same).status_code == 200
    both_different = {**bearer(viewer), "X-API-Key": other}
    assert anonymous.get("/api/v1/models", headers=both_different).status_code == 401


def test_a_revoked_key_is_refused(
    api: TestClient, anonymous: TestClient, issue_key: IssueKey
) -> None:
    operator = issue_key("operator")
    assert anonymous.get("/api/v1/jobs", headers=bearer(operator)).status_code == 200
    key_id = next(k["id"] for k in api.get("/api/v1/keys").json() if k["prefix"] == operator[:12])

    revoked = api.delete(f"/api/v1/keys/{key_id}")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    response = anonymous.get("/api/v1/jobs", headers=bearer(operator))
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert key_id not in {k["id"] for k in api.get("/api/v1/keys").json()}
    everything = api.get("/api/v1/keys", params={"include_revoked": "true"}).json()
    assert key_id in {k["id"] for k in everything}
    assert api.delete(f"/api/v1/keys/{key_id}").status_code == 200  # revoking twice is harmless


def test_an_expired_key_is_refused(
    anonymous: TestClient, issue_key: IssueKey, sessions: sessionmaker[Session]
) -> None:
    viewer = issue_key("viewer")
    assert anonymous.get("/api/v1/models", headers=bearer(viewer)).status_code == 200
    with sessions.begin() as session:
        past = datetime.now(UTC) - timedelta(seconds=1)
        session.execute(update(ApiKey).where(ApiKey.prefix == viewer[:12]).values(expires_at=past))
    assert anonymous.get("/api/v1/models", headers=bearer(viewer)).status_code == 401


def test_a_created_admin_key_manages_keys(anonymous: TestClient, issue_key: IssueKey) -> None:
    admin = issue_key("admin")
    body = {"name": "made by a db admin", "role": "operator"}
    response = anonymous.post("/api/v1/keys", json=body, headers=bearer(admin))
    assert response.status_code == 201
    assert response.json()["created_by"] == admin[:12]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "a", "role": "admin", "camera_ids": ["lobby"]}, "body"),
        ({"name": "a", "role": "viewer", "camera_ids": []}, "body.camera_ids"),
        ({"name": "a", "role": "viewer", "camera_ids": ["../etc"]}, "body.camera_ids.0"),
        ({"name": "a", "role": "root"}, "body.role"),
        ({"name": "a", "role": "viewer", "expires_at": "2020-01-01T00:00:00Z"}, "body.expires_at"),
    ],
)
def test_invalid_key_requests_are_422_naming_the_field(
    api: TestClient, body: dict[str, object], field: str
) -> None:
    response = api.post("/api/v1/keys", json=body)
    assert response.status_code == 422
    assert field in {e["field"] for e in response.json()["errors"]}


def test_unknown_key_id_is_404(api: TestClient) -> None:
    response = api.delete("/api/v1/keys/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404


def test_failed_auth_is_logged_with_the_prefix_at_most(
    anonymous: TestClient, issue_key: IssueKey, caplog: pytest.LogCaptureFixture
) -> None:
    unknown = "vgl_" + "Q" * 43
    password = "hunter2-correct-horse-battery"
    caplog.set_level(logging.WARNING, logger="vigil_api.auth")
    anonymous.get("/api/v1/models", headers=bearer(unknown))
    anonymous.get("/api/v1/models", headers={"X-API-Key": password})
    anonymous.post("/api/v1/keys", json={}, headers=bearer(issue_key("operator")))

    records = [r for r in caplog.records if r.name == "vigil_api.auth"]
    logged = [
        (r.getMessage(), r.__dict__.get("reason"), r.__dict__.get("key_prefix")) for r in records
    ]
    assert ("authentication failed", "unknown", unknown[:12]) in logged
    assert ("authentication failed", "unknown", None) in logged
    assert any(m == "authorization refused" and reason == "role" for m, reason, _ in logged)
    text_of_logs = repr([r.__dict__ for r in records])
    assert unknown not in text_of_logs and password not in text_of_logs


def test_the_environment_ingest_key_is_an_operator_that_cannot_manage_keys(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ingest_key = f"test-ingest-{uuid.uuid4().hex}"
    monkeypatch.setenv("VIGIL_API_INGEST_KEY", ingest_key)
    with TestClient(create_app(ApiSettings()), headers=bearer(ingest_key)) as ingest:
        assert ingest.get("/api/v1/ingest/cameras").status_code == 200
        assert ingest.post("/api/v1/keys", json={"name": "x", "role": "viewer"}).status_code == 403
        wrong = ingest.get("/api/v1/cameras", headers=bearer(ingest_key + "x"))
        assert wrong.status_code == 401


def test_a_service_key_is_revoked_only_with_force_and_shows_when_it_was_used(
    api: TestClient, anonymous: TestClient
) -> None:
    body = {"name": "ingest (site 3)", "role": "operator", "service": True}
    created = api.post("/api/v1/keys", json=body).json()
    assert created["service"] is True and created["last_used_at"] is None
    assert anonymous.get("/api/v1/ingest/cameras", headers=bearer(created["key"])).is_success
    listed = next(k for k in api.get("/api/v1/keys").json() if k["id"] == created["id"])
    assert listed["last_used_at"] is not None  # an admin sees the key is in use

    refused = api.delete(f"/api/v1/keys/{created['id']}")
    assert refused.status_code == 409
    assert "service key" in refused.json()["detail"] and "force=true" in refused.json()["detail"]
    assert anonymous.get("/api/v1/ingest/cameras", headers=bearer(created["key"])).is_success
    forced = api.delete(f"/api/v1/keys/{created['id']}", params={"force": "true"})
    assert forced.status_code == 200 and forced.json()["revoked_at"] is not None
    assert (
        anonymous.get("/api/v1/ingest/cameras", headers=bearer(created["key"])).status_code == 401
    )


def test_last_use_is_written_at_most_once_a_minute(
    api: TestClient, anonymous: TestClient, issue_key: IssueKey, sessions: sessionmaker[Session]
) -> None:
    viewer = issue_key("viewer")
    anonymous.get("/api/v1/models", headers=bearer(viewer))
    with sessions() as session:
        first = session.scalars(select(ApiKey).where(ApiKey.prefix == viewer[:12])).one()
    anonymous.get("/api/v1/models", headers=bearer(viewer))
    with sessions() as session:
        again = session.scalars(select(ApiKey).where(ApiKey.prefix == viewer[:12])).one()
        assert again.last_used_at == first.last_used_at is not None
        an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
        session.execute(
            update(ApiKey).where(ApiKey.id == first.id).values(last_used_at=an_hour_ago)
        )
        session.commit()
    anonymous.get("/api/v1/models", headers=bearer(viewer))
    with sessions() as session:
        later = session.scalars(select(ApiKey).where(ApiKey.id == first.id)).one()
        assert later.last_used_at is not None and later.last_used_at > an_hour_ago


def test_a_live_stream_ends_within_seconds_of_its_key_being_revoked(
    issue_key: IssueKey, sessions: sessionmaker[Session]
) -> None:
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with TestClient(create_app(ApiSettings(stream_key_check_s=0.5)), headers=admin) as api:
        viewer = issue_key("viewer")
        key_id = next(k["id"] for k in api.get("/api/v1/keys").json() if k["prefix"] == viewer[:12])
        revoked_at: list[float] = []

        def revoke_once_streaming() -> None:
            streams = api.app.state.event_streams  # type: ignore[attr-defined]
            deadline = time.monotonic() + 10
            while streams.open == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(1.0)  # the stream has checked its key at least once
            assert api.delete(f"/api/v1/keys/{key_id}").status_code == 200
            revoked_at.append(time.monotonic())

        threading.Thread(target=revoke_once_streaming, daemon=True).start()
        stream = TestClient(api.app).get("/api/v1/events/stream", headers=bearer(viewer))
        ended = time.monotonic()
    assert stream.status_code == 200 and revoked_at
    assert ended - revoked_at[0] < 3.0  # not the 15 minutes a stream may last
    assert stream.text.rstrip().endswith('data: "the key was revoked or has expired"')
