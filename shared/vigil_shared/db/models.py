"""Tables of the registry (jobs, models), the event store, cameras and API keys."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from vigil_shared.motion_units import MOTION_FPS, rate_notice


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSONB, datetime: DateTime(timezone=True)}


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(128))
    task: Mapped[str] = mapped_column(String(32))
    spec: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16), index=True)
    progress: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    model_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    created_by: Mapped[str | None] = mapped_column(String(128))
    # Times the job's worker stopped beating and the job was queued again (or failed).
    worker_losses: Mapped[int] = mapped_column(default=0, server_default="0")


class JobLog(Base):
    """A line of a job's log, written by the trainer as the job runs (``GET .../logs``)."""

    __tablename__ = "job_logs"
    __table_args__ = (Index("ix_job_logs_job_id_id", "job_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(server_default=func.now())
    level: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text)


class Model(Base):
    __tablename__ = "models"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    task: Mapped[str] = mapped_column(String(32))
    architecture: Mapped[str] = mapped_column(String(64))
    stage: Mapped[str] = mapped_column(String(16), default="candidate", index=True)
    artifact_key: Mapped[str] = mapped_column(String(255))
    artifact_sha256: Mapped[str] = mapped_column(String(64))
    manifest_key: Mapped[str] = mapped_column(String(255))
    dataset_sha256: Mapped[str] = mapped_column(String(64))
    threshold: Mapped[float] = mapped_column(Float)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    job_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    parent_model_id: Mapped[str | None] = mapped_column(String(64))
    dataset_name: Mapped[str | None] = mapped_column(String(128))
    dataset_version: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class ModelAssignmentRow(Base):
    """The models of a scope (a camera id, or ``*`` for the global default) right now."""

    __tablename__ = "model_assignments"

    scope: Mapped[str] = mapped_column(String(64), primary_key=True)
    production_model_id: Mapped[str | None] = mapped_column(ForeignKey("models.id"))
    shadow_model_id: Mapped[str | None] = mapped_column(ForeignKey("models.id"))
    updated_by: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class ModelStageChange(Base):
    """History of promotions and rollbacks, newest last: what rollback walks back through."""

    __tablename__ = "model_stage_changes"
    __table_args__ = (Index("ix_model_stage_changes_scope_id", "scope", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    change_id: Mapped[uuid.UUID] = mapped_column(unique=True)
    scope: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16))
    model_id: Mapped[str | None] = mapped_column(String(64))
    previous_model_id: Mapped[str | None] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(128))
    # Why, when it is not the plain request of ``actor``: a gate override, an automatic rollback.
    reason: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(server_default=func.now())


class Dataset(Base):
    """A stored dataset version; the manifest in S3 (``vigil_shared.datasets``) is the truth."""

    __tablename__ = "datasets"
    __table_args__ = (UniqueConstraint("name", "version", name="uq_datasets_name_version"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(128))
    version: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(Text, default="")
    manifest_key: Mapped[str] = mapped_column(String(255))
    n_items: Mapped[int]
    label_counts: Mapped[dict[str, Any]]
    camera_ids: Mapped[list[str]] = mapped_column(ARRAY(String(64)))
    # The camera scope of the key that made it; NULL: fleet-wide (an unscoped key). 0008.
    owner_scope: Mapped[list[str] | None] = mapped_column(ARRAY(String(64)))
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    # When its oldest camera frame was captured: what the cameras' retention counts from. NULL
    # until the retention sweep has read it from the manifest (or no frame is a camera's). 0009.
    footage_from: Mapped[datetime | None]


class Event(Base):
    """One row per event, from start to end. ``frame_seq``/``captured_at``/``score`` describe
    its peak frame (the one in the snapshot); ``review*`` is operator feedback."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_camera_captured", "camera_id", "captured_at"),
        # Keyset pages (started_at, event_id) and the live stream (updated_at, event_id): 0005.
        Index("ix_events_started_id", "started_at", "event_id"),
        Index("ix_events_camera_started_id", "camera_id", "started_at", "event_id"),
        Index("ix_events_updated_id", "updated_at", "event_id"),
    )

    event_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    camera_id: Mapped[str] = mapped_column(String(64))
    frame_seq: Mapped[int] = mapped_column(BigInteger)
    captured_at: Mapped[datetime]
    detected_at: Mapped[datetime]
    score: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    model_id: Mapped[str] = mapped_column(String(128))
    model_kind: Mapped[str] = mapped_column(String(16))
    stored_at: Mapped[datetime] = mapped_column(server_default=func.now())
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(8), default="open")
    label: Mapped[str | None] = mapped_column(String(64))
    snapshot_key: Mapped[str | None] = mapped_column(String(255))
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())
    review: Mapped[str | None] = mapped_column(String(16))
    review_label: Mapped[str | None] = mapped_column(String(64))
    review_note: Mapped[str | None] = mapped_column(Text)
    reviewed_by: Mapped[str | None] = mapped_column(String(128))
    reviewed_at: Mapped[datetime | None]


class Camera(Base):
    """A camera registered by an operator: where ingest reads it and how it samples it."""

    __tablename__ = "cameras"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    source: Mapped[str] = mapped_column(String(2048))
    target_fps: Mapped[float] = mapped_column(Float)
    max_width: Mapped[int]
    max_height: Mapped[int]
    jpeg_quality: Mapped[int]
    enabled: Mapped[bool] = mapped_column(default=True)
    # Polygons of [x, y] fractions of the picture that ingest blacks out before anything else.
    masks: Mapped[list[Any]] = mapped_column(JSONB, default=list, server_default="[]")
    # Days its events, snapshots and footage in datasets are kept; NULL: the global maximum
    # (VIGIL_API_RETENTION_MAX_DAYS), which also caps this. 0009.
    retention_days: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())
    # Read-only views: the assignment (scope = camera id), ingest's latest status report and
    # inference's latest scoring status.
    assignment: Mapped[ModelAssignmentRow | None] = relationship(
        primaryjoin="foreign(ModelAssignmentRow.scope) == Camera.id",
        viewonly=True,
        lazy="selectin",
        uselist=False,
    )
    status: Mapped[CameraStatusRow | None] = relationship(
        primaryjoin="foreign(CameraStatusRow.camera_id) == Camera.id",
        viewonly=True,
        lazy="selectin",
        uselist=False,
    )
    scoring: Mapped[CameraScoringRow | None] = relationship(
        primaryjoin="foreign(CameraScoringRow.camera_id) == Camera.id",
        viewonly=True,
        lazy="selectin",
        uselist=False,
    )

    @property
    def model_id(self) -> str | None:
        """The camera's own production model (not the global default it may fall back to)."""
        return self.assignment.production_model_id if self.assignment is not None else None

    @property
    def rate_notice(self) -> str | None:
        """Whether the camera's frame rate (as ingest measures it, else its target) is outside
        what the motion of the model scoring it handles as measured (``motion_units``)."""
        model = self.scoring.model if self.scoring is not None else None
        if model is None:
            return None
        units = model.metrics.get(MOTION_FPS)
        measured = self.status.fps if self.status is not None else 0.0
        fps = measured if measured > 0 else self.target_fps
        return rate_notice(fps, units if isinstance(units, int | float) else None)


class CameraStatusRow(Base):
    """The latest ``vigil.camera-status.v1`` report of a camera, as ingest last saw it."""

    __tablename__ = "camera_status"

    camera_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    since: Mapped[datetime]
    reported_at: Mapped[datetime]
    report_interval_s: Mapped[float] = mapped_column(Float)
    last_frame_at: Mapped[datetime | None]
    fps: Mapped[float] = mapped_column(Float)
    target_fps: Mapped[float] = mapped_column(Float)
    frames_published: Mapped[int] = mapped_column(BigInteger)
    frames_dropped: Mapped[int] = mapped_column(BigInteger)
    frames_gated: Mapped[int] = mapped_column(BigInteger)
    reconnects: Mapped[int]


class CameraScoringRow(Base):
    """The latest ``vigil.scoring-status.v1`` record of a camera: the model inference scores it
    with, the one assigned to it and, when they differ, why."""

    __tablename__ = "camera_scoring"

    camera_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    model_id: Mapped[str] = mapped_column(String(128))
    model_kind: Mapped[str] = mapped_column(String(16))
    assigned_model_id: Mapped[str | None] = mapped_column(String(128), index=True)
    shadow_model_id: Mapped[str | None] = mapped_column(String(128))
    problem: Mapped[str | None] = mapped_column(Text)
    reported_at: Mapped[datetime]
    # Read-only: the registry row of the model scoring the camera (none for the warm-up model).
    model: Mapped[Model | None] = relationship(
        primaryjoin="foreign(CameraScoringRow.model_id) == Model.id",
        viewonly=True,
        lazy="selectin",
        uselist=False,
    )


class ApiKey(Base):
    """An API key: only its sha256 and a short prefix (to tell keys apart) are stored."""

    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(128))
    prefix: Mapped[str] = mapped_column(String(16))
    key_sha256: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    role: Mapped[str] = mapped_column(String(16))
    # NULL: every camera; otherwise the only cameras the key sees (they need not exist yet).
    camera_ids: Mapped[list[str] | None] = mapped_column(ARRAY(String(64)))
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    # A key a service (ingest) runs with: revoking it stops that service, so it needs force. 0008.
    service: Mapped[bool] = mapped_column(default=False, server_default="false")
    # When a request last used it, to the minute (``auth.LAST_USED_RESOLUTION``). 0008.
    last_used_at: Mapped[datetime | None]


class DeletionRecord(Base):
    """The audit log of deletions: who deleted what, when and why (retention or a request).

    One row per deleted dataset or model, and per batch of events (their ids in ``detail``)."""

    __tablename__ = "deletion_audit"
    __table_args__ = (Index("ix_deletion_audit_at_id", "at", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(server_default=func.now())
    actor: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(255))
    reason: Mapped[str] = mapped_column(Text)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class DeletedEvent(Base):
    """A deleted event's id, until no message of it can still be read from Kafka: the event
    sink stores nothing more for it (a late update or a replay would bring it back)."""

    __tablename__ = "deleted_events"

    event_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    camera_id: Mapped[str] = mapped_column(String(64))
    deleted_at: Mapped[datetime] = mapped_column(server_default=func.now(), index=True)


class Evaluation(Base):
    """A candidate and the production model it would replace, scored on the same held-out groups
    of one dataset version (and the same reviews): what the evaluation gate reads. 0011."""

    __tablename__ = "evaluations"
    __table_args__ = (Index("ix_evaluations_model_created", "model_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    model_id: Mapped[str] = mapped_column(String(64))
    # NULL: no production model served these cameras (or its artifact could not be loaded).
    production_model_id: Mapped[str | None] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(String(64))
    camera_ids: Mapped[list[str]] = mapped_column(ARRAY(String(64)))
    dataset_name: Mapped[str] = mapped_column(String(128))
    dataset_version: Mapped[str] = mapped_column(String(64))
    job_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    groups: Mapped[list[str]] = mapped_column(ARRAY(String(256)))
    metrics: Mapped[dict[str, Any]]
    production_metrics: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # Counts behind the figures (frames, anomalies, normal hours) and why production is absent.
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class GatePolicy(Base):
    """What a candidate must show against production before it may be promoted in a scope (a
    camera id, or ``*`` for every camera without its own policy). A NULL rule is not checked."""

    __tablename__ = "gate_policies"

    scope: Mapped[str] = mapped_column(String(64), primary_key=True)
    auroc_tolerance: Mapped[float | None] = mapped_column(Float)
    recall_tolerance: Mapped[float | None] = mapped_column(Float)
    false_alarms_per_hour_tolerance: Mapped[float | None] = mapped_column(Float)
    updated_by: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class GateDecision(Base):
    """One run of the gate: the model, the scope, the evaluation and policy it read, each rule's
    figures, and whether the model may be promoted there."""

    __tablename__ = "gate_decisions"
    __table_args__ = (Index("ix_gate_decisions_model_created", "model_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    model_id: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(String(64))
    passed: Mapped[bool]
    evaluation_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("evaluations.id", ondelete="SET NULL")
    )
    production_model_id: Mapped[str | None] = mapped_column(String(64))
    policy: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    checks: Mapped[list[Any]] = mapped_column(JSONB, default=list)
    summary: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
