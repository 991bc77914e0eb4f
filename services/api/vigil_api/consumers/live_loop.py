"""The loop process: shadow reports from live shadow scores, auto-promotion of candidates whose
report passed (when ``VIGIL_LOOP_AUTO_PROMOTE``), and the rollback watch over every promotion.

One thread, one stop flag: each turn polls the shadow scores (bounded), stores the reports of
full spans, then, every ``tick_s``, opens watches for new promotions and checks the open ones.
A Kafka failure pauses and retries (``BrokerOutage``); a promotion or rollback Kafka did not
acknowledge changed nothing and is tried again on a later turn.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from kafka import KafkaProducer
from kafka.errors import KafkaError
from prometheus_client import Counter, Gauge
from sqlalchemy.orm import Session, sessionmaker

from vigil_api.consumers.shadow_reporter import ShadowReporter
from vigil_api.core.loop_settings import LoopSettings
from vigil_api.domain.registry_stages import AssignmentPublishError, Publisher
from vigil_api.domain.rollback_watch import check_watches, count_watching, open_watches
from vigil_api.domain.shadow_reports import promote_if_passed
from vigil_shared.db.loop_models import ShadowReport
from vigil_shared.kafka import BrokerOutage
from vigil_shared.metrics import ConsumerMetrics

log = logging.getLogger("vigil_api.loop")


class LoopMetrics:
    """The loop's own figures, beside the consumer metrics every consumer exports."""

    def __init__(self, consumer: ConsumerMetrics) -> None:
        r = consumer.registry
        self.consumer = consumer
        self.reports = Counter(
            "vigil_loop_shadow_reports", "Shadow reports stored", ["passed"], registry=r
        )
        self.promotions = Counter(
            "vigil_loop_promotions", "Candidates promoted by a passing shadow report", registry=r
        )
        self.watch_endings = Counter(
            "vigil_loop_watch_endings", "Rollback watches ended, by outcome", ["status"], registry=r
        )
        self.watching = Gauge("vigil_loop_watching", "Promotions being watched", registry=r)


class LiveLoop:
    def __init__(
        self,
        *,
        reporter: ShadowReporter,
        sessions: sessionmaker[Session],
        publisher: Publisher,
        settings: LoopSettings,
        metrics: LoopMetrics,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._reporter = reporter
        self._sessions = sessions
        self._publisher = publisher
        self._settings = settings
        self.metrics = metrics
        self._clock = clock
        self._tick_due = 0.0

    @property
    def producer(self) -> KafkaProducer:
        return self._publisher.producer

    def run(self, stop: threading.Event) -> None:
        outage = BrokerOutage("loop")
        try:
            while not stop.is_set():
                try:
                    outage.recover(self._reporter.consumer)
                    self.reported(self._reporter.step())
                    self.tick()
                except KafkaError as exc:  # stored reports stay; the rest is read again
                    outage.failed(exc, stop)
        finally:
            self._reporter.consumer.close(autocommit=False)
            self.producer.close(timeout=10)

    def tick(self) -> None:
        """Every ``tick_s``: watch new promotions, check the open watches."""
        now_mono = time.monotonic()
        if now_mono < self._tick_due:
            return
        self._tick_due = now_mono + self._settings.tick_s
        now = self._clock()
        with self._sessions() as session:
            open_watches(session=session, settings=self._settings, now=now)
            session.commit()
            try:
                ended = check_watches(
                    session=session, publisher=self._publisher, settings=self._settings, now=now
                )
            except AssignmentPublishError as exc:
                log.warning(
                    "rollback not acknowledged; retried next tick", extra={"reason": str(exc)}
                )
                ended = []
            for watch in ended:
                self.metrics.watch_endings.labels(watch.status).inc()
                log.info(
                    "rollback watch ended",
                    extra={"scope": watch.scope, "status": watch.status, "reason": watch.reason},
                )
            self.metrics.watching.set(count_watching(session))

    def reported(self, report_ids: list[uuid.UUID]) -> None:
        """Count the new reports and promote the candidates of those that passed (if set)."""
        for report_id in report_ids:
            with self._sessions() as session:
                row = session.get(ShadowReport, report_id)
                if row is None:
                    continue
                self.metrics.reports.labels(str(row.passed).lower()).inc()
                try:
                    note = promote_if_passed(
                        session=session,
                        publisher=self._publisher,
                        report=report_id,
                        settings=self._settings,
                    )
                except AssignmentPublishError as exc:
                    log.warning("auto-promotion not acknowledged", extra={"reason": str(exc)})
                    continue
            if note is not None:
                self.metrics.promotions.inc()
                log.info("candidate promoted", extra={"report": report_id, "reason": note})
