"""Event lifecycle: debounce, start, throttled updates, end, timeouts, replay, bounded state."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import pytest

from vigil_shared.event_lifecycle import (
    Debounce,
    EventTracker,
    LifecycleSettings,
    Observation,
    Transition,
)
from vigil_shared.schemas.events import EventPhase, ModelRef

T0 = datetime(2026, 11, 28, 12, tzinfo=UTC)
MODEL = ModelRef(id="m-1", kind="registry")
SETTINGS = LifecycleSettings(
    open_k=3, open_n=5, close_after=3, update_interval_s=1.0, max_duration_s=30, silence_s=5
)


def frame(
    seq: int,
    score: float,
    *,
    t: float | None = None,
    model: ModelRef = MODEL,
    debounce: Debounce | None = None,
) -> Observation:
    return Observation(
        camera_id="cam",
        seq=seq,
        captured_at=T0 + timedelta(seconds=seq / 10 if t is None else t),
        offset=1000 + seq,
        score=score,
        threshold=1.0,
        model=model,
        jpeg=b"jpeg-%d" % seq,
        debounce=debounce,
    )


def run(
    scores: Iterable[float], *, tracker: EventTracker | None = None, first_seq: int = 0
) -> list[Transition]:
    tracker = tracker or EventTracker(SETTINGS)
    out: list[Transition] = []
    for seq, score in enumerate(scores, start=first_seq):
        out += tracker.observe(frame(seq, score), received_at=0.0)
    return out


def phases(transitions: list[Transition]) -> list[tuple[str, int]]:
    return [(t.phase.value, t.frame.seq) for t in transitions]


def test_isolated_spikes_never_open_an_event() -> None:
    assert run([2, 0, 0, 2, 0, 0, 0, 2, 0, 2, 0, 0]) == []


def test_three_of_five_open_an_event_that_starts_at_its_first_hot_frame() -> None:
    out = run([0, 2, 0, 3, 2.5])
    assert phases(out) == [("start", 4)]
    start = out[0]
    assert start.started_at == frame(1, 0).captured_at
    assert start.peak.seq == 3 and start.snapshot is start.peak
    message = start.message(detected_at=T0, snapshot_key="k")
    assert message.peak_score == 3 and message.score == 2.5 and message.ended_at is None


def test_updates_follow_a_rising_peak_at_most_once_per_interval() -> None:
    # 10 fps: the peak rises every frame, but updates come one second of capture time apart.
    out = run([2, 2, 2, *[2 + i / 10 for i in range(1, 25)]])
    updates = [t for t in out if t.phase is EventPhase.UPDATE]
    assert [t.frame.seq for t in updates] == [12, 22]
    assert all(t.snapshot is not None and t.snapshot.seq == t.frame.seq for t in updates)


def test_a_flat_peak_sends_no_update() -> None:
    assert phases(run([2] * 40)) == [("start", 2)]


def test_quiet_frames_end_the_event_with_the_last_hot_frame_time() -> None:
    out = run([2, 2, 2, 2, 0, 0, 0, 0])
    assert phases(out) == [("start", 2), ("end", 6)]
    end = out[-1]
    assert end.ended_at == frame(3, 0).captured_at
    assert end.event_id == out[0].event_id
    assert end.snapshot is None, "the peak did not change since the start's snapshot"


def test_hysteresis_keeps_the_event_open_just_under_the_threshold() -> None:
    settings = LifecycleSettings(open_k=1, open_n=1, close_after=2, close_ratio=0.5)
    out = run([2, 0.8, 0.7, 0.9, 0.2, 0.1], tracker=EventTracker(settings))
    assert phases(out) == [("start", 0), ("end", 5)]


def test_an_event_ends_at_its_maximum_duration_and_a_new_one_can_open() -> None:
    settings = LifecycleSettings(open_k=1, open_n=1, max_duration_s=1.0, update_interval_s=99)
    out = run([2] * 25, tracker=EventTracker(settings))
    assert phases(out) == [("start", 0), ("end", 10), ("start", 11), ("end", 21), ("start", 22)]
    assert len({t.event_id for t in out}) == 3


def test_a_silent_camera_ends_its_event_when_frames_resume_after_the_gap() -> None:
    tracker = EventTracker(SETTINGS)
    out = [t for s in range(4) for t in tracker.observe(frame(s, 2), received_at=0)]
    out += tracker.observe(frame(4, 0, t=60), received_at=1)
    assert phases(out) == [("start", 2), ("end", 3)]


def test_expire_ends_events_of_cameras_that_stopped_arriving_and_drops_their_state() -> None:
    tracker = EventTracker(SETTINGS)
    for seq in range(4):
        tracker.observe(frame(seq, 2), received_at=100.0)
    assert tracker.expire(now=104.0) == []
    out = tracker.expire(now=106.0)
    assert phases(out) == [("end", 3)]
    assert tracker.cameras() == []


def test_a_new_model_or_a_restarted_camera_ends_the_open_event() -> None:
    tracker = EventTracker(SETTINGS)
    out = [t for s in range(3) for t in tracker.observe(frame(s, 2), received_at=0)]
    other = ModelRef(id="m-2", kind="registry")
    out += tracker.observe(frame(3, 2, model=other), received_at=0)
    assert phases(out) == [("start", 2), ("end", 2)]
    out = [t for s in range(4, 7) for t in tracker.observe(frame(s, 2, model=other), received_at=0)]
    out += tracker.observe(frame(0, 2, t=1.0, model=other), received_at=0)  # seq went back
    assert phases(out) == [("start", 5), ("end", 6)]  # frame 3 counts for m-2


def test_the_same_frames_give_the_same_messages() -> None:
    scores = [0, 2, 2, 2, 3, 0, 4, 0, 0, 0, 0, 2, 2, 2]
    first, second = run(scores), run(scores)
    ids = [t.message(detected_at=T0, snapshot_key=None).message_id for t in first]
    assert ids == [t.message(detected_at=T0, snapshot_key=None).message_id for t in second]
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("crash_after", range(2, 30))
def test_replaying_from_the_resume_frame_rebuilds_the_same_messages(crash_after: int) -> None:
    """A restarted worker replays from the committed offset, which never passes the resume
    frame."""
    scores = [0, 2, 0, 2, 2, 3, 2, 5, 2, 0, 0, 0, 0, 0, 2, 0, 2, 2, 2, 0, 0, 0, 2, 2, 2, 2, 0, 0]
    scores += [0, 0]
    reference = run(scores)
    tracker = EventTracker(SETTINGS)
    before = run(scores[:crash_after], tracker=tracker)
    resume = tracker.resume_frame("cam")
    resume_seq = crash_after if resume is None else resume.offset - 1000
    after = run(scores[resume_seq:], first_seq=resume_seq)
    seen = {(t.phase, t.event_id, t.frame.seq) for t in before + after}
    assert {(t.phase, t.event_id, t.frame.seq) for t in reference} == seen


def test_state_per_camera_is_bounded_by_the_debounce_window() -> None:
    tracker = EventTracker(SETTINGS)
    run([2, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0] * 20, tracker=tracker)
    assert len(tracker._cameras["cam"].window) <= SETTINGS.open_n


def test_impossible_debounce_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="open_k"):
        LifecycleSettings(open_k=6, open_n=5)


def test_a_model_calibrated_for_another_debounce_opens_on_its_own() -> None:
    """The tracker's 3 of 5 is the default; a model's calibrated k of n is what its threshold
    means, so its frames open on it, and a camera moving to another model starts afresh."""
    tracker = EventTracker(SETTINGS)
    eager, other = Debounce(1, 2), ModelRef(id="m-2", kind="registry")
    out = tracker.observe(frame(0, 2.0, debounce=eager), received_at=0.0)
    assert phases(out) == [("start", 0)]  # would wait for two more hot frames on 3 of 5
    strict = Debounce(4, 4)
    out = []
    for seq, score in enumerate([2.0, 2.0, 2.0, 0.0, 2.0, 2.0, 2.0, 2.0], start=1):
        out += tracker.observe(frame(seq, score, model=other, debounce=strict), received_at=0.0)
    assert phases(out) == [("end", 0), ("start", 8)]  # the model change, then 4 hot in a row


def test_a_model_calibrated_for_another_close_closes_on_its_own() -> None:
    """The tracker closes after 3 quiet frames; a model calibrated for 1 closes after one, one
    that recorded only its open closes as the tracker does."""
    quick_close = Debounce(1, 1, close_after=1)
    tracker = EventTracker(SETTINGS)
    out = []
    for seq, score in enumerate([2.0, 0.0, 2.0]):
        out += tracker.observe(frame(seq, score, debounce=quick_close), received_at=0.0)
    assert phases(out) == [("start", 0), ("end", 1), ("start", 2)]
    tracker, out = EventTracker(SETTINGS), []
    for seq, score in enumerate([2.0, 0.0, 2.0, 0.0, 0.0, 0.0]):
        out += tracker.observe(frame(seq, score, debounce=Debounce(1, 1)), received_at=0.0)
    assert phases(out) == [("start", 0), ("end", 5)]  # 3 quiet frames after the last hot


def test_a_debounce_no_window_can_hold_is_refused() -> None:
    with pytest.raises(ValueError, match="open_k <= open_n"):
        Debounce(4, 3)
    assert Debounce.calibrated({"lifecycle_open_k": 2.0, "lifecycle_open_n": 3.0}) == Debounce(2, 3)
    assert Debounce.calibrated({"threshold": 1.0}) is None
    with pytest.raises(ValueError, match="close_after"):
        Debounce(1, 1, close_after=0)
    recorded = {
        "lifecycle_open_k": 3,
        "lifecycle_open_n": 5,
        "lifecycle_close_after": 20,
        "lifecycle_close_ratio": 0.8,
    }
    assert Debounce.calibrated(recorded) == Debounce(3, 5, 20, 0.8)
    assert str(Debounce(3, 5, 20, 0.8)) == "3 of 5 hot, closed after 20 quiet (below 0.8 x)"
