"""Presigned links name the public S3 endpoint (``VIGIL_S3_PUBLIC_ENDPOINT``), not the one the
services use, and are signed for it: the stack's S3 is reached here as ``localhost`` while the
services use ``127.0.0.1``, as a browser reaches ``localhost:9000`` while compose uses
``minio:9000``."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from minio import Minio
from sqlalchemy.orm import Session, sessionmaker

from tests.factories import MODEL_ARTIFACT, add_events, add_stored_model, make_event
from tests.integration.conftest import ADMIN_KEY
from vigil_api.core.settings import ApiSettings
from vigil_api.main import create_app
from vigil_shared.settings import CommonSettings


@pytest.fixture
def public_host(monkeypatch: pytest.MonkeyPatch, settings: CommonSettings) -> str:
    host, port = settings.s3.endpoint.rsplit(":", 1)
    assert host == "127.0.0.1", "the stack's S3 is on loopback"
    public = f"localhost:{port}"
    monkeypatch.setenv("VIGIL_S3_PUBLIC_ENDPOINT", public)
    return public


@pytest.fixture
def public_api(public_host: str) -> Iterator[TestClient]:
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with TestClient(create_app(ApiSettings()), headers=headers) as client:
        yield client


def test_model_downloads_point_at_the_public_endpoint(
    public_api: TestClient, public_host: str, sessions: sessionmaker[Session], s3: Minio
) -> None:
    model_id = add_stored_model(sessions, s3)
    url = public_api.get(f"/api/v1/models/{model_id}/download").json()["url"]
    assert urlsplit(url).netloc == public_host
    fetched = httpx.get(url)
    assert fetched.status_code == 200 and fetched.content == MODEL_ARTIFACT


def test_snapshot_links_point_at_the_public_endpoint(
    public_api: TestClient,
    public_host: str,
    sessions: sessionmaker[Session],
    s3: Minio,
    settings: CommonSettings,
) -> None:
    camera = f"public-{uuid.uuid4().hex[:8]}"
    event = make_event(camera, 0)
    event.snapshot_key = f"events/{camera}/{event.event_id}/overlay.jpg"
    jpeg = b"\xff\xd8\xff\xe0public-link\xff\xd9"
    s3.put_object(settings.s3.snapshots_bucket, event.snapshot_key, io.BytesIO(jpeg), len(jpeg))
    add_events(sessions, [event])
    url = public_api.get(f"/api/v1/events/{event.event_id}").json()["snapshot_url"]
    assert urlsplit(url).netloc == public_host
    assert httpx.get(url).content == jpeg
    redirect = public_api.get(f"/api/v1/events/{event.event_id}/snapshot", follow_redirects=False)
    assert urlsplit(redirect.headers["location"]).netloc == public_host
