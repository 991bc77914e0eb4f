"""Camera status: ingest's reports on ``vigil.camera-status.v1`` and inference's on
``vigil.scoring-status.v1`` (see ``scoring_status.py``), kept as the latest per camera.

``python -m vigil_api.consumers.camera_status_main`` runs ``StatusRecorder``; the API shows the
stored reports with each camera. A report is stored only if it is newer than the stored one, so
replays and reorderings never move a camera's status back in time. Offsets are committed after
the batch's transaction. A camera whose reports stopped for three report intervals is shown as
``unknown``: its ingest process is gone or cut off, whatever its last report said.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol, TypeVar

from kafka import KafkaConsumer
from kafka.errors import KafkaError
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    computed_field,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from vigil_api.consumers.scoring_status import scoring_row
from vigil_shared.db.models import CameraScoringRow, CameraStatusRow
from vigil_shared.kafka import BrokerOutage
from vigil_shared.metrics import ConsumerMetrics
from vigil_shared.schemas.camera_status import CameraState, CameraStatus
from vigil_shared.schemas.scoring_status import ScoringStatus

log = logging.getLogger("vigil_api.camera_status")
MISSED_REPORTS_BEFORE_UNKNOWN = 3


class CameraStatusOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    reported_state: CameraState = Field(validation_alias="state")
    reason: str | None
    since: AwareDatetime
    reported_at: AwareDatetime
    report_interval_s: float
    last_frame_at: AwareDatetime | None
    fps: float
    target_fps: float
    frames_published: int
    frames_dropped: int
    frames_gated: int
    reconnects: int

    @computed_field  # type: ignore[prop-decorator]
    @property
    def state(self) -> Literal["online", "offline", "stopped", "unknown"]:
        """The reported state, or ``unknown`` when reports stopped coming."""
        overdue = timedelta(seconds=self.report_interval_s * MISSED_REPORTS_BEFORE_UNKNOWN)
        if datetime.now(UTC) - self.reported_at > overdue and self.reported_state != "stopped":
            return "unknown"
        return self.reported_state


def status_row(report: CameraStatus) -> dict[str, object]:
    return {
        "camera_id": report.camera_id,
        "state": report.state,
        "reason": report.reason,
        "since": report.since,
        "reported_at": report.reported_at,
        "report_interval_s": report.report_interval_s,
        "last_frame_at": report.last_frame_at,
        "fps": report.fps,
        "target_fps": report.target_fps,
        "frames_published": report.frames_published,
        "frames_dropped": report.frames_dropped,
        "frames_gated": report.frames_gated,
        "reconnects": report.reconnects,
    }


class _Report(Protocol):
    @property
    def camera_id(self) -> str: ...

    @property
    def reported_at(self) -> datetime: ...


R = TypeVar("R", bound=_Report)


def upsert_latest(
    session: Session,
    table: type[CameraStatusRow | CameraScoringRow],
    reports: Sequence[R],
    row: Callable[[R], dict[str, object]],
) -> None:
    """Upsert the newest report of each camera; an older one never replaces a stored newer one
    (replays and reorderings never move a camera back in time)."""
    latest: dict[str, R] = {}
    for report in reports:
        old = latest.get(report.camera_id)
        if old is None or report.reported_at >= old.reported_at:
            latest[report.camera_id] = report
    if not latest:
        return
    statement = insert(table).values([row(r) for r in latest.values()])
    columns = {c: statement.excluded[c] for c in row(next(iter(latest.values())))}
    del columns["camera_id"]
    statement = statement.on_conflict_do_update(
        index_elements=[table.camera_id],
        set_=columns,
        where=statement.excluded.reported_at >= table.reported_at,
    )
    session.execute(statement)


def store_reports(
    sessions: sessionmaker[Session],
    reports: Sequence[CameraStatus],
    scoring: Sequence[ScoringStatus] = (),
) -> None:
    """Ingest's camera reports and inference's scoring reports, in one transaction."""
    with sessions.begin() as session:
        upsert_latest(session, CameraStatusRow, reports, status_row)
        upsert_latest(session, CameraScoringRow, scoring, scoring_row)


class StatusRecorder:
    """Polls the status topic and stores each camera's latest report until ``stop`` is set."""

    def __init__(
        self,
        *,
        consumer: KafkaConsumer,
        sessions: sessionmaker[Session],
        metrics: ConsumerMetrics | None = None,
        scoring_topic: str | None = None,
    ) -> None:
        self._consumer = consumer
        self._sessions = sessions
        self.metrics = metrics or ConsumerMetrics("camera-status")
        self._scoring_topic = scoring_topic

    def run(self, stop: threading.Event) -> None:
        outage = BrokerOutage("camera-status")
        try:
            while not stop.is_set():
                try:
                    outage.recover(self._consumer)
                    self.step()
                except KafkaError as exc:  # a newer report wins anyway; nothing to undo
                    outage.failed(exc, stop)
        finally:
            self._consumer.close()

    def step(self) -> int:
        """One poll: store it, then commit its offsets; returns how many reports were valid."""
        reports: list[CameraStatus] = []
        scoring: list[ScoringStatus] = []
        polled = self._consumer.poll(timeout_ms=1000)
        for partition, batch in polled.items():
            self.metrics.records.inc(len(batch))
            for record in batch:
                try:
                    if partition.topic == self._scoring_topic:
                        scoring.append(ScoringStatus.read_json(record.value or b""))
                    else:
                        reports.append(CameraStatus.read_json(record.value or b""))
                except ValidationError as exc:
                    # A camera's next report replaces it: a bad one is logged and skipped.
                    log.warning(
                        "invalid camera status skipped",
                        extra={
                            "topic": partition.topic,
                            "offset": record.offset,
                            "error": str(exc)[:300],
                        },
                    )
        if polled:
            store_reports(self._sessions, reports, scoring)
            self._consumer.commit()
        self.metrics.measure_lag(self._consumer)
        return len(reports) + len(scoring)
