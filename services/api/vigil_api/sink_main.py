"""``python -m vigil_api.sink_main``: run the event sink until SIGTERM."""

from __future__ import annotations

import sys

from vigil_api.settings import get_settings
from vigil_api.sink import EventSink
from vigil_shared.db.engine import (
    DatabaseUnavailableError,
    make_engine,
    make_session_factory,
    wait_for_database,
)
from vigil_shared.kafka import KafkaUnavailableError, ensure_topics, make_consumer, make_producer
from vigil_shared.lifecycle import stop_on_signals
from vigil_shared.logging import configure_logging


def main() -> None:
    settings = get_settings()
    common = settings.common
    configure_logging("event-sink", common.log_level)
    stop = stop_on_signals()
    engine = make_engine(common.database)
    try:
        wait_for_database(engine)
        topics = common.kafka.topics
        ensure_topics(common.kafka, topics.all(), compacted=topics.compacted())
        sink = EventSink(
            consumer=make_consumer(common.kafka, topics.events, group_id=settings.sink_group_id),
            dead_letter_topic=topics.events_dead_letter,
            producer=make_producer(common.kafka),
            sessions=make_session_factory(engine),
        )
    except (DatabaseUnavailableError, KafkaUnavailableError) as exc:
        print(f"event-sink: {exc}", file=sys.stderr)
        sys.exit(2)
    try:
        sink.run(stop)
    finally:
        engine.dispose()


if __name__ == "__main__":
    main()
