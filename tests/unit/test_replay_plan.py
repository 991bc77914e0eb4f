"""A replay from the committed offset and its per-camera plan rebuilds exactly the events of an
uninterrupted run, with a model whose score depends on previous frames, for a crash anywhere."""

from __future__ import annotations

import random
from collections import deque
from datetime import UTC, datetime, timedelta

import pytest
from kafka import TopicPartition
from kafka.structs import OffsetAndMetadata

from vigil_inference.replay import METADATA_MAX_BYTES, ReplayLedger, ResumePoint, decode, encode
from vigil_shared.event_lifecycle import EventTracker, LifecycleSettings, Observation
from vigil_shared.schemas.events import ModelRef

TP = TopicPartition("frames", 0)
T0 = datetime(2026, 11, 28, 12, tzinfo=UTC)
MODEL = ModelRef(id="m-1", kind="registry")
SETTINGS = LifecycleSettings(open_k=3, open_n=5, close_after=3, update_interval_s=0.3)
CONTEXT = 3
Frame = tuple[str, float]
Message = tuple[str, str, int, int, int]  # phase, event id, frame seq, peak seq, started


class TrailingMean:
    """A model with per-camera state: a frame's score is the mean of its value and the values
    of the camera's previous ``CONTEXT`` frames (fewer after a reset)."""

    context_frames = CONTEXT

    def __init__(self) -> None:
        self._recent: dict[str, deque[float]] = {}

    def score(self, camera_id: str, value: float) -> float:
        recent = self._recent.setdefault(camera_id, deque(maxlen=CONTEXT + 1))
        recent.append(value)
        return sum(recent) / len(recent)


def stream(seed: int, length: int = 160) -> list[Frame]:
    """Two cameras interleaved on one partition, each with bursts of high values."""
    rng = random.Random(seed)
    frames = []
    for _ in range(length):
        camera = rng.choice("ab")
        frames.append((camera, 4.0 if rng.random() < 0.35 else 0.0))
    return frames


class Worker:
    """The worker's loop without Kafka: skip, score, observe or only rebuild, then commit."""

    def __init__(self, frames: list[Frame], committed: OffsetAndMetadata | None) -> None:
        self.frames = frames
        self.ledger = ReplayLedger(silence_s=SETTINGS.silence_s)
        self.ledger.load(TP, committed, now=0)
        self.tracker = EventTracker(SETTINGS)
        self.model = TrailingMean()
        self.seqs: dict[int, int] = {}

    def run(self, start: int, stop: int) -> tuple[list[Message], OffsetAndMetadata]:
        out: list[Message] = []
        for offset in range(start, stop):
            camera_id, value = self.frames[offset]
            if self.ledger.skips(camera_id, offset):
                continue
            score = self.model.score(camera_id, value)
            seen = self.ledger.scored(camera_id, TP, offset, context_frames=CONTEXT, now=0)
            if not seen.observe:
                continue
            frame = observation(camera_id, offset, score, seen.context_from)
            for t in self.tracker.observe(frame, received_at=0):
                out.append(
                    (t.phase.value, str(t.event_id), t.frame.seq, t.peak.seq, t.started_at.second)
                )
        return out, self.ledger.commits({TP: stop}, self.tracker.resume_frame)[TP]


def observation(camera_id: str, offset: int, score: float, context_from: int) -> Observation:
    return Observation(
        camera_id=camera_id,
        seq=offset,  # one sequence per partition offset: increasing per camera
        captured_at=T0 + timedelta(seconds=offset / 10),
        offset=offset,
        score=score,
        threshold=2.0,
        model=MODEL,
        jpeg=b"",
        context_from=context_from,
    )


@pytest.mark.parametrize("seed", range(6))
def test_a_crash_anywhere_replays_the_same_messages_and_invents_none(seed: int) -> None:
    frames = stream(seed)
    reference, _ = Worker(frames, None).run(0, len(frames))
    assert sum(m[0] == "start" for m in reference) >= 4
    for crash in range(1, len(frames)):
        first = Worker(frames, None)
        before, committed = first.run(0, crash)
        assert committed.offset <= crash
        after, _ = Worker(frames, committed).run(committed.offset, len(frames))
        assert set(after) <= set(reference), f"crash after {crash}: a message was invented"
        assert set(before) | set(after) == set(reference), f"crash after {crash}: one is lost"


def test_repeated_crashes_each_resuming_from_the_last_commit() -> None:
    frames = stream(7, length=300)
    reference, _ = Worker(frames, None).run(0, len(frames))
    rng = random.Random(1)
    seen: set[Message] = set()
    committed: OffsetAndMetadata | None = None
    start = 0
    while True:
        stop = min(len(frames), start + rng.randint(5, 60))
        worker = Worker(frames, committed)
        out, committed = worker.run(start, stop)
        seen |= set(out)
        assert set(out) <= set(reference)
        if stop == len(frames):
            break
        start = committed.offset
    assert seen == set(reference)


def test_the_commit_holds_back_for_the_models_context_not_only_open_events() -> None:
    worker = Worker([("a", 0.0)] * 10, None)
    _, committed = worker.run(0, 10)
    # No event: the next frame's score depends on the last 3 frames, which a replay must score.
    assert committed.offset == 7
    assert decode(committed.offset, committed.metadata) == {"a": ResumePoint(7, 10)}
    replay = Worker([("a", 0.0)] * 10, committed)
    assert not replay.ledger.skips("a", 7)
    assert not replay.ledger.scored("a", TP, 7, context_frames=CONTEXT, now=0).observe


def test_a_silent_camera_stops_holding_its_partition_back() -> None:
    ledger = ReplayLedger(silence_s=10)
    for offset in range(3):
        ledger.scored("quiet", TP, offset, context_frames=CONTEXT, now=0.0)
    ledger.scored("busy", TP, 3, context_frames=0, now=20.0)
    assert ledger.idle(now=20.0) == ["quiet"]
    ledger.reset("quiet")
    assert ledger.idle(now=20.0) == []
    committed = ledger.commits({TP: 4}, lambda camera_id: None)[TP]
    assert committed.offset == 3  # quiet's next frame starts afresh; busy needs no context
    assert decode(3, committed.metadata) == {"busy": ResumePoint(4, 4)}


def test_cameras_waiting_for_planned_frames_are_not_idle_and_are_released_once_passed() -> None:
    ledger = ReplayLedger(silence_s=10)
    plan, _ = encode(100, {"a": ResumePoint(104, 110)}, set())
    ledger.load(TP, OffsetAndMetadata(100, plan, -1), now=0)
    assert ledger.skips("a", 103) and not ledger.skips("a", 104)
    assert ledger.idle(now=60) == []
    assert ledger.commits({TP: 105}, lambda camera_id: None)[TP].offset == 104
    assert ledger.commits({TP: 110}, lambda camera_id: None)[TP].offset == 110


def test_metadata_round_trips_and_foreign_metadata_is_no_plan() -> None:
    points = {"a": ResumePoint(12, 20), "b": ResumePoint(10, 10), "c": ResumePoint(15, 15)}
    text, dropped = encode(10, points, set())
    assert dropped == 0
    assert decode(10, text) == {"a": ResumePoint(12, 20), "c": ResumePoint(15, 15)}
    assert decode(10, "") == {} and decode(10, "not json") == {}
    assert decode(10, '{"v": 99, "cameras": {}}') == {}


def test_metadata_that_would_not_fit_keeps_the_cameras_with_open_state_first() -> None:
    points = {f"camera-{i:04d}-{'x' * 40}": ResumePoint(1, 2) for i in range(200)}
    keep = {"camera-0199-" + "x" * 40}
    text, dropped = encode(0, points, keep)
    assert len(text.encode()) <= METADATA_MAX_BYTES
    kept = decode(0, text)
    assert keep <= set(kept) and 0 < len(kept) == len(points) - dropped
