"""Inference settings, from the environment (``VIGIL_INFERENCE_*``)."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from vigil_shared.event_lifecycle import InferenceDebounce
from vigil_shared.settings import CommonSettings


class InferenceSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="VIGIL_INFERENCE_", extra="ignore", frozen=True, protected_namespaces=()
    )

    group_id: str = "vigil-inference"
    batch_size: int = Field(default=32, ge=1, le=4096)
    max_wait_ms: int = Field(
        default=50,
        ge=0,
        le=10_000,
        description="How long a partial batch waits for more frames before it is scored.",
    )
    poll_timeout_ms: int = Field(default=200, ge=10, le=10_000)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    amp: bool = Field(
        default=True,
        description="Autocast: fp16 on CUDA; bf16 for the warm-up model on a CPU with AMX.",
    )
    compile: bool = Field(default=False, description="torch.compile the backbone (slow start).")
    threads: int | None = Field(
        default=None,
        ge=1,
        le=256,
        description="torch threads per scoring pass; default: 1 when several scoring threads "
        "run, else all cores.",
    )
    scoring_threads: int | None = Field(
        default=None,
        ge=1,
        le=64,
        description="Cameras of a batch scored in parallel by this many threads (CPU); "
        "default: the cores available on a CPU, 1 on CUDA.",
    )
    metrics_port: int | None = Field(
        default=None, ge=1, le=65535, description="Serve Prometheus metrics on this port."
    )
    model_id: str | None = Field(
        default=None,
        description="Default registry model when the assignment topic has no global one; "
        "unset: per-camera warm-up bank.",
    )
    warmup_frames: int = Field(
        default=20, ge=2, le=10_000, description="Frames per camera that form the warm-up bank."
    )
    warmup_image_size: int = Field(
        default=224,
        ge=32,
        le=1024,
        description="Input size of the warm-up model; smaller is faster on a CPU.",
    )
    k: int = Field(default=3, ge=1, le=64)
    target_fpr: float = Field(default=0.01, gt=0, lt=0.5)
    threshold: float | None = Field(
        default=None, ge=0, description="Fixed threshold overriding the calibrated one."
    )
    events: InferenceDebounce = Field(
        default_factory=InferenceDebounce,
        description="The event lifecycle (VIGIL_INFERENCE_EVENT_OPEN_K, _OPEN_N, _CLOSE_AFTER, "
        "_CLOSE_RATIO, _UPDATE_INTERVAL_S, _MAX_DURATION_S, _SILENCE_S), which the trainer "
        "reads too.",
    )
    snapshots: bool = Field(default=True, description="Store peak snapshots in S3.")
    snapshot_workers: int = Field(default=2, ge=1, le=32)
    model_cache_size: int = Field(
        default=4, ge=1, le=64, description="Loaded models kept beyond those in use."
    )
    common: CommonSettings = Field(default_factory=CommonSettings)


@lru_cache
def get_settings() -> InferenceSettings:
    return InferenceSettings()
