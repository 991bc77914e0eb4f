"""Trainer settings, from the environment (``VIGIL_TRAINER_*``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from vigil_shared.event_lifecycle import InferenceDebounce
from vigil_shared.settings import CommonSettings


class TrainerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VIGIL_TRAINER_", extra="ignore", frozen=True)

    concurrency: int = Field(default=1, ge=1, le=64)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    batch_size: int = Field(default=32, ge=1, le=1024)
    allow_weight_download: bool = Field(
        default=False,
        description="Let a job fetch torchvision's ImageNet weights (the host must be online).",
    )
    cache_dir: Path | None = Field(
        default=None, description="Keeps decoded, resized datasets so a resumed job skips it."
    )
    progress_interval_s: float = Field(default=1.0, gt=0, le=60)
    heartbeat_s: float = Field(
        default=10.0,
        gt=0,
        le=60,
        description="How often a running job's worker writes its heartbeat (a thread of its "
        "own, whatever the job is doing); keep it well under the API's "
        "VIGIL_API_JOB_WORKER_LOST_AFTER_S.",
    )
    lease_s: float = Field(
        default=60,
        ge=1,
        description="A running job whose heartbeat is fresher than this belongs to a live "
        "worker: a redelivered copy waits (retries) instead of running it twice.",
    )
    redelivery_after_s: int = Field(
        default=3600,
        ge=5,
        description="Redis visibility timeout: a job whose worker died is handed to another "
        "worker after this long. A job still running then is delivered again, and the copy "
        "waits its turn and finds the job finished, so keep it above most jobs' run time.",
    )
    metrics_port: int | None = Field(
        default=None, ge=0, le=65535, description="Serve Prometheus metrics on this port (0: any)."
    )
    events: InferenceDebounce = Field(
        default_factory=InferenceDebounce,
        description="Inference's event debounce (VIGIL_INFERENCE_EVENT_*): one_class fits count "
        "false alarms, and replays and footage trimming raise events, as inference would.",
    )
    common: CommonSettings = Field(default_factory=CommonSettings)


@lru_cache
def get_settings() -> TrainerSettings:
    return TrainerSettings()
