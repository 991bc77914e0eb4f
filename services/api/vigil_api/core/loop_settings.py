"""The loop process's settings (``VIGIL_LOOP_*``): shadow reports, auto-promotion and the
rollback watch (docs/live-loop.md). Part of ``ApiSettings`` (its ``loop``), as ``common`` is.

The would-be events of a shadow report go through the same event lifecycle as inference's, so
its debounce reads inference's own variables (``VIGIL_INFERENCE_EVENT_*``): set them once, for
both processes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from vigil_shared.event_lifecycle import InferenceDebounce, LifecycleSettings


class LoopSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VIGIL_LOOP_", extra="ignore", frozen=True)

    group_id: str = "vigil-loop"
    metrics_port: int | None = Field(
        default=None, ge=0, le=65535, description="The loop process's Prometheus port (0: any)."
    )
    tick_s: float = Field(
        default=5.0, gt=0, le=300, description="How often the rollback watches are checked."
    )
    shadow_span_frames: int = Field(
        default=3000, ge=1, description="Frames of a camera a shadow report covers."
    )
    shadow_span_s: float | None = Field(
        default=None,
        gt=0,
        description="Capture time a shadow report covers at most: a report closes at this span "
        "or at shadow_span_frames, whichever comes first. Unset: frames alone.",
    )
    shadow_settle_s: float = Field(
        default=15.0,
        ge=0,
        le=3600,
        description="How long a full span waits before it is judged, so that production's "
        "events of its last frames are stored (the event sink runs beside the loop).",
    )
    shadow_min_agreement: float = Field(
        default=0.9,
        ge=0,
        le=1,
        description="Least share of frames on which the candidate and production agree (both "
        "hot or both quiet) for a report to pass.",
    )
    shadow_max_extra_events: int = Field(
        default=1,
        ge=0,
        description="Most would-be events beyond production's in the span for a report to pass.",
    )
    shadow_max_missed_confirmed: int = Field(
        default=0,
        ge=0,
        description="Most events reviewers confirmed that the candidate would not have raised.",
    )
    auto_promote: bool = Field(
        default=False,
        description="Promote a shadow model whose report passes (for its camera), as actor "
        "'shadow-report'.",
    )
    watch_s: float = Field(
        default=3600, gt=0, description="How long a promotion is watched for a rollback."
    )
    rollback_max_event_rate_ratio: float = Field(
        default=3.0,
        gt=1,
        description="Most events per camera-hour of the new model since its promotion, as a "
        "multiple of the previous model's over as long before it (at least one an hour), once "
        "it raised rollback_min_events (a model that flags every frame raises one after "
        "another, each ended at the event's maximum duration).",
    )
    rollback_min_events: int = Field(
        default=5, ge=1, description="Events before rates and false-positive shares count."
    )
    rollback_max_false_positive_share: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="Most share of the new model's reviewed events reviewed false_positive.",
    )
    rollback_max_latency_s: float = Field(
        default=30.0,
        gt=0,
        description="Most median detection delay (detected_at - started_at) of its events.",
    )
    events: InferenceDebounce = Field(
        default_factory=InferenceDebounce,
        description="Inference's event lifecycle, from its own VIGIL_INFERENCE_EVENT_* variables.",
    )

    def lifecycle(self, metrics: Mapping[str, Any] | None = None) -> LifecycleSettings:
        """Inference's lifecycle for a model with these fit metrics (opening on its calibrated
        debounce, as the worker does), with no silence (a report reads a backlog at any pace)."""
        return replace(self.events.lifecycle_for(metrics or {}), silence_s=float("inf"))
