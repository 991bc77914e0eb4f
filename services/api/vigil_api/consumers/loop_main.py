"""``python -m vigil_api.consumers.loop_main``: run the live loop (shadow reports,
auto-promotion, rollback watch) until SIGTERM."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from vigil_api.consumers.live_loop import LiveLoop, LoopMetrics
from vigil_api.consumers.runner import MetricsPort, run_consumer
from vigil_api.consumers.shadow_reporter import ShadowReporter
from vigil_api.core.settings import ApiSettings
from vigil_api.domain.registry_stages import Publisher
from vigil_shared.kafka import make_consumer, make_producer
from vigil_shared.metrics import ConsumerMetrics

PORT = MetricsPort("VIGIL_LOOP_METRICS_PORT", lambda settings: settings.loop.metrics_port)


def build(
    settings: ApiSettings, sessions: sessionmaker[Session], metrics: ConsumerMetrics
) -> LiveLoop:
    kafka = settings.common.kafka
    loop = settings.loop
    reporter = ShadowReporter(
        consumer=make_consumer(kafka, kafka.topics.shadow_scores, group_id=loop.group_id),
        sessions=sessions,
        settings=loop,
        metrics=metrics,
    )
    return LiveLoop(
        reporter=reporter,
        sessions=sessions,
        publisher=Publisher(
            producer=make_producer(kafka),
            topic=kafka.topics.model_assignments,
            timeout_s=settings.assignment_publish_timeout_s,
        ),
        settings=loop,
        metrics=LoopMetrics(metrics),
    )


def main() -> None:
    run_consumer("loop", build, PORT)


if __name__ == "__main__":
    main()
