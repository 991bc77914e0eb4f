"""Every process counts events as inference raises them: the worker, the trainer (a fit's
false-alarm rate, replays, trimming) and the API's shadow reports read inference's own
lifecycle variables through one class, which refuses a debounce inference would refuse; a
worker that loads a model calibrated for another debounce says so."""

from __future__ import annotations

from dataclasses import replace

import pytest
from pydantic import ValidationError

from vigil_api.core.loop_settings import LoopSettings
from vigil_inference.service import debounce_mismatch
from vigil_inference.settings import InferenceSettings
from vigil_shared.event_lifecycle import InferenceDebounce, LifecycleSettings
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


def test_inference_names_a_model_calibrated_for_another_debounce() -> None:
    default = LifecycleSettings()
    calibrated = {"lifecycle_open_k": 3.0, "lifecycle_open_n": 5.0, "threshold": 7.0}
    assert debounce_mismatch(calibrated, default) is None
    assert debounce_mismatch({"threshold": 7.0}, default) is None  # fitted before 7 Dec
    eager = LifecycleSettings(open_k=1, open_n=1)
    reason = debounce_mismatch(calibrated, eager)
    assert reason is not None
    assert reason.startswith("model calibrated for events opened by 3 of 5 hot frames")
    assert "this worker opens on 1 of 1" in reason
