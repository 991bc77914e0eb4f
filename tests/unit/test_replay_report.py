"""Replay jobs' pure parts: the scope key, namespaced event ids and the report's figures."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from vigil_shared.replay import Span, compare, replay_event_id, retention_note, scope_key

T0 = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_scope_key_ignores_camera_order_and_duplicates_but_not_the_range() -> None:
    key = scope_key(model_id="m1", camera_ids=["b", "a"], start=at(0), end=at(60))
    assert key == scope_key(model_id="m1", camera_ids=["a", "b", "a"], start=at(0), end=at(60))
    assert key != scope_key(model_id="m1", camera_ids=["a", "b"], start=at(0), end=at(61))
    assert key != scope_key(model_id="m2", camera_ids=["a", "b"], start=at(0), end=at(60))


def test_replay_event_ids_are_stable_per_scope_and_never_the_live_id() -> None:
    live = uuid.uuid4()
    first = replay_event_id(scope="s1", lifecycle_event_id=live)
    assert first == replay_event_id(scope="s1", lifecycle_event_id=live)
    assert first != replay_event_id(scope="s2", lifecycle_event_id=live)
    assert first != live


def test_report_sets_replayed_events_against_production_and_reviews() -> None:
    confirmed = Span("p-confirmed", "cam", at(10), at(20), "confirmed")
    rejected_raised = Span("p-fp-raised", "cam", at(100), at(110), "false_positive")
    rejected_avoided = Span("p-fp-avoided", "cam", at(200), at(210), "false_positive")
    unreviewed_missed = Span("p-missed", "cam", at(300), None, None)
    other_camera = Span("p-other", "other", at(400), at(410), "confirmed")
    replayed = [
        Span("r1", "cam", at(15), at(25)),
        Span("r2", "cam", at(105), at(106)),
        Span("r3", "cam", at(500), at(510)),
        Span("r4", "cam", at(400), at(410)),  # same time as p-other, another camera
    ]
    production = [confirmed, rejected_raised, rejected_avoided, unreviewed_missed, other_camera]
    report = compare(frames=600, replayed=replayed, production=production)
    assert report["frames_scored"] == 600
    assert report["replay_events"] == 4
    assert report["production_events"] == 5
    assert report["replay_only"] == ["r3", "r4"]
    assert report["production_matched"] == ["p-confirmed", "p-fp-raised"]
    assert report["production_missed"] == ["p-fp-avoided", "p-missed", "p-other"]
    assert report["reviews"] == {
        "confirmed": 2,
        "confirmed_raised": ["p-confirmed"],
        "confirmed_missed": ["p-other"],
        "false_positive": 2,
        "false_positives_raised": ["p-fp-raised"],
        "false_positives_avoided": ["p-fp-avoided"],
        "unreviewed": 1,
    }


def test_an_empty_range_says_how_long_frames_are_kept() -> None:
    note = retention_note(frames=0, retention_hours=24)
    assert note is not None and "24 h" in note and "VIGIL_KAFKA_FRAMES_RETENTION_HOURS" in note
    assert retention_note(frames=1, retention_hours=24) is None
