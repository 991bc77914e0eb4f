"""Settings read from the environment, in one place.

Every service composes the connection settings below into its own ``Settings`` class, built once
by a cached ``get_settings()``; nothing reads ``os.environ`` anywhere else. Placeholder secrets
are refused outside development so that a production deployment cannot run on the defaults.
"""

from __future__ import annotations

import socket
from enum import StrEnum
from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from vigil_shared.topics import Topics

REPO_ROOT = Path(__file__).resolve().parents[2]
PLACEHOLDER_SECRETS = frozenset({"vigil", "vigil-secret-key", "changeme", "minioadmin"})


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


def _config(prefix: str) -> SettingsConfigDict:
    return SettingsConfigDict(env_prefix=prefix, extra="ignore", frozen=True)


class KafkaSettings(BaseSettings):
    """Where the Kafka brokers are; topic names are a contract and live in ``topics``."""

    model_config = _config("VIGIL_KAFKA_")

    bootstrap_servers: str = "127.0.0.1:19092"
    client_id: str = "vigil"
    topic_namespace: str = Field(
        default="", pattern=r"^([a-z0-9][a-z0-9_-]*\.)?$", description="Prefix of every topic."
    )
    request_timeout_ms: int = Field(default=30_000, ge=1_000)
    bootstrap_timeout_ms: int = Field(
        default=30_000, ge=1_000, description="How long a client waits for a first broker."
    )
    # Retention, applied when ensure_topics creates a topic (docs/operations.md, disk sizing).
    frames_retention_hours: float = Field(
        default=24, gt=0, description="How long frames (and frames that failed) are kept."
    )
    frames_retention_partition_bytes: int | None = Field(
        default=None,
        ge=1024**2,
        description="Most bytes of frames kept per partition (Kafka's retention.bytes); the "
        "oldest go first. Unset: time alone.",
    )
    events_retention_days: float = Field(
        default=30, gt=0, description="How long events, camera status and dead letters are kept."
    )
    group_instance_id: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9._-]{1,200}$",
        description="Static group membership: a name unique to this process within its "
        "consumer groups (e.g. inference-1; {hostname} is replaced by the host's name, so "
        "replicas of one container definition get one each). A process restarted under the "
        "same name gets its partitions back at once, without a rebalance; two live processes "
        "must never share it. Unset: dynamic membership, partitions move after the session "
        "timeout.",
    )
    session_timeout_ms: int = Field(
        default=10_000,
        ge=6_000,  # the broker's group.min.session.timeout.ms
        le=300_000,
        description="A group member silent this long is dropped and its partitions reassigned.",
    )
    heartbeat_interval_ms: int = Field(
        default=3_000, ge=100, description="How often a group member tells the broker it lives."
    )
    max_poll_interval_ms: int = Field(
        default=300_000,
        ge=10_000,
        description="The longest a consumer may go between polls (a slow batch, a model load) "
        "before it is dropped from its group; also how long a rebalance waits for members.",
    )

    @field_validator("group_instance_id", mode="before")
    @classmethod
    def _expand_hostname(cls, value: object) -> object:
        if isinstance(value, str) and "{hostname}" in value:
            return value.replace("{hostname}", socket.gethostname())
        return value

    @model_validator(mode="after")
    def _heartbeat_within_session(self) -> KafkaSettings:
        if self.heartbeat_interval_ms * 3 > self.session_timeout_ms:
            raise ValueError(
                f"VIGIL_KAFKA_HEARTBEAT_INTERVAL_MS ({self.heartbeat_interval_ms}) must be at most "
                f"a third of VIGIL_KAFKA_SESSION_TIMEOUT_MS ({self.session_timeout_ms})"
            )
        return self

    # Layout and durability, also applied at creation (docs/operations.md, scale-out).
    partitions: int = Field(
        default=4,
        ge=1,
        le=1024,
        description="Partitions of each topic: the most processes of one consumer group "
        "(inference instances, say) that share its work.",
    )
    replication_factor: int = Field(
        default=1, ge=1, le=16, description="Copies of each partition: 3 on a 3-broker cluster."
    )
    min_insync_replicas: int | None = Field(
        default=None,
        ge=1,
        description="Copies a write must reach before it is acknowledged (producers ask "
        "acks=all). Unset: one less than the replication factor, at least 1, so that one "
        "broker may fail without stopping writes or losing an acknowledged one.",
    )

    @model_validator(mode="after")
    def _insync_within_replicas(self) -> KafkaSettings:
        if self.min_insync > self.replication_factor:
            raise ValueError(
                f"VIGIL_KAFKA_MIN_INSYNC_REPLICAS ({self.min_insync}) cannot exceed "
                f"VIGIL_KAFKA_REPLICATION_FACTOR ({self.replication_factor}): no write would "
                "ever succeed"
            )
        return self

    @property
    def min_insync(self) -> int:
        if self.min_insync_replicas is not None:
            return self.min_insync_replicas
        return max(1, self.replication_factor - 1)

    @property
    def topics(self) -> Topics:
        return Topics.in_namespace(self.topic_namespace)

    def consumer_group(self, name: str) -> str:
        """A consumer group's id in this deployment: deployments sharing a cluster through
        namespaces must not join each other's groups."""
        return self.topic_namespace + name


class S3Settings(BaseSettings):
    """Object storage (MinIO in compose, SeaweedFS natively): datasets and model artifacts."""

    model_config = _config("VIGIL_S3_")

    endpoint: str = "127.0.0.1:18333"
    access_key: str = "vigil"
    secret_key: SecretStr = SecretStr("vigil-secret-key")
    secure: bool = False
    region: str = "us-east-1"
    datasets_bucket: str = "vigil-datasets"
    models_bucket: str = "vigil-models"
    snapshots_bucket: str = "vigil-snapshots"
    public_endpoint: str = Field(
        default="",
        description="host[:port] at which browsers and tools outside the deployment reach S3; "
        "every presigned link names it. Empty: the endpoint.",
    )
    public_secure: bool | None = Field(
        default=None, description="https for presigned links; unset: as ``secure``."
    )

    @property
    def link_endpoint(self) -> str:
        """Where presigned links point (a link is signed for the host it names)."""
        return self.public_endpoint or self.endpoint

    @property
    def link_secure(self) -> bool:
        return self.secure if self.public_secure is None else self.public_secure


class DatabaseSettings(BaseSettings):
    """PostgreSQL, through SQLAlchemy 2 with the psycopg 3 driver."""

    model_config = _config("VIGIL_DATABASE_")

    url: SecretStr = SecretStr("postgresql+psycopg://vigil:vigil@127.0.0.1:15432/vigil")
    pool_size: int = Field(default=5, ge=1)


class RedisSettings(BaseSettings):
    """Redis: the Celery broker and result backend."""

    model_config = _config("VIGIL_REDIS_")

    url: str = "redis://127.0.0.1:16379/0"


class CommonSettings(BaseSettings):
    """What every service shares: environment, logging and the connection settings."""

    model_config = _config("VIGIL_")

    env: Environment = Environment.DEVELOPMENT
    log_level: str = "INFO"
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    s3: S3Settings = Field(default_factory=S3Settings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> CommonSettings:
        if self.env is Environment.DEVELOPMENT:
            return self
        if self.s3.secret_key.get_secret_value() in PLACEHOLDER_SECRETS:
            raise ValueError(
                "VIGIL_S3_SECRET_KEY is a placeholder; set a real secret when VIGIL_ENV=production"
            )
        if ":vigil@" in self.database.url.get_secret_value():
            raise ValueError(
                "VIGIL_DATABASE_URL uses the placeholder password; set a real one in production"
            )
        return self


def default_datasets_dir() -> Path:
    """Where the read-only shared datasets sit beside a checkout (``../shared/datasets``)."""
    return REPO_ROOT.parent / "shared" / "datasets"
