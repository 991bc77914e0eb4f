"""Event-level figures: hand-made score sequences replayed through the worker's own lifecycle."""

from __future__ import annotations

import math

import pytest
import torch

from vigil_inference.settings import InferenceSettings
from vigil_shared.event_lifecycle import LifecycleSettings
from vigil_shared.event_simulation import SimulatedEvent
from vigil_shared.vision.event_metrics import (
    Interval,
    abnormal_intervals,
    evaluate,
    event_figures,
    frame_figures,
    replay_clip,
)
from vigil_shared.vision.score_metrics import auroc, auroc_shortfall, average_precision

FPS = 10.0


def events(scores: torch.Tensor, settings: LifecycleSettings | None = None) -> list[SimulatedEvent]:
    normal = labeled(len(scores))
    return replay_clip(scores, normal, threshold=1.0, fps=FPS, settings=settings).events


def spans(found: list[SimulatedEvent]) -> list[tuple[int, int, int]]:
    """(first hot frame, frame of the start message, last hot frame) of each event."""
    return [(e.first, e.opened, e.last) for e in found]


def hot(n: int, *ranges: tuple[int, int]) -> torch.Tensor:
    """``n`` scores of 0 with 2 (above a threshold of 1) on the inclusive frame ``ranges``."""
    scores = torch.zeros(n, dtype=torch.float64)
    for first, last in ranges:
        scores[first : last + 1] = 2.0
    return scores


def labeled(n: int, *ranges: tuple[int, int]) -> torch.Tensor:
    return hot(n, *ranges) > 0


def test_the_replay_uses_the_workers_default_lifecycle() -> None:
    assert InferenceSettings().events.lifecycle() == LifecycleSettings()


def test_intervals_are_the_runs_of_abnormal_frames() -> None:
    assert abnormal_intervals(torch.tensor([0, 1, 1, 0, 1])) == [Interval(1, 2), Interval(4, 4)]
    assert abnormal_intervals(torch.zeros(5)) == []
    assert abnormal_intervals(torch.ones(3)) == [Interval(0, 2)]


def test_an_event_opens_on_the_third_hot_frame_and_spans_its_hot_frames() -> None:
    assert spans(events(hot(40, (10, 19)))) == [(10, 12, 19)]


def test_an_event_knows_its_peak_frame() -> None:
    scores = hot(40, (10, 19))
    scores[15] = 5.0
    (event,) = events(scores)
    assert (event.peak, event.peak_at) == (5.0, 15)


def test_spikes_never_open_and_an_event_open_at_the_end_is_closed_there() -> None:
    assert events(hot(30, (3, 3), (9, 10), (20, 20))) == []
    assert spans(events(hot(20, (15, 19)))) == [(15, 17, 19)]


def test_nan_scores_are_quiet_frames() -> None:
    scores = torch.full((12,), math.nan, dtype=torch.float64)
    scores[::3] = 2.0  # two hot frames in any five: an event only if NaN counted as hot
    assert events(scores) == []


def test_hysteresis_of_the_given_settings_keeps_one_event_through_a_dip() -> None:
    scores = hot(60, (10, 20), (27, 35))
    scores[21:27] = 0.7  # below the threshold, above threshold x 0.5
    assert len(events(scores)) == 2
    assert spans(events(scores, LifecycleSettings(close_ratio=0.5))) == [(10, 12, 35)]


def test_an_incident_alerted_twice_counts_one_repeat_and_a_longer_close_merges_them() -> None:
    n = 80
    scores, abnormal = hot(n, (10, 20), (30, 40)), labeled(n, (10, 40))  # a dip of 9 frames
    split = replay_clip(scores, abnormal, threshold=1.0, fps=FPS)
    merged = replay_clip(
        scores, abnormal, threshold=1.0, fps=FPS, settings=LifecycleSettings(close_after=10)
    )
    assert (len(split.events), split.repeats()) == (2, 1)
    assert (len(merged.events), merged.repeats()) == (1, 0)
    figures = event_figures([split, merged], fps=FPS)
    assert (figures.events, figures.repeats, figures.false_alarms) == (3, 1, 0)
    # One event over two incidents is no repeat; a false alarm is not one either.
    over_two = replay_clip(
        hot(n, (10, 40), (60, 70)), labeled(n, (10, 20), (30, 40)), threshold=1.0, fps=FPS
    )
    assert (over_two.repeats(), len(over_two.false_alarms())) == (0, 1)


def test_recall_counts_starts_within_a_second_and_events_already_open() -> None:
    n = 60
    quick = replay_clip(hot(n, (10, 29)), labeled(n, (10, 29)), threshold=1.0, fps=FPS)
    late = replay_clip(hot(n, (22, 29)), labeled(n, (10, 29)), threshold=1.0, fps=FPS)
    early = replay_clip(hot(n, (5, 15)), labeled(n, (8, 20)), threshold=1.0, fps=FPS)
    assert quick.delays() == [2] and late.delays() == [14] and early.delays() == [0]
    figures = event_figures([quick, late, early], fps=FPS)
    assert figures.intervals == 3 and figures.found == 2 and figures.found_eventually == 3
    assert figures.recall == pytest.approx(2 / 3) and figures.recall_eventually == 1.0
    assert figures.median_delay_s == pytest.approx(0.2)
    assert figures.max_delay_s == pytest.approx(1.4)
    assert figures.false_alarms == 0


def test_an_event_that_ended_before_the_onset_is_a_false_alarm_not_a_detection() -> None:
    n = 40
    clip = replay_clip(hot(n, (0, 3)), labeled(n, (15, 30)), threshold=1.0, fps=FPS)
    assert clip.delays() == [None] and len(clip.false_alarms()) == 1
    figures = event_figures([clip], fps=FPS)
    assert figures.recall == 0.0 and figures.median_delay_s is None


def test_false_alarms_per_hour_of_normal_footage() -> None:
    # One hour at 1 fps with two spurious events, plus an anomaly that does not count as normal.
    n = 3600 + 100
    scores = hot(n, (100, 110), (2000, 2004), (3650, 3699))
    clip = replay_clip(scores, labeled(n, (3600, 3699)), threshold=1.0, fps=1.0)
    figures = event_figures([clip], fps=1.0)
    assert figures.events == 3 and figures.false_alarms == 2
    assert figures.normal_hours == pytest.approx(1.0)
    assert figures.false_alarms_per_hour == pytest.approx(2.0)
    assert figures.recall == 0.0 and figures.recall_eventually == 1.0  # 52 s late
    normal_only = event_figures([replay_clip(hot(10), labeled(10), threshold=1, fps=1)], fps=1)
    assert normal_only.recall is None and normal_only.false_alarms_per_hour == 0.0


def test_frame_figures_pool_clips_raw_and_causal() -> None:
    scores = {"a": torch.tensor([0.0, 0, 0, 5, 0, 0, 1, 1, 1, 1])}
    labels = {"a": torch.tensor([0, 0, 0, 0, 0, 0, 1, 1, 1, 1]).bool()}
    figures = frame_figures(scores, labels, causal_window=3)
    # Raw: each positive beats the five zeros, loses to the 5. Smoothed, the spike's trail
    # (1.67 on three normal frames) outranks every positive (0.33 to 1).
    assert figures["auroc"] == pytest.approx(20 / 24)
    assert figures["auroc_causal3"] == pytest.approx(12 / 24)
    assert figures["aupr"] == pytest.approx(0.8)


def test_evaluate_reports_frames_events_and_each_clip() -> None:
    n = 60
    scores = {"x": hot(n, (10, 29)), "y": hot(n, (40, 45))}
    labels = {"x": labeled(n, (10, 29)), "y": labeled(n)}
    report = evaluate(scores, labels, threshold=1.0, fps=FPS)
    assert report["frames"]["auroc"] == pytest.approx(0.97)  # 6 of 100 normals tie
    assert report["events"]["recall"] == 1.0 and report["events"]["false_alarms"] == 1
    assert report["clips"]["x"] == {
        "auroc": 1.0,
        "auroc_shortfall": pytest.approx(0.03),  # its anomalies tie 6 of y's 100 normals
        "intervals": [[10, 29]],
        "delays_frames": [2],
        "events": [[10, 12, 29]],
        "peaks": [10],
        "false_alarms": 0,
    }
    assert report["clips"]["y"]["events"] == [[40, 42, 45]]
    assert report["clips"]["y"]["auroc"] is None  # no abnormal frame
    assert report["clips"]["y"]["auroc_shortfall"] is None
    with pytest.raises(ValueError, match="scores for"):
        replay_clip(hot(3), labeled(4), threshold=1.0, fps=FPS)


def test_the_shortfall_of_a_pooled_auroc_is_traced_to_each_clip() -> None:
    """Each clip's share is what its anomalies lose to all normal frames; they add up to
    ``1 - auroc``, ties and all."""
    generator = torch.Generator().manual_seed(5)
    scores = torch.randint(0, 30, (600,), generator=generator).double()
    positives = torch.rand(600, generator=generator) < 0.4
    groups = torch.arange(600) % 4
    shares = auroc_shortfall(scores, positives, groups)
    assert sorted(shares) == [0, 1, 2, 3]
    assert sum(shares.values()) == pytest.approx(1 - auroc(scores, positives))
    # A clip whose anomalies score under every normal frame takes the whole shortfall.
    low = torch.tensor([5.0, 6, 7, 0, 1, 9, 8])
    truth = torch.tensor([0, 0, 0, 1, 1, 1, 1]).bool()
    clips = torch.tensor([0, 0, 0, 1, 1, 2, 2])
    assert auroc_shortfall(low, truth, clips) == {1: pytest.approx(0.5), 2: 0.0}
    assert auroc_shortfall(low, torch.zeros(7).bool(), clips) == {}


def test_hand_written_auroc_and_aupr_match_scikit_learn() -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    generator = torch.Generator().manual_seed(3)
    scores = torch.randint(0, 40, (500,), generator=generator).double()  # many ties
    positives = torch.rand(500, generator=generator) < 0.3
    assert auroc(scores, positives) == pytest.approx(
        metrics.roc_auc_score(positives.numpy(), scores.numpy())
    )
    assert average_precision(scores, positives) == pytest.approx(
        metrics.average_precision_score(positives.numpy(), scores.numpy())
    )
