"""Shadow reports from ``vigil.shadow-scores.v1``: each camera's scores are folded into a
``ShadowWindow`` until its span is full, then, ``shadow_settle_s`` later (production's events of
its last frames are stored by then), judged and stored (``domain/shadow_reports``).

At least once, exactly one report per span: offsets are committed no further than the first
frame of any span still open or settling on the partition, so a restart replays what rebuilds
it; frames up to the last one a stored report covered are skipped (read from ``shadow_reports``
when a camera's models are first seen), and a report's id is derived from its span. A camera
whose models change mid-span (a promotion, another shadow) drops the partial span.
"""

from __future__ import annotations

import logging
import time
import uuid

from kafka import KafkaConsumer
from kafka.consumer.fetcher import ConsumerRecord
from kafka.structs import OffsetAndMetadata
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from vigil_api.core.loop_settings import LoopSettings
from vigil_api.domain.shadow_reports import store_report
from vigil_api.domain.shadow_window import ShadowWindow, WindowKey
from vigil_shared.db.loop_models import ShadowReport
from vigil_shared.db.models import Model
from vigil_shared.event_lifecycle import LifecycleSettings
from vigil_shared.metrics import ConsumerMetrics
from vigil_shared.schemas.shadow_scores import ShadowScore

log = logging.getLogger("vigil_api.loop")
MODELS_REMEMBERED = 64
"""Shadow models whose lifecycle is kept; more are read again (a few a week in practice)."""


class ShadowReporter:
    def __init__(
        self,
        *,
        consumer: KafkaConsumer,
        sessions: sessionmaker[Session],
        settings: LoopSettings,
        metrics: ConsumerMetrics,
        poll_timeout_ms: int = 500,
        max_records: int = 500,
    ) -> None:
        self._consumer = consumer
        self._sessions = sessions
        self._settings = settings
        self._lifecycles: dict[str, LifecycleSettings] = {}
        self.metrics = metrics
        self._poll_timeout_ms = poll_timeout_ms
        self._max_records = max_records
        self._windows: dict[str, ShadowWindow] = {}
        self._settling: list[tuple[float, ShadowWindow]] = []
        self._reported: dict[tuple[WindowKey, int], int] = {}
        self.reports = 0

    @property
    def consumer(self) -> KafkaConsumer:
        return self._consumer

    def step(self) -> list[uuid.UUID]:
        """One poll: fold it, store the spans it filled, then commit what no open span needs;
        the ids of the reports stored."""
        batch = self._consumer.poll(timeout_ms=self._poll_timeout_ms, max_records=self._max_records)
        records = [r for part in batch.values() for r in part]
        self.metrics.records.inc(len(records))
        self._drop_revoked()
        for record in records:
            window = self._fold(record)
            if window is not None and self._is_full(window):
                # Exactly its span: the camera's next frame starts another, and a frame of it
                # read again (a rewind after a broker outage) is skipped while it settles.
                self._settling.append((time.monotonic() + self._settings.shadow_settle_s, window))
                self._reported[(window.key, window.partition)] = window.last_offset
                del self._windows[window.key.camera_id]
        now = time.monotonic()
        due = [window for at, window in self._settling if at <= now]
        self._settling = [(at, window) for at, window in self._settling if at > now]
        stored = self._report(due) if due else []
        if records or stored:
            self._commit()
        self.metrics.measure_lag(self._consumer)
        return stored

    def _is_full(self, window: ShadowWindow) -> bool:
        settings = self._settings
        return window.full(span_frames=settings.shadow_span_frames, span_s=settings.shadow_span_s)

    def _fold(self, record: ConsumerRecord) -> ShadowWindow | None:
        """The record into its camera's span; the span, or None for a record skipped."""
        try:
            score = ShadowScore.read_json(record.value or b"")
        except ValidationError as exc:  # a statistic: counted and logged, not dead-lettered
            self.metrics.dead_letters.inc()
            log.warning("invalid shadow score skipped", extra={"reason": str(exc)[:500]})
            return None
        key = WindowKey(score.camera_id, score.shadow.id, score.production.id)
        if score.frame_offset <= self._reported_through(key, record.partition):
            return None
        window = self._windows.get(score.camera_id)
        if window is None or window.key != key or window.partition != record.partition:
            window = ShadowWindow.starting(score, record.partition, self._lifecycle(key))
            self._windows[score.camera_id] = window
        window.add(score)
        return window

    def _lifecycle(self, key: WindowKey) -> LifecycleSettings:
        """The lifecycle the shadow model's events would go through in production: on its
        calibrated debounce (a model's metrics never change, so it is read once)."""
        found = self._lifecycles.get(key.shadow_model_id)
        if found is None:
            with self._sessions() as session:
                model = session.get(Model, key.shadow_model_id)
                metrics = model.metrics if model is not None else {}
            if len(self._lifecycles) >= MODELS_REMEMBERED:
                self._lifecycles.clear()
            found = self._lifecycles[key.shadow_model_id] = self._settings.lifecycle(metrics)
        return found

    def _reported_through(self, key: WindowKey, partition: int) -> int:
        """The last frame offset a stored report of these models covered (-1: none)."""
        found = self._reported.get((key, partition))
        if found is None:
            with self._sessions() as session:
                query = select(func.max(ShadowReport.last_offset)).where(
                    ShadowReport.camera_id == key.camera_id,
                    ShadowReport.shadow_model_id == key.shadow_model_id,
                    ShadowReport.production_model_id == key.production_model_id,
                    ShadowReport.partition == partition,
                )
                found = session.scalar(query)
            found = -1 if found is None else found
            self._reported[(key, partition)] = found
        return found

    def _report(self, windows: list[ShadowWindow]) -> list[uuid.UUID]:
        ids = []
        with self._sessions.begin() as session:
            for window in windows:
                window.close()
                ids.append(store_report(session=session, window=window, settings=self._settings))
        self.reports += len(ids)
        log.info("shadow reports stored", extra={"reports": [str(i) for i in ids]})
        return ids

    def _commit(self) -> None:
        offsets = {}
        for tp in self._consumer.assignment():
            spans = [*self._windows.values(), *(window for _, window in self._settling)]
            held = [w.first_offset for w in spans if w.partition == tp.partition]
            position = self._consumer.position(tp)
            offsets[tp] = OffsetAndMetadata(min([position, *held]), "", -1)
        if offsets:
            self._consumer.commit(offsets)

    def _drop_revoked(self) -> None:
        """Forget the spans of partitions this process no longer reads (another replays them)."""
        owned = {tp.partition for tp in self._consumer.assignment()}
        for camera_id, window in list(self._windows.items()):
            if window.partition not in owned:
                del self._windows[camera_id]
        self._settling = [(at, w) for at, w in self._settling if w.partition in owned]
