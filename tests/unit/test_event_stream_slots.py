"""Live event streams hold one of a bounded number of slots per API process: taken under a lock
before the response is returned (a burst cannot overshoot), given back exactly once when the
response is done, however it ends; even a response whose body never started."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client import REGISTRY
from starlette.requests import ClientDisconnect

from vigil_api.routes.event_stream import EventStreamResponse, StreamRegistry


def gauge() -> float:
    return REGISTRY.get_sample_value("vigil_api_event_streams") or 0.0


def refused() -> float:
    return REGISTRY.get_sample_value("vigil_api_event_streams_refused_total") or 0.0


def test_a_burst_of_opens_takes_exactly_the_slots_there_are() -> None:
    registry = StreamRegistry(max_streams=5)
    before, refused_before = gauge(), refused()
    start = threading.Barrier(16)
    taken: list[bool] = []

    def open_one() -> None:
        start.wait()
        taken.append(registry.reserve())

    threads = [threading.Thread(target=open_one) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert taken.count(True) == 5 and registry.open == 5
    assert (gauge() - before, refused() - refused_before) == (5, 11)
    registry.release()
    assert registry.reserve()  # a freed slot is taken again
    for _ in range(5):
        registry.release()
    assert registry.open == 0 and gauge() == before
    with pytest.raises(RuntimeError, match="never taken"):
        registry.release()
    with pytest.raises(ValueError, match="at least one"):
        StreamRegistry(max_streams=0)


async def chunks(started: list[bool], fail: bool = False) -> AsyncIterator[str]:
    started.append(True)
    yield ": hello\n\n"
    if fail:
        raise RuntimeError("the database went away")
    yield ": bye\n\n"


def run(response: EventStreamResponse, *, send_fails: bool = False) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        await asyncio.sleep(3600)  # the client stays
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if send_fails:
            raise OSError("the client is gone")
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"}}
    asyncio.run(response(scope, receive, send))  # type: ignore[arg-type]
    return sent


@pytest.mark.parametrize("how", ["whole", "body fails", "client gone before the body"])
def test_the_slot_is_given_back_once_however_the_stream_ends(how: str) -> None:
    registry = StreamRegistry(max_streams=1)
    assert registry.reserve()
    started: list[bool] = []
    response = EventStreamResponse(
        chunks(started, fail=how == "body fails"), on_done=registry.release
    )
    if how == "whole":
        sent = run(response)
        assert [m["type"] for m in sent][-1] == "http.response.body"
    else:
        failure = RuntimeError if how == "body fails" else ClientDisconnect
        with pytest.raises(failure):
            run(response, send_fails=how != "body fails")
    assert registry.open == 0
    assert started == ([] if how == "client gone before the body" else [True])
