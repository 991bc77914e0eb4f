"""API settings, from the environment (``VIGIL_API_*``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import PurePosixPath

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from vigil_api.core.loop_settings import LoopSettings
from vigil_api.core.security import BOOTSTRAP_ADMIN, BOOTSTRAP_INGEST, Principal
from vigil_shared.settings import PLACEHOLDER_SECRETS, CommonSettings, Environment

MIN_ADMIN_KEY_LENGTH = 32
PLACEHOLDER_ADMIN_KEYS = PLACEHOLDER_SECRETS | {"admin", "vigil-admin-key", "vigil-dev-admin-key"}


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VIGIL_API_", extra="ignore", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    sink_group_id: str = "vigil-event-sink"
    admin_key: SecretStr | None = Field(
        default=None,
        description="A key with the admin role, from the environment, to create the first keys; "
        "unset: only keys stored in the database are accepted.",
    )
    ingest_key: SecretStr | None = Field(
        default=None,
        description="A key with the operator role, from the environment, for ingest's fleet "
        "mode where no one can create a key before ingest starts (docker compose); unset: "
        "ingest uses a key created through /api/v1/keys.",
    )
    camera_file_root: str | None = Field(
        default=None,
        description="Absolute directory (as ingest sees it) under which a camera source may be a "
        "local file; unset: file sources are refused.",
    )
    camera_status_group_id: str = "vigil-camera-status"
    sink_metrics_port: int | None = Field(
        default=None, ge=0, le=65535, description="The event sink's Prometheus port (0: any)."
    )
    camera_status_metrics_port: int | None = Field(
        default=None, ge=0, le=65535, description="Camera status' Prometheus port (0: any)."
    )
    assignment_publish_timeout_s: float = Field(
        default=10.0, gt=0, le=60, description="How long a promotion waits for Kafka's acks."
    )
    max_event_streams: int = Field(
        default=100,
        ge=1,
        le=10_000,
        description="Live event streams open at once per process (each holds a connection and "
        "polls the database); one more is answered 503 with Retry-After.",
    )
    stream_key_check_s: float = Field(
        default=15.0,
        gt=0,
        le=900,
        description="How often a live event stream re-checks its key: a stream ends within this "
        "long of its key being revoked or expiring.",
    )
    download_url_expiry_s: int = Field(
        default=300, ge=1, le=600, description="Lifetime of a model's presigned download URL."
    )
    body_max_bytes: int = Field(
        default=1024**2,
        gt=0,
        description="Largest request body but a dataset archive's (JSON bodies are small).",
    )
    archive_max_bytes: int = Field(
        default=512 * 1024**2, gt=0, description="Largest dataset archive accepted, as uploaded."
    )
    archive_max_entries: int = Field(default=20_000, gt=0, description="Most files in an archive.")
    archive_max_uncompressed_bytes: int = Field(
        default=2 * 1024**3, gt=0, description="Most bytes an archive may expand to, in all."
    )
    archive_max_ratio: float = Field(
        default=100.0,
        gt=1,
        description="Largest expansion of one entry (uncompressed / compressed): above, a bomb.",
    )
    image_max_pixels: int = Field(
        default=40_000_000, gt=0, description="Largest image (width x height) in a dataset."
    )
    dataset_max_frames: int = Field(
        default=5_000, gt=0, description="Most frames a dataset built from a camera or events has."
    )
    version_builds_at_once: int = Field(
        default=2,
        ge=1,
        le=64,
        description="Dataset versions built in memory at once per process (uploads, builds from "
        "a camera or events, compositions, retrains); each holds up to its own limit, so this "
        "bounds them all (core/build_slots.py).",
    )
    version_build_wait_s: float = Field(
        default=30,
        ge=0,
        le=600,
        description="How long a version waits for a free build before a 503 with Retry-After.",
    )
    frame_lookback_s: float = Field(
        default=10,
        gt=0,
        le=3600,
        description="How far back GET /cameras/{id}/frame reads the frames topic for a camera's "
        "latest frame; a camera silent for longer answers 404.",
    )
    job_worker_lost_after_s: float = Field(
        default=60,
        ge=1,
        le=3600,
        description="A running job whose trainer has not written its heartbeat for this long "
        "has lost its worker (shown worker_lost, then queued again or failed); keep it well "
        "above VIGIL_TRAINER_HEARTBEAT_S.",
    )
    job_sweep_interval_s: float = Field(
        default=15, gt=0, le=600, description="How often the API looks for lost workers' jobs."
    )
    job_retries_after_worker_lost: int = Field(
        default=2,
        ge=0,
        le=100,
        description="Times a job whose worker was lost is queued again before it is failed.",
    )
    trainer_allows_weight_download: bool = Field(
        default=False,
        # The trainer's own variable, read here too: one switch says whether a job may fetch
        # torchvision's weights, so the API refuses at submission only what the trainer would.
        validation_alias=AliasChoices(
            "VIGIL_TRAINER_ALLOW_WEIGHT_DOWNLOAD", "trainer_allows_weight_download"
        ),
        description="VIGIL_TRAINER_ALLOW_WEIGHT_DOWNLOAD: jobs without imported weights are "
        "accepted (the trainer downloads them); unset: refused at submission (422).",
    )
    retention_max_days: int = Field(
        default=30,
        ge=1,
        le=36_500,
        description="The longest any camera's events, snapshots and dataset footage are kept; "
        "a camera's own retention_days may only be shorter.",
    )
    retention_interval_s: float = Field(
        default=3600, ge=10, le=86_400, description="How often the retention sweep runs."
    )
    retention_metrics_port: int | None = Field(
        default=None, ge=0, le=65535, description="The retention sweep's Prometheus port (0: any)."
    )
    loop: LoopSettings = Field(default_factory=LoopSettings)
    common: CommonSettings = Field(default_factory=CommonSettings)

    @field_validator("admin_key", "ingest_key", "camera_file_root", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("camera_file_root")
    @classmethod
    def _absolute_root(cls, value: str | None) -> str | None:
        if value is not None and not PurePosixPath(value).is_absolute():
            raise ValueError("VIGIL_API_CAMERA_FILE_ROOT must be an absolute directory")
        return value

    @model_validator(mode="after")
    def _refuse_placeholder_keys(self) -> ApiSettings:
        if self.common.env is Environment.DEVELOPMENT:
            return self
        for name, secret in (("ADMIN_KEY", self.admin_key), ("INGEST_KEY", self.ingest_key)):
            key = "" if secret is None else secret.get_secret_value()
            if key and (key in PLACEHOLDER_ADMIN_KEYS or len(key) < MIN_ADMIN_KEY_LENGTH):
                raise ValueError(
                    f"VIGIL_API_{name} is a placeholder or shorter than {MIN_ADMIN_KEY_LENGTH} "
                    "characters; set a random one (python -c 'import secrets; "
                    "print(secrets.token_urlsafe(32))') or unset it when VIGIL_ENV=production"
                )
        if self.admin_key is not None and self.admin_key == self.ingest_key:
            raise ValueError("VIGIL_API_INGEST_KEY must differ from VIGIL_API_ADMIN_KEY")
        return self

    def environment_keys(self) -> dict[str, Principal]:
        """The keys taken from the environment, by value, with whom they stand for."""
        keys = {}
        if self.ingest_key is not None:
            keys[self.ingest_key.get_secret_value()] = BOOTSTRAP_INGEST
        if self.admin_key is not None:
            keys[self.admin_key.get_secret_value()] = BOOTSTRAP_ADMIN
        return keys


@lru_cache
def get_settings() -> ApiSettings:
    return ApiSettings()
