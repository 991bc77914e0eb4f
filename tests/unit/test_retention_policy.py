"""A camera's retention: capped by the global maximum, never shorter than Kafka keeps its
frames, and Kafka's own retention compared with the policies."""

from __future__ import annotations

from datetime import UTC, datetime

from vigil_api.retention.policy import Policy, kafka_outlives, retention_problem

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS


def test_a_cameras_days_are_its_own_else_the_global_maximum() -> None:
    policy = Policy(max_days=30, cameras={"gate": 7, "hall": 30})
    assert (policy.days("gate"), policy.days("hall"), policy.days("unknown")) == (7, 30, 30)
    assert policy.strictest(["hall", "gate"]) == 7
    assert policy.strictest([]) == 30
    now = datetime(2026, 12, 4, tzinfo=UTC)
    assert policy.cutoff(7, now) == datetime(2026, 11, 27, tzinfo=UTC)


def test_a_policy_beyond_the_maximum_or_under_the_frames_topic_is_refused() -> None:
    assert retention_problem(None, max_days=30, frames_hours=24) is None
    assert retention_problem(1, max_days=30, frames_hours=24) is None
    longer = retention_problem(31, max_days=30, frames_hours=24)
    assert longer is not None and "VIGIL_API_RETENTION_MAX_DAYS" in longer
    shorter = retention_problem(1, max_days=30, frames_hours=48)
    assert shorter is not None and "VIGIL_KAFKA_FRAMES_RETENTION_HOURS" in shorter


def test_kafka_is_checked_against_the_shortest_policy_and_the_maximum() -> None:
    policy = Policy(max_days=30, cameras={"gate": 2})
    assert kafka_outlives(policy, frames_ms=24 * HOUR_MS, events_ms=30 * DAY_MS) == []
    [frames] = kafka_outlives(policy, frames_ms=72 * HOUR_MS, events_ms=None)
    assert "72 h" in frames and "2 days" in frames
    [events] = kafka_outlives(policy, frames_ms=None, events_ms=60 * DAY_MS)
    assert "VIGIL_KAFKA_EVENTS_RETENTION_DAYS" in events
