"""The CLI waits out a busy API (503/429 with ``Retry-After``) and sends the request again,
whole, within ``VIGIL_BUSY_RETRY_S``; any other refusal, or a wait past that budget, fails at
once with the answer's exit code. An ``httpx.MockTransport`` stands in for the API."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest

from vigil_cli.client import ApiClient, CliError, ExitCode, busy_retry_s, retry_after_s
from vigil_cli.config import Config

BUSY = {"title": "Service Unavailable", "status": 503, "detail": "2 dataset versions are building"}


class Clock:
    """Time that passes only when the client sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def client(
    answer: Callable[[httpx.Request, int], httpx.Response], clock: Clock, retry_for_s: float
) -> tuple[ApiClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        request.read()
        seen.append(request)
        return answer(request, len(seen))

    api = ApiClient(
        Config(url="http://api.test", key="k"),
        retry_for_s=retry_for_s,
        transport=httpx.MockTransport(handle),
        sleep=clock.sleep,
        clock=lambda: clock.now,
        on_wait=lambda response, wait_s: None,
    )
    return api, seen


def busy_then_ok(
    busy_times: int, retry_after: str | None = "7"
) -> Callable[[httpx.Request, int], httpx.Response]:
    headers = {} if retry_after is None else {"Retry-After": retry_after}

    def answer(request: httpx.Request, n: int) -> httpx.Response:
        if n <= busy_times:
            return httpx.Response(503, json=BUSY, headers=headers)
        return httpx.Response(201, json={"version": "v1", "created": True})

    return answer


def test_an_upload_refused_for_want_of_a_build_slot_is_sent_again_whole(tmp_path: Path) -> None:
    archive = tmp_path / "frames.zip"
    archive.write_bytes(b"PK" + bytes(range(256)) * 64)
    clock = Clock()
    api, seen = client(busy_then_ok(2), clock, retry_for_s=60)
    with api, archive.open("rb") as body:
        created = api.call(
            "POST",
            "/api/v1/datasets/hall/versions",
            files={"archive": ("frames.zip", body, "application/octet-stream")},
        )
    assert created == {"version": "v1", "created": True}
    assert clock.waits == [7.0, 7.0]
    assert len(seen) == 3
    assert all(archive.read_bytes() in request.content for request in seen)  # whole each time


def test_a_503_that_does_not_ask_for_a_retry_fails_at_once() -> None:
    clock = Clock()
    api, seen = client(busy_then_ok(1, retry_after=None), clock, retry_for_s=60)
    with api, pytest.raises(CliError) as raised:
        api.post("/api/v1/datasets/hall/versions/compose", {"parts": []})
    assert raised.value.code is ExitCode.SERVER
    assert (len(seen), clock.waits) == (1, [])


def test_busy_past_the_retry_budget_fails_with_the_last_answer() -> None:
    clock = Clock()
    api, seen = client(busy_then_ok(100, retry_after="10"), clock, retry_for_s=25)
    with api, pytest.raises(CliError) as raised:
        api.get("/api/v1/models")
    assert clock.waits == [10.0, 10.0]  # a third wait would end past 25 s
    assert len(seen) == 3
    assert raised.value.code is ExitCode.SERVER
    assert "2 dataset versions are building" in str(raised.value)


def test_retries_off_and_a_retry_at_once_still_waits_a_second() -> None:
    clock = Clock()
    api, seen = client(busy_then_ok(1), clock, retry_for_s=0)
    with api, pytest.raises(CliError):
        api.get("/api/v1/models")
    assert len(seen) == 1
    api, seen = client(busy_then_ok(1, retry_after="0"), clock, retry_for_s=5)
    with api:
        assert api.get("/api/v1/models") == {"version": "v1", "created": True}
    assert clock.waits == [1.0]


def test_a_busy_event_stream_is_opened_again() -> None:
    def answer(request: httpx.Request, n: int) -> httpx.Response:
        if n == 1:
            return httpx.Response(503, json=BUSY, headers={"Retry-After": "5"})
        return httpx.Response(200, text="data: 1\n\n")

    clock = Clock()
    api, seen = client(answer, clock, retry_for_s=60)
    with api, api.stream("/api/v1/events/stream", params={}, headers={}) as response:
        assert list(response.iter_lines()) == ["data: 1", ""]
    assert (len(seen), clock.waits) == (2, [5.0])


def test_retry_after_as_seconds_or_a_date_and_only_on_busy_answers() -> None:
    now = datetime(2026, 12, 8, 12, 0, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=42), usegmt=True)
    assert retry_after_s(503, {"Retry-After": "12"}, now) == 12.0
    assert retry_after_s(429, {"Retry-After": later}, now) == 42.0
    assert retry_after_s(503, {"Retry-After": "soon"}, now) is None
    assert retry_after_s(503, {"Retry-After": "\u00b2"}, now) is None  # a digit, not ASCII
    assert retry_after_s(500, {"Retry-After": "12"}, now) is None
    assert retry_after_s(503, {}, now) is None


def test_the_retry_budget_from_the_environment() -> None:
    assert busy_retry_s({}) == 300.0
    assert busy_retry_s({"VIGIL_BUSY_RETRY_S": "0"}) == 0.0
    assert busy_retry_s({"VIGIL_BUSY_RETRY_S": " 45.5 "}) == 45.5
    for bad in ("-1", "ten", "nan"):
        with pytest.raises(CliError) as raised:
            busy_retry_s({"VIGIL_BUSY_RETRY_S": bad})
        assert raised.value.code is ExitCode.USAGE
