"""The live loop's judgements without servers: a shadow span folded through the event
lifecycle, its verdict against production's reviewed events, and the rollback limits."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from vigil_api.core.loop_settings import LoopSettings
from vigil_api.domain.rollback_watch import Behaviour, breach
from vigil_api.domain.shadow_reports import judge, report_id
from vigil_api.domain.shadow_window import ShadowWindow
from vigil_shared.db.models import Event
from vigil_shared.event_lifecycle import InferenceDebounce
from vigil_shared.schemas.events import ModelRef
from vigil_shared.schemas.shadow_scores import ShadowScore

T0 = datetime(2026, 12, 5, 8, tzinfo=UTC)
SETTINGS = LoopSettings(
    events=InferenceDebounce(open_k=1, open_n=1, close_after=1), shadow_span_frames=10
)


def score(offset: int, *, shadow: float, production: float) -> ShadowScore:
    return ShadowScore(
        camera_id="gate-2",
        frame_seq=offset,
        frame_offset=offset,
        captured_at=T0 + timedelta(seconds=offset),
        shadow=ModelRef(id="candidate", kind="registry"),
        shadow_score=shadow,
        shadow_threshold=1.0,
        production=ModelRef(id="prod", kind="registry"),
        production_score=production,
        production_threshold=1.0,
    )


def window(shadow: list[float], production: list[float]) -> ShadowWindow:
    scores = [
        score(i, shadow=s, production=p)
        for i, (s, p) in enumerate(zip(shadow, production, strict=True))
    ]
    folded = ShadowWindow.starting(scores[0], 0, SETTINGS.lifecycle())
    for item in [*scores, scores[3]]:  # a replayed frame counts once
        folded.add(item)
    folded.close()
    return folded


def event(start: int, end: int, review: str | None) -> Event:
    return Event(
        event_id=uuid.uuid4(),
        started_at=T0 + timedelta(seconds=start),
        ended_at=T0 + timedelta(seconds=end),
        review=review,
    )


def test_a_span_counts_agreement_drift_and_would_be_events_through_the_lifecycle() -> None:
    folded = window([0, 2, 2, 0, 0, 0, 2, 0, 0, 0], [0, 2, 2, 0, 0, 0, 0, 0, 0, 0])
    assert folded.frames == 10
    assert folded.agreement == 0.9
    assert [
        (e.started_at.second, e.ended_at.second if e.ended_at else None) for e in folded.events
    ] == [
        (1, 2),
        (6, 6),
    ]
    assert folded.score_drift == 0.2
    assert folded.full(span_frames=10, span_s=None)
    assert not folded.full(span_frames=11, span_s=None)
    assert folded.full(span_frames=11, span_s=9)


def test_the_verdict_needs_agreement_few_extra_events_and_every_confirmed_event() -> None:
    folded = window([0, 2, 2, 0, 0, 0, 2, 0, 0, 0], [0, 2, 2, 0, 0, 0, 0, 0, 0, 0])
    confirmed, rejected = event(1, 2, "confirmed"), event(7, 8, "false_positive")
    verdict = judge(window=folded, production=[confirmed, rejected], settings=SETTINGS)
    assert verdict.passed, verdict.reasons
    assert verdict.figures["confirmed_missed"] == []

    missed = event(8, 9, "confirmed")
    strict = SETTINGS.model_copy(
        update={"shadow_min_agreement": 0.95, "shadow_max_extra_events": 0}
    )
    verdict = judge(window=folded, production=[missed], settings=strict)
    assert not verdict.passed
    assert [r.split(" ")[0] for r in verdict.reasons] == ["agreement", "2", "1"]
    assert verdict.figures["confirmed_missed"] == [str(missed.event_id)]


def test_a_span_has_one_report_id() -> None:
    a = window([0] * 10, [0] * 10)
    b = window([0] * 10, [0] * 10)
    assert report_id(a) == report_id(b)
    b.first_offset = 10
    assert report_id(a) != report_id(b)


def behaviour(**values: object) -> Behaviour:
    base: dict[str, object] = {
        "watched_s": 600.0,
        "has_previous": True,
        "cameras": 1,
        "events": 0,
        "events_per_camera_hour": 0.0,
        "previous_events": 0,
        "previous_events_per_camera_hour": 0.0,
        "reviewed": 0,
        "false_positives": 0,
        "median_delay_s": None,
        "scoring_problems": [],
    }
    return Behaviour(**(base | values))  # type: ignore[arg-type]


def test_rollback_limits() -> None:
    settings = LoopSettings()
    assert breach(behaviour(), settings) is None
    # A model that flags every frame: one event after another.
    flood = breach(behaviour(events=60, events_per_camera_hour=360.0), settings)
    assert flood is not None and flood.startswith("event rate 360.0 per camera-hour")
    # With no model before it, there is no rate to compare with (nor a model to go back to).
    first = behaviour(events=60, events_per_camera_hour=360.0, has_previous=False)
    assert breach(first, settings) is None
    # Below the least number of events, a rate says nothing yet.
    assert breach(behaviour(events=4, events_per_camera_hour=24.0), settings) is None
    # As many events as before is no breach.
    same = behaviour(events=60, events_per_camera_hour=360.0, previous_events_per_camera_hour=300.0)
    assert breach(same, settings) is None
    fps = breach(behaviour(reviewed=6, false_positives=4), settings)
    assert fps is not None and fps.startswith("4 of 6 reviewed events were false positives")
    slow = breach(behaviour(median_delay_s=45.0), settings)
    assert slow is not None and slow.startswith("median detection delay 45.0 s")
    broken = breach(behaviour(scoring_problems=["camera a: cannot be loaded"]), settings)
    assert broken == "scoring errors: camera a: cannot be loaded"
