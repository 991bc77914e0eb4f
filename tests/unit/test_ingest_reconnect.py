"""A failing camera is retried with growing, jittered, bounded delays; a file that ends is not."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from tests.support import wait_until
from tests.unit.ingest_fakes import (
    STREAM,
    TOPICS,
    FakeProducer,
    camera_settings,
    run_to_end,
    scripted,
)
from vigil_ingest.backoff import Backoff
from vigil_ingest.camera import build_camera
from vigil_ingest.metrics import IngestMetrics


def test_delays_double_up_to_the_cap_and_restart_after_reset() -> None:
    backoff = Backoff(initial_s=0.5, max_s=4, jitter=0.0)
    assert [backoff.next_delay() for _ in range(6)] == [0.5, 1, 2, 4, 4, 4]
    backoff.reset()
    assert backoff.next_delay() == 0.5


@pytest.mark.parametrize("rand", [0.0, 0.5, 0.999])
def test_jitter_only_shortens_a_delay(rand: float) -> None:
    backoff = Backoff(initial_s=1, max_s=8, jitter=0.2, rand=lambda: rand)
    delays = [backoff.next_delay() for _ in range(10)]
    assert all(
        0.8 * cap <= d <= cap for d, cap in zip(delays, [1, 2, 4, 8, 8, 8, 8, 8, 8, 8], strict=True)
    )
    assert max(delays) <= 8


def test_backoff_refuses_an_initial_delay_above_the_cap() -> None:
    with pytest.raises(ValueError, match="initial_s <= max_s"):
        Backoff(initial_s=5, max_s=1)


def test_failing_stream_is_reported_offline_then_reconnects_by_itself() -> None:
    producer = FakeProducer()
    hold = threading.Event()
    refused = f"cannot open {STREAM}: Connection refused"
    silent = f"no frames from {STREAM} for 5 s"
    # Each fault lasts 0.4 s, longer than the publish loop takes to report a change.
    camera = build_camera(
        camera_settings(reconnect_initial_s=0.4, reconnect_max_s=0.4, reconnect_jitter=0),
        producer=producer,
        metrics=IngestMetrics(),
        frames=scripted(refused, 3, silent, 4, hold=hold),
    )
    camera.start()
    try:
        wait_until(
            lambda: len(producer.frames(TOPICS.frames)) == 7,
            timeout_s=10,
            what="frames from before and after the fault",
        )
    finally:
        hold.set()
        camera.close(timeout_s=5)
    assert [h.seq for h in producer.frames(TOPICS.frames)] == list(range(7))
    statuses = producer.statuses(TOPICS.camera_status)
    reasons = [(s.state, s.reason) for s in statuses]
    assert ("offline", refused) in reasons and ("offline", silent) in reasons
    assert reasons[-2:] == [("online", None), ("stopped", "ingest stopped")]
    assert statuses[-1].reconnects == 3  # four opens: refused, 3 frames, silent, 4 frames
    assert statuses[-1].state == "stopped"


def test_a_stream_that_ends_is_reconnected_too() -> None:
    producer = FakeProducer()
    camera = build_camera(
        camera_settings(), producer=producer, metrics=IngestMetrics(), frames=scripted(2, 2, 0)
    )
    camera.start()
    try:
        wait_until(lambda: len(producer.frames(TOPICS.frames)) == 4, timeout_s=10, what="4 frames")
    finally:
        camera.close(timeout_s=5)
    reasons = {s.reason for s in producer.statuses(TOPICS.camera_status)}
    assert f"{STREAM} ended the stream" in reasons


def test_stop_cuts_a_long_backoff_short() -> None:
    producer = FakeProducer()
    refused = f"cannot open {STREAM}: Connection refused"
    camera = build_camera(
        camera_settings(reconnect_initial_s=30, reconnect_max_s=60),
        producer=producer,
        metrics=IngestMetrics(),
        frames=scripted(refused),
    )
    camera.start()
    wait_until(
        lambda: any(s.reason == refused for s in producer.statuses(TOPICS.camera_status)),
        timeout_s=5,
        what="the camera reported offline, now inside a 30 s delay",
    )
    started = time.monotonic()
    camera.stop()
    finish = camera.close(timeout_s=5)
    assert time.monotonic() - started < 1.0
    assert finish.reason == "ingest stopped" and not finish.failed


def test_file_that_ends_is_not_a_fault(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    producer = FakeProducer()
    camera = build_camera(
        camera_settings(source=str(clip), realtime=False),
        producer=producer,
        metrics=IngestMetrics(),
        frames=scripted(5),
    )
    finish = run_to_end(camera, timeout_s=10)
    assert (finish.reason, finish.failed) == ("source ended", False)
    assert len(producer.frames(TOPICS.frames)) == 5
    statuses = producer.statuses(TOPICS.camera_status)
    assert {s.reason for s in statuses if s.state == "offline"} <= {f"opening {clip}"}
    assert statuses[-1].state == "stopped"


def test_unreadable_file_stops_the_camera_as_failed_without_retrying(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    producer = FakeProducer()
    error = f"reading '{clip}' failed: Invalid data found when processing input"
    camera = build_camera(
        camera_settings(source=str(clip)),
        producer=producer,
        metrics=IngestMetrics(),
        frames=scripted(error, 5),
    )
    finish = run_to_end(camera, timeout_s=10)
    assert (finish.reason, finish.failed) == (error, True)
    assert producer.frames(TOPICS.frames) == []
    last = producer.statuses(TOPICS.camera_status)[-1]
    assert (last.state, last.reason, last.reconnects) == ("stopped", error, 0)
