"""The threshold set for false alarms per camera-hour of events, and cross-fitted calibration.

Scores here are a correlated noise process like a real camera's (neighbouring frames alike), so
that events, not frames, are what the rate must count.
"""

from __future__ import annotations

import math

import pytest
import torch

from vigil_shared.event_lifecycle import LifecycleSettings
from vigil_shared.event_simulation import replay
from vigil_trainer.one_class.alarm_rate import (
    BASE_QUANTILES,
    MIN_EVENTS,
    AlarmRate,
    event_peaks,
    fit_alarm_rate,
    opening_statistic,
)
from vigil_trainer.one_class.clips import Clip, ClipSplit, calibration_folds

FPS = 10.0


def normal_clip(frames: int, generator: torch.Generator, rho: float = 0.8) -> torch.Tensor:
    """A camera's normal scores: AR(1) in log space (positive, right-skewed, correlated),
    as a convolution with the process's (truncated, rho^60 ~ 1e-6) impulse response."""
    memory = 60
    noise = torch.randn(frames + memory, generator=generator, dtype=torch.float64)
    kernel = (rho ** torch.arange(memory, dtype=torch.float64)).flip(0) * math.sqrt(1 - rho * rho)
    process = torch.nn.functional.conv1d(noise.view(1, 1, -1), kernel.view(1, 1, -1)).flatten()
    return torch.exp(0.5 * process[1 : frames + 1])


def events_per_hour(clips: list[torch.Tensor], threshold: float) -> float:
    events = sum(
        len(replay(c.tolist(), threshold=threshold, settings=LifecycleSettings(), fps=FPS))
        for c in clips
    )
    return events / (sum(c.numel() for c in clips) / FPS / 3600)


def test_the_opening_statistic_is_the_kth_largest_of_the_window() -> None:
    settings = LifecycleSettings(open_k=2, open_n=3)
    scores = torch.tensor([1.0, 5.0, 2.0, 0.0, 0.0, 4.0])
    statistic = opening_statistic(scores, settings).tolist()
    assert statistic == [-math.inf, 1.0, 2.0, 2.0, 0.0, 0.0]


def test_an_event_opens_exactly_up_to_its_peak_statistic() -> None:
    generator = torch.Generator().manual_seed(3)
    clip = normal_clip(3000, generator)
    settings = LifecycleSettings()
    base = float(torch.quantile(clip, 0.8))
    peaks = sorted(event_peaks(clip, threshold=base, settings=settings, fps=FPS))
    for peak in peaks[-5:]:
        at = replay(clip.tolist(), threshold=peak, settings=settings, fps=FPS)
        above = replay(clip.tolist(), threshold=peak + 1e-9, settings=settings, fps=FPS)
        assert len(at) >= 1 and len(above) < len(at)


@pytest.mark.parametrize("target", [30.0, 5.0])
def test_the_threshold_keeps_its_rate_on_unseen_normal_footage(target: float) -> None:
    """Fitted on 30 minutes, measured on 8 hours of other footage from the same camera."""
    generator = torch.Generator().manual_seed(0)
    rate = fit_alarm_rate([normal_clip(600, generator) for _ in range(30)], fps=FPS)
    assert rate.events >= MIN_EVENTS and rate.hours == pytest.approx(0.5)
    threshold = rate.threshold_for(target)
    assert rate.per_hour(threshold) == pytest.approx(target)
    measured = events_per_hour([normal_clip(6000, generator) for _ in range(48)], threshold)
    assert target / 2 <= measured <= target * 2
    low, high = rate.interval(threshold)
    assert low < target < high


def test_the_interval_widens_with_less_footage_and_further_extrapolation() -> None:
    generator = torch.Generator().manual_seed(1)
    short = fit_alarm_rate([normal_clip(600, generator) for _ in range(4)], fps=FPS)
    long = fit_alarm_rate([normal_clip(600, generator) for _ in range(60)], fps=FPS)

    def ratio(rate: AlarmRate, per_hour: float) -> float:
        low, high = rate.interval(rate.threshold_for(per_hour))
        return high / low

    assert ratio(short, 1.0) > ratio(long, 1.0)
    assert ratio(long, 1.0) > ratio(long, 100.0)
    assert short.metrics(short.threshold_for(1.0))["calibration_hours"] == pytest.approx(4 / 60)


def test_scores_that_never_vary_still_give_a_threshold_above_them() -> None:
    rate = fit_alarm_rate([torch.full((500,), 2.0)], fps=FPS)
    assert rate.threshold_for(1.0) > 2.0
    with pytest.raises(ValueError, match="no normal frames"):
        fit_alarm_rate([], fps=FPS)


def test_a_threshold_far_below_a_flat_tail_reads_a_finite_rate() -> None:
    # A tail a thousandth wide (the floor of beta) and a labeled cut at 0: 7000 betas below it.
    rate = AlarmRate(hours=0.07, base=7.0, events=10, beta=0.007)
    metrics = rate.metrics(0.0)
    assert all(math.isfinite(value) for value in metrics.values())
    assert metrics["expected_false_alarms_per_hour"] == pytest.approx(rate.per_hour(6.65))
    assert rate.per_hour(0.0) > rate.per_hour(7.0) > rate.per_hour(8.0)  # still in order


def clip(group: str) -> Clip:
    return Clip(group=group, items=(), abnormal=())


def test_cross_fitted_folds_score_every_bank_group_once_by_banks_without_it() -> None:
    fit = tuple(clip(f"cam/seg{i}") for i in range(7))
    split = ClipSplit(fit=fit, holdout=(clip("cam/held"),), validation=())
    folds = calibration_folds(split, folds=3, seed=0)
    assert folds[0].bank == fit and [c.group for c in folds[0].scored] == ["cam/held"]
    scored = [c.group for f in folds[1:] for c in f.scored]
    assert sorted(scored) == sorted(c.group for c in fit) and len(folds) == 4
    for fold in folds[1:]:
        assert not {c.group for c in fold.scored} & {c.group for c in fold.bank}
        assert len(fold.bank) + len(fold.scored) == len(fit)
    assert calibration_folds(split, folds=1, seed=0) == folds[:1]


def test_reviewed_false_alarms_stay_in_every_fold_bank_and_are_never_scored() -> None:
    rejected = clip("cam/event-e1")
    split = ClipSplit(fit=(clip("cam/seg1"), rejected), holdout=(clip("cam/seg2"),), validation=())
    folds = calibration_folds(split, folds=5, seed=0)
    assert len(folds) == 2
    assert [c.group for c in folds[1].scored] == ["cam/seg1"]
    assert [c.group for c in folds[1].bank] == ["cam/event-e1"]
    lone = ClipSplit(fit=(clip("cam/seg1"),), holdout=(clip("cam/seg2"),), validation=())
    assert len(calibration_folds(lone, folds=5, seed=0)) == 1  # a bank needs a group


def test_without_enough_events_at_any_base_the_base_with_the_most_is_taken() -> None:
    """A long close merges a low base's frames into a few long events: the lowest quantile is
    then the worst base to extrapolate from, not the last resort."""
    generator = torch.Generator().manual_seed(3)
    clips = [normal_clip(300, generator) for _ in range(3)]  # 90 s of footage
    settings = LifecycleSettings(close_after=40)
    statistic = torch.cat([opening_statistic(c, settings) for c in clips])
    finite = statistic[torch.isfinite(statistic)]
    counts = {}
    for quantile in BASE_QUANTILES:
        at = float(torch.quantile(finite, quantile))
        counts[at] = sum(
            len(event_peaks(c, threshold=at, settings=settings, fps=FPS)) for c in clips
        )
    assert max(counts.values()) < MIN_EVENTS  # no base is enough here
    rate = fit_alarm_rate(clips, fps=FPS, settings=settings)
    most = max(counts.values())
    assert rate.events == most
    assert rate.base == max(at for at, n in counts.items() if n == most)
    lowest = min(counts)
    assert counts[lowest] < most  # the lowest base, the fallback before, shows fewer
