"""Hostile input against the real app: NUL, bidi overrides and line breaks in names and ids,
integers past 64 bits, JSON nested 100 000 deep or shaped wrong, and bodies larger than their
route allows, sent chunked (with or without a lying Content-Length) to a real uvicorn server.
Each is a 4xx problem that says why, never a 500, and nothing is stored."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.factories import add_job
from tests.integration.conftest import ADMIN_KEY
from vigil_api.core.settings import ApiSettings
from vigil_api.main import create_app
from vigil_shared.db.models import ApiKey, Camera

NUL, BIDI = "\x00", "\u202e"


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "field"),
    [
        ("GET", "/api/v1/jobs", {"params": {"name": NUL}}, "query.name"),
        ("GET", "/api/v1/jobs", {"params": {"name": "a" + BIDI}}, "query.name"),
        ("POST", "/api/v1/keys", {"json": {"name": "a\x00b", "role": "viewer"}}, "body.name"),
        (
            "POST",
            "/api/v1/keys",
            {"json": {"name": "adm" + BIDI + "in", "role": "viewer"}},
            "body.name",
        ),
        ("POST", "/api/v1/keys", {"json": {"name": "two\nlines", "role": "viewer"}}, "body.name"),
        ("POST", "/api/v1/keys", {"json": {"name": "tab\there", "role": "viewer"}}, "body.name"),
        (
            "POST",
            "/api/v1/cameras",
            {"json": {"id": "cam-nul", "name": "a\x00", "source": "rtsp://h/x"}},
            "body.name",
        ),
        ("GET", "/api/v1/models/a%00b", {}, "path.model_id"),
        ("GET", "/api/v1/models/compare", {"params": {"a": NUL, "b": "m-1"}}, "query.a"),
        ("GET", "/api/v1/events", {"params": {"label": "a" + BIDI}}, "query.label"),
        ("GET", "/api/v1/events", {"params": {"cursor": "a\x00"}}, "query.cursor"),
    ],
)
def test_nul_bidi_and_line_breaks_in_names_and_ids_are_422(
    api: TestClient,
    sessions: sessionmaker[Session],
    method: str,
    path: str,
    kwargs: dict[str, Any],
    field: str,
) -> None:
    with sessions() as session:
        before = (
            session.scalar(select(func.count()).select_from(ApiKey)),
            session.scalar(select(func.count()).select_from(Camera)),
        )
    response = api.request(method, path, **kwargs)
    assert response.status_code == 422, response.text
    assert field in {e["field"] for e in response.json()["errors"]}
    with sessions() as session:
        after = (
            session.scalar(select(func.count()).select_from(ApiKey)),
            session.scalar(select(func.count()).select_from(Camera)),
        )
    assert after == before


def test_a_nul_deep_inside_a_job_spec_is_422_naming_where(api: TestClient) -> None:
    spec = {
        "name": "x",
        "task": "classify",
        "dataset": {"name": "walkway"},
        "search": {"space": {"hyper.optimizer": {"type": "categorical", "choices": ["adamw"]}}},
    }
    spec["search"]["space"]["hyper.optimizer"]["choices"] = ["adamw", "sgd\x00"]  # type: ignore[index]
    response = api.post("/api/v1/jobs", json=spec)
    assert response.status_code == 422, response.text
    field = response.json()["errors"][0]["field"]
    assert field == "body.search.space.hyper.optimizer.choices.1"


@pytest.mark.parametrize("body", [[1, 2], [], "a job", 7, None])
def test_a_job_that_is_not_an_object_is_422(api: TestClient, body: Any) -> None:
    response = api.post("/api/v1/jobs", json=body)
    assert response.status_code == 422, response.text


def test_integers_past_64_bits_are_422(api: TestClient, sessions: sessionmaker[Session]) -> None:
    job_id = add_job(sessions, name="walkway", task="one_class", progress={})
    for after in (2**63, 10**30):
        response = api.get(f"/api/v1/jobs/{job_id}/logs", params={"after": after})
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["field"] == "query.after"
    assert api.get(f"/api/v1/jobs/{job_id}/logs", params={"after": 2**63 - 1}).status_code == 200
    huge = {"name": "x", "dataset": {"name": "walkway"}, "seed": 2**64}
    refused = api.post("/api/v1/jobs", json=huge)
    assert refused.status_code == 422 and "64 bits" in refused.json()["detail"]


def test_json_nested_100k_deep_is_422_not_a_crash(api: TestClient) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    for path in ("/api/v1/jobs", "/api/v1/keys", "/api/v1/cameras"):
        response = api.post(path, content=deep, headers={"content-type": "application/json"})
        assert response.status_code == 422, response.text
        assert "deeper than 32" in response.json()["detail"]


def test_a_json_body_over_its_limit_is_413_even_without_a_length(api: TestClient) -> None:
    def body() -> Iterator[bytes]:
        yield b'{"name": "'
        for _ in range(40):
            yield b"x" * 65536
        yield b'", "role": "viewer"}'

    response = api.post(
        "/api/v1/keys", content=body(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413, response.text
    assert "VIGIL_API_BODY_MAX_BYTES" in response.json()["detail"]


@pytest.fixture
def server() -> Iterator[int]:
    """The real app under uvicorn on a free port, archives limited to 100 kB."""
    app = create_app(ApiSettings(archive_max_bytes=100_000))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    runner = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=runner.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not runner.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert runner.started
    yield listener.getsockname()[1]
    runner.should_exit = True
    thread.join(timeout=10)


def send_chunked_upload(port: int, extra_headers: list[bytes], total: int) -> tuple[bytes, int]:
    """A raw chunked multipart upload of ``total`` bytes of archive; the response's first bytes
    and how many archive bytes were written before the response came (or the socket closed)."""
    head = [
        b"POST /api/v1/datasets/chunked/versions HTTP/1.1",
        b"Host: test",
        b"Authorization: Bearer " + ADMIN_KEY.encode(),
        b"Content-Type: multipart/form-data; boundary=BOUNDARY",
        b"Transfer-Encoding: chunked",
        *extra_headers,
    ]
    part = (
        b'--BOUNDARY\r\nContent-Disposition: form-data; name="archive"; filename="a.zip"\r\n'
        b"Content-Type: application/zip\r\n\r\n"
    )
    chunk = b"x" * 65536
    sent, answer = 0, b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(b"\r\n".join(head) + b"\r\n\r\n" + b"%x\r\n%s\r\n" % (len(part), part))
        try:
            while sent < total and not answer:
                conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
                conn.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    answer = conn.recv(4096)
                conn.settimeout(10)
        except (BrokenPipeError, ConnectionResetError):
            pass
        conn.settimeout(10)
        while not complete(answer):
            received = conn.recv(4096)
            if not received:
                break
            answer += received
    return answer, sent


def complete(answer: bytes) -> bool:
    """Whether ``answer`` holds a whole response: its head and Content-Length bytes of body."""
    head, found, body = answer.partition(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        None,
    )
    return bool(found) and length is not None and len(body) >= length


@pytest.mark.parametrize("lie", [[], [b"Content-Length: 100"]], ids=["chunked", "small-length"])
def test_a_chunked_upload_is_refused_as_its_bytes_pass_the_limit(
    server: int, lie: list[bytes]
) -> None:
    total = 256 * 1024**2
    answer, sent = send_chunked_upload(server, lie, total)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"VIGIL_API_ARCHIVE_MAX_BYTES" in answer
    # Answered while the client was still sending: what it wrote past 100 kB sits in socket
    # buffers (a few MB on loopback), unread.
    assert sent < total // 4
