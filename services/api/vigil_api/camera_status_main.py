"""``python -m vigil_api.camera_status_main``: store ingest's camera status until SIGTERM.

A process of its own (not the event sink's): status and events fail and scale independently,
and a slow event backlog must not make every camera look stale.
"""

from __future__ import annotations

import sys

from vigil_api.camera_status import StatusRecorder
from vigil_api.settings import get_settings
from vigil_shared.db.engine import (
    DatabaseUnavailableError,
    make_engine,
    make_session_factory,
    wait_for_database,
)
from vigil_shared.kafka import KafkaUnavailableError, ensure_topics, make_consumer
from vigil_shared.lifecycle import stop_on_signals
from vigil_shared.logging import configure_logging


def main() -> None:
    settings = get_settings()
    common = settings.common
    configure_logging("camera-status", common.log_level)
    stop = stop_on_signals()
    engine = make_engine(common.database)
    try:
        wait_for_database(engine)
        topics = common.kafka.topics
        ensure_topics(common.kafka, topics.all(), compacted=topics.compacted())
        consumer = make_consumer(
            common.kafka, topics.camera_status, group_id=settings.camera_status_group_id
        )
    except (DatabaseUnavailableError, KafkaUnavailableError) as exc:
        print(f"camera-status: {exc}", file=sys.stderr)
        sys.exit(2)
    try:
        StatusRecorder(consumer=consumer, sessions=make_session_factory(engine)).run(stop)
    finally:
        engine.dispose()


if __name__ == "__main__":
    main()
