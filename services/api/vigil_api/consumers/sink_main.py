"""``python -m vigil_api.consumers.sink_main``: run the event sink until SIGTERM."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from vigil_api.consumers.runner import MetricsPort, run_consumer
from vigil_api.consumers.sink import EventSink
from vigil_api.core.settings import ApiSettings
from vigil_shared.kafka import make_consumer, make_producer
from vigil_shared.metrics import ConsumerMetrics

PORT = MetricsPort("VIGIL_API_SINK_METRICS_PORT", lambda settings: settings.sink_metrics_port)


def build(
    settings: ApiSettings, sessions: sessionmaker[Session], metrics: ConsumerMetrics
) -> EventSink:
    kafka = settings.common.kafka
    return EventSink(
        consumer=make_consumer(kafka, kafka.topics.events, group_id=settings.sink_group_id),
        dead_letter_topic=kafka.topics.events_dead_letter,
        producer=make_producer(kafka),
        sessions=sessions,
        metrics=metrics,
    )


def main() -> None:
    run_consumer("event-sink", build, PORT)


if __name__ == "__main__":
    main()
