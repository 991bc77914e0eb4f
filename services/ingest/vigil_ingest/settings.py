"""Ingest settings: one camera per process for now, from the environment or CLI flags."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from vigil_shared.schemas.frames import CameraId
from vigil_shared.settings import CommonSettings


class IngestSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="VIGIL_INGEST_", extra="ignore", frozen=True, cli_parse_args=False
    )

    camera_id: CameraId = "demo"
    source: str = Field(default="", description="Video file path or rtsp:// / http(s):// URL.")
    fps: float = Field(default=5.0, gt=0, le=60, description="Frames per second to publish.")
    max_width: int = Field(default=640, ge=32, le=8192)
    max_height: int = Field(default=480, ge=32, le=8192)
    jpeg_quality: int = Field(default=85, ge=10, le=100)
    loop: bool = Field(default=False, description="Restart a video file when it ends.")
    realtime: bool = Field(
        default=True, description="Pace a video file at its own speed (off: as fast as possible)."
    )
    max_frames: int | None = Field(default=None, ge=1, description="Stop after this many frames.")
    common: CommonSettings = Field(default_factory=CommonSettings)


@lru_cache
def get_settings() -> IngestSettings:
    return IngestSettings()
