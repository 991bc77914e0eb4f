"""Dataset version builds hold a slot each: a build past the slots waits, then gets a 503."""

from __future__ import annotations

import threading
import time

import pytest
from fastapi import HTTPException

from vigil_api.core.build_slots import BUILDING, REFUSED, BuildSlots


def test_a_build_past_the_slots_is_503_with_retry_after() -> None:
    slots = BuildSlots(1, wait_s=0.05)
    building, refused_before = BUILDING._value.get(), REFUSED._value.get()
    with slots.held():
        assert BUILDING._value.get() == building + 1  # what /metrics shows
        started = time.monotonic()
        with pytest.raises(HTTPException) as refused, slots.held():
            pytest.fail("a second build ran beside the first")
        assert time.monotonic() - started >= 0.05, "it waited for a slot first"
    assert refused.value.status_code == 503
    assert refused.value.headers == {"Retry-After": "1"}
    assert "VIGIL_API_VERSION_BUILDS_AT_ONCE" in str(refused.value.detail)
    assert REFUSED._value.get() == refused_before + 1
    assert BUILDING._value.get() == building
    with slots.held():  # free again
        pass


def test_a_slot_frees_when_its_build_fails() -> None:
    slots = BuildSlots(1, wait_s=0)
    with pytest.raises(ValueError, match="bad archive"), slots.held():
        raise ValueError("bad archive")
    with slots.held():
        pass


def test_a_waiting_build_runs_when_a_slot_frees() -> None:
    slots = BuildSlots(2, wait_s=5)
    release = threading.Event()
    running: list[int] = []
    most = [0]
    lock = threading.Lock()

    def build(n: int) -> None:
        with slots.held():
            with lock:
                running.append(n)
                most[0] = max(most[0], len(running))
            release.wait(5)
            with lock:
                running.remove(n)

    threads = [threading.Thread(target=build, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(0.2)
    assert len(running) == 2, "two build, two wait"
    release.set()
    for thread in threads:
        thread.join(5)
    assert most[0] == 2 and not running


def test_at_least_one_slot() -> None:
    with pytest.raises(ValueError, match="at least one"):
        BuildSlots(0, wait_s=1)
