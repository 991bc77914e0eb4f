"""Every process counts events as inference raises them: the worker, the trainer (a fit's
false-alarm rate, replays, trimming) and the API's shadow reports read inference's own
lifecycle variables through one class, which refuses a debounce inference would refuse; a
stored model's events open on the debounce it was calibrated for, unless told otherwise."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest
from pydantic import ValidationError

from vigil_api.core.loop_settings import LoopSettings
from vigil_inference.service import served_debounce
from vigil_inference.settings import InferenceSettings
from vigil_shared.event_lifecycle import Debounce, InferenceDebounce, LifecycleSettings
from vigil_trainer.settings import TrainerSettings


def test_the_trainer_reads_inferences_debounce(monkeypatch: pytest.MonkeyPatch) -> None:
    assert TrainerSettings().events.lifecycle() == LifecycleSettings()
    monkeypatch.setenv("VIGIL_INFERENCE_EVENT_OPEN_K", "2")
    monkeypatch.setenv("VIGIL_INFERENCE_EVENT_OPEN_N", "3")
    monkeypatch.setenv("VIGIL_INFERENCE_EVENT_CLOSE_AFTER", "8")
    monkeypatch.setenv("VIGIL_INFERENCE_EVENT_CLOSE_RATIO", "0.8")
    lifecycle = TrainerSettings().events.lifecycle()
    assert (lifecycle.open_k, lifecycle.open_n, lifecycle.close_after) == (2, 3, 8)
    assert lifecycle.close_ratio == 0.8
    assert InferenceSettings().events.lifecycle() == lifecycle  # the worker's own
    shadow = LoopSettings().lifecycle()  # the API's shadow reports: no silence, else the same
    assert shadow == replace(lifecycle, silence_s=float("inf"))


def test_more_hot_frames_than_the_window_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_INFERENCE_EVENT_OPEN_K", "6")
    with pytest.raises(ValidationError, match="open_k"):
        InferenceDebounce()


CALIBRATED = {"lifecycle_open_k": 3.0, "lifecycle_open_n": 5.0, "threshold": 7.0}


def test_a_model_opens_on_the_debounce_it_was_calibrated_for(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Every process that raises a stored model's events (the worker, a replay, a trim, a
    shadow report) opens them on the k of n its threshold was calibrated for."""
    eager = InferenceDebounce(open_k=1, open_n=1)
    assert served_debounce("m", CALIBRATED, InferenceDebounce()) is None  # the same: default
    assert served_debounce("m", {"threshold": 7.0}, eager) is None  # fitted before 7 Dec
    with caplog.at_level(logging.INFO, logger="vigil_inference"):
        assert served_debounce("m", CALIBRATED, eager) == Debounce(3, 5)
    assert "follow the debounce it was calibrated for: 3 of 5 hot" in caplog.text
    lifecycle = eager.lifecycle_for(CALIBRATED)
    assert (lifecycle.open_k, lifecycle.open_n) == (3, 5)
    assert lifecycle == replace(eager.lifecycle(), open_k=3, open_n=5)
    assert eager.lifecycle_for({}) == eager.lifecycle()
    shadow = LoopSettings(events=eager).lifecycle(CALIBRATED)
    assert (shadow.open_k, shadow.open_n, shadow.silence_s) == (3, 5, float("inf"))


def test_a_model_closes_on_the_close_it_was_calibrated_for() -> None:
    default = InferenceDebounce()
    slow_close = CALIBRATED | {"lifecycle_close_after": 20.0, "lifecycle_close_ratio": 1.0}
    assert served_debounce("m", slow_close, default) == Debounce(3, 5, 20, 1.0)
    lifecycle = default.lifecycle_for(slow_close)
    assert (lifecycle.open_k, lifecycle.close_after) == (3, 20)
    same = CALIBRATED | {"lifecycle_close_after": 5.0, "lifecycle_close_ratio": 1.0}
    assert served_debounce("m", same, default) is None  # the worker's own, recorded


def test_a_worker_told_not_to_follow_the_model_says_its_rate_does_not_hold(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("VIGIL_INFERENCE_EVENT_OPEN_K", "1")
    monkeypatch.setenv("VIGIL_INFERENCE_EVENT_OPEN_N", "1")
    monkeypatch.setenv("VIGIL_INFERENCE_EVENT_FOLLOW_MODEL", "false")
    events = InferenceSettings().events
    with caplog.at_level(logging.WARNING, logger="vigil_inference"):
        assert served_debounce("m", CALIBRATED, events) is None
    assert "calibrated for events on 3 of 5 hot, served on 1 of 1 hot" in caplog.text
    assert events.lifecycle_for(CALIBRATED) == events.lifecycle()
