"""``python -m vigil_api.consumers.camera_status_main``: store ingest's camera status and
inference's scoring status until SIGTERM.

A process of its own (not the event sink's): status and events fail and scale independently,
and a slow event backlog must not make every camera look stale.
"""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from vigil_api.consumers.camera_status import StatusRecorder
from vigil_api.consumers.runner import MetricsPort, run_consumer
from vigil_api.core.settings import ApiSettings
from vigil_shared.kafka import make_consumer
from vigil_shared.metrics import ConsumerMetrics

PORT = MetricsPort(
    "VIGIL_API_CAMERA_STATUS_METRICS_PORT", lambda settings: settings.camera_status_metrics_port
)


def build(
    settings: ApiSettings, sessions: sessionmaker[Session], metrics: ConsumerMetrics
) -> StatusRecorder:
    kafka = settings.common.kafka
    topics = kafka.topics
    consumer = make_consumer(
        kafka,
        topics.camera_status,
        topics.scoring_status,
        group_id=settings.camera_status_group_id,
    )
    return StatusRecorder(
        consumer=consumer,
        sessions=sessions,
        metrics=metrics,
        scoring_topic=topics.scoring_status,
    )


def main() -> None:
    run_consumer("camera-status", build, PORT)


if __name__ == "__main__":
    main()
