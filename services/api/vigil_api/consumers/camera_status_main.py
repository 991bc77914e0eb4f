"""``python -m vigil_api.consumers.camera_status_main``: store ingest's camera status until SIGTERM.

A process of its own (not the event sink's): status and events fail and scale independently,
and a slow event backlog must not make every camera look stale.
"""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from vigil_api.consumers.camera_status import StatusRecorder
from vigil_api.consumers.runner import run_consumer
from vigil_api.core.settings import ApiSettings
from vigil_shared.kafka import make_consumer


def build(settings: ApiSettings, sessions: sessionmaker[Session]) -> StatusRecorder:
    kafka = settings.common.kafka
    consumer = make_consumer(
        kafka, kafka.topics.camera_status, group_id=settings.camera_status_group_id
    )
    return StatusRecorder(consumer=consumer, sessions=sessions)


def main() -> None:
    run_consumer("camera-status", build)


if __name__ == "__main__":
    main()
