"""False alarms per camera-hour of *events*, predicted from normal footage's frame scores.

Operators count events, not frames: the worker opens one when ``open_k`` of a camera's last
``open_n`` frames reach the threshold (``event_lifecycle``), so a frame-quantile threshold says
little about how often they are called. A site gives minutes to hours of normal footage and
wants about one false alarm a day per camera, far rarer than any event its footage can show, so
the rate is extrapolated by peaks over threshold, the usual way to read rare exceedances:

1. each frame's *opening statistic* is the ``open_k``-th largest score of its last ``open_n``
   frames: an event opens at a threshold exactly when it reaches it;
2. at a base threshold ``u`` (a high quantile of that statistic, lowered until the footage shows
   ``MIN_EVENTS`` events; if none does, the one that shows the most: lower bases merge more of
   the footage into fewer, longer events under a long close) the footage is replayed through
   the real lifecycle
   (``event_simulation.replay``); each event's peak statistic is the highest threshold at which
   it would still have opened;
3. the peaks' excesses over ``u`` are exponential with mean ``beta`` (declustered
   peaks-over-threshold: one peak per event, so neighbouring frames of one incident are not
   counted as independent evidence), hence ``rate(t) = events / hours * exp(-(t - u) / beta)``.

The uncertainty is that of ``events`` (Poisson) and of ``beta`` (a mean of ``events``
exponentials): ``sd(ln rate) = sqrt((1 + z^2) / events)`` with ``z = (t - u) / beta``, so a
threshold far beyond the footage's events says, honestly, that its rate is known within a wide
factor; more footage narrows it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from vigil_shared.event_lifecycle import LifecycleSettings
from vigil_shared.event_simulation import replay

MIN_EVENTS = 10
"""Events the base threshold should show: a mean excess from fewer is too noisy to extrapolate."""
BASE_QUANTILES = (0.9, 0.8, 0.7, 0.6, 0.5)
"""Quantiles of the opening statistic tried as the base threshold, highest first."""
MAX_STEPS_BELOW = 50.0
"""A threshold further below the base than this many ``beta`` reads as this far: its rate
(``e^50`` times the base's) already means "every frame", and a further one (a labeled or
frame-rule cut far under a flat tail) would overflow a float or make a manifest's metric
infinite."""
Z_90 = 1.6449
"""Two-sided 90% interval of a normal variable."""


def opening_statistic(scores: torch.Tensor, settings: LifecycleSettings) -> torch.Tensor:
    """Per frame, the ``open_k``-th largest score of its last ``open_n`` frames (of one clip, in
    order; fewer at the clip's start, -inf until ``open_k`` frames were seen)."""
    n, k = settings.open_n, settings.open_k
    padded = torch.cat([torch.full((n - 1,), -math.inf, dtype=scores.dtype), scores])
    windows = padded.unfold(0, n, 1)
    return windows.topk(k, dim=1).values[:, -1]


@dataclass(frozen=True)
class AlarmRate:
    """Predicted events per camera-hour of normal footage at any threshold (module docstring)."""

    hours: float
    base: float
    events: int
    beta: float

    @classmethod
    def from_metrics(cls, metrics: dict[str, float]) -> AlarmRate | None:
        """The curve a fit recorded (``metrics``), if it recorded one."""
        if "alarm_rate_beta" not in metrics:
            return None
        return cls(
            hours=metrics["calibration_hours"],
            base=metrics["alarm_rate_base"],
            events=round(metrics["alarm_rate_base_events"]),
            beta=metrics["alarm_rate_beta"],
        )

    @property
    def base_rate(self) -> float:
        """Events per hour at the base threshold (half an event when none was seen)."""
        return max(self.events, 0.5) / self.hours

    def per_hour(self, threshold: float) -> float:
        return self.base_rate * math.exp(-self._steps(threshold))

    def _steps(self, threshold: float) -> float:
        """How many ``beta`` ``threshold`` is above the base (at most ``MAX_STEPS_BELOW``
        below it)."""
        return max((threshold - self.base) / self.beta, -MAX_STEPS_BELOW)

    def threshold_for(self, per_hour: float) -> float:
        """The threshold whose predicted rate is ``per_hour``."""
        return self.base + self.beta * math.log(self.base_rate / per_hour)

    def interval(self, threshold: float, *, z: float = Z_90) -> tuple[float, float]:
        """A two-sided interval (90% by default) of the rate at ``threshold``."""
        steps = self._steps(threshold)
        sd = math.sqrt((1.0 + steps * steps) / max(self.events, 0.5))
        rate = self.per_hour(threshold)
        return rate * math.exp(-z * sd), rate * math.exp(z * sd)

    def metrics(self, threshold: float) -> dict[str, float]:
        """What a manifest records: the rate expected at ``threshold``, its 90% interval, and
        the fitted curve (so any other threshold's rate can be read off it)."""
        low, high = self.interval(threshold)
        return {
            "expected_false_alarms_per_hour": self.per_hour(threshold),
            "expected_false_alarms_per_hour_low": low,
            "expected_false_alarms_per_hour_high": high,
            "calibration_hours": self.hours,
            "alarm_rate_base": self.base,
            "alarm_rate_base_events": float(self.events),
            "alarm_rate_beta": self.beta,
        }


def event_peaks(
    scores: torch.Tensor, *, threshold: float, settings: LifecycleSettings, fps: float
) -> list[float]:
    """The peak opening statistic of each event ``scores`` (one clip) raise at ``threshold``:
    the highest threshold at which that event would still have opened."""
    statistic = opening_statistic(scores.double(), settings)
    events = replay(scores.tolist(), threshold=threshold, settings=settings, fps=fps)
    peaks = []
    for index, event in enumerate(events):
        # The statistic stays high for open_n - 1 frames after the last hot one; stop short of
        # the next event, which owns its own frames.
        end = min(event.last + settings.open_n, len(scores))
        if index + 1 < len(events):
            end = min(end, events[index + 1].first)
        peaks.append(float(statistic[event.first : max(end, event.opened + 1)].max()))
    return peaks


def fit_alarm_rate(
    clips: Sequence[torch.Tensor], *, fps: float, settings: LifecycleSettings | None = None
) -> AlarmRate:
    """The alarm-rate curve of normal ``clips`` (each a camera's scores in frame order, as the
    worker would score them, from a model that never saw that clip)."""
    settings = settings or LifecycleSettings()
    if not clips or sum(c.numel() for c in clips) == 0:
        raise ValueError("no normal frames to calibrate the alarm rate on")
    hours = sum(c.numel() for c in clips) / fps / 3600.0
    statistic = torch.cat([opening_statistic(c.double(), settings) for c in clips])
    finite = statistic[torch.isfinite(statistic)]
    spread = float(finite.std()) if finite.numel() > 1 else 0.0
    base = float(finite.max()) if finite.numel() else 0.0
    peaks: list[float] = []
    for quantile in BASE_QUANTILES:
        at = float(torch.quantile(finite, quantile)) if finite.numel() else 0.0
        found = [
            p
            for clip in clips
            for p in event_peaks(clip.double(), threshold=at, settings=settings, fps=fps)
        ]
        if not peaks or len(found) > len(peaks):  # the most events, the highest base on ties
            base, peaks = at, found
        if len(peaks) >= MIN_EVENTS:
            break
    excess = [p - base for p in peaks]
    # Floors: tied peaks (a saturating score) would make the tail a step, and a stream that
    # never varies would make any change infinitely rare.
    floor = max(1e-3 * (abs(base) + spread), 1e-6)
    beta = max(sum(excess) / len(excess) if excess else 0.0, floor)
    return AlarmRate(hours=hours, base=base, events=len(peaks), beta=beta)
