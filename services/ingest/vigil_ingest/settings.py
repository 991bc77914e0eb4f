"""Ingest settings, from the environment (``VIGIL_INGEST_*``).

Two modes: with ``VIGIL_INGEST_API_URL`` set, ingest runs every enabled camera the API lists
(fleet mode) and the per-camera fields below are only defaults for what the API does not carry;
without it, ingest runs the one camera these fields describe.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import AnyHttpUrl, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from vigil_shared.cameras.fields import Fps, JpegQuality, Masks, Pixels
from vigil_shared.schemas.frames import CameraId
from vigil_shared.settings import CommonSettings


class IngestSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="VIGIL_INGEST_", extra="ignore", frozen=True, cli_parse_args=False
    )

    camera_id: CameraId = "demo"
    source: str = Field(
        default="",
        description="Video file, image directory, rtsp:// / rtmp:// / http(s):// URL, or "
        "push://?token_sha256=<hex> for a camera that uploads snapshots.",
    )
    fps: Fps = Field(default=5.0, description="Frames per second to publish.")
    image_fps: float | None = Field(
        default=None,
        gt=0,
        le=1000,
        description="Rate the images of a directory were shot at; unset: every image is a frame.",
    )
    max_width: Pixels = 640
    max_height: Pixels = 480
    jpeg_quality: JpegQuality = 85
    masks: Masks = Field(
        default=(),
        description="Polygons in [0,1] image coordinates blacked out before anything else, as "
        "JSON: [[[x, y], [x, y], [x, y]], ...].",
    )
    loop: bool = Field(default=False, description="Restart a video file or directory at its end.")
    realtime: bool = Field(
        default=True, description="Pace a file at its own speed (off: as fast as possible)."
    )
    max_frames: int | None = Field(default=None, ge=1, description="Stop after this many frames.")

    open_timeout_s: float = Field(default=10.0, gt=0, le=300)
    read_timeout_s: float = Field(
        default=5.0, gt=0, le=300, description="A stream silent for this long is reconnected."
    )
    probe_s: float = Field(
        default=1.0, gt=0, le=30, description="How long FFmpeg analyses a stream it opens."
    )
    rtsp_transport: Literal["udp", "tcp"] = "udp"
    reconnect_initial_s: float = Field(default=0.5, gt=0, le=3600)
    reconnect_max_s: float = Field(
        default=30.0, gt=0, le=3600, description="Longest wait between two attempts to reconnect."
    )
    reconnect_jitter: float = Field(
        default=0.2, ge=0, le=1, description="Each wait is shortened by a random part up to this."
    )

    buffer_frames: int = Field(
        default=8,
        ge=1,
        le=1000,
        description="Decoded frames waiting to be published; when full the oldest is dropped.",
    )
    max_in_flight: int = Field(
        default=32,
        ge=1,
        le=10_000,
        description="Frames sent to Kafka and not yet acknowledged before publishing waits.",
    )
    max_block_ms: int = Field(
        default=2000,
        ge=100,
        le=300_000,
        description="How long a send waits for Kafka's metadata before the frame is dropped.",
    )
    motion_threshold: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        description="Skip frames whose mean change from the last published one is below this "
        "fraction (e.g. 0.01); unset: publish every frame.",
    )
    status_interval_s: float = Field(
        default=10.0, gt=0, le=3600, description="How often camera status is published."
    )
    metrics_port: int | None = Field(
        default=None, ge=0, le=65535, description="Serve Prometheus metrics here; 0: any free port."
    )

    api_url: AnyHttpUrl | None = Field(
        default=None,
        description="The API to read camera definitions from (fleet mode); unset: one camera.",
    )
    api_key: SecretStr | None = Field(
        default=None, description="An operator key: ingest needs the sources' passwords."
    )
    api_timeout_s: float = Field(default=5.0, gt=0, le=120)
    camera_refresh_s: float = Field(
        default=10.0, ge=0.1, le=3600, description="How often the API's cameras are read again."
    )
    push_host: str = Field(default="0.0.0.0", description="Where the push endpoint listens.")
    push_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="Serve POST /push/{camera_id} here for push:// cameras; unset: no endpoint.",
    )
    push_max_bytes: int = Field(
        default=8 * 1024 * 1024, ge=1024, le=256 * 1024 * 1024, description="Largest upload."
    )
    push_timeout_s: float = Field(
        default=60.0, gt=0, le=86_400, description="A push camera silent this long is offline."
    )
    common: CommonSettings = Field(default_factory=CommonSettings)

    @model_validator(mode="after")
    def _backoff_is_bounded(self) -> IngestSettings:
        if self.reconnect_initial_s > self.reconnect_max_s:
            raise ValueError(
                "VIGIL_INGEST_RECONNECT_INITIAL_S must not exceed VIGIL_INGEST_RECONNECT_MAX_S"
            )
        return self

    @model_validator(mode="after")
    def _fleet_has_a_key(self) -> IngestSettings:
        if self.api_url is not None and self.api_key is None:
            raise ValueError(
                "VIGIL_INGEST_API_URL is set but VIGIL_INGEST_API_KEY is not; "
                "issue an operator key (POST /api/v1/keys) and set it"
            )
        return self

    @property
    def fleet(self) -> bool:
        return self.api_url is not None


@lru_cache
def get_settings() -> IngestSettings:
    return IngestSettings()
