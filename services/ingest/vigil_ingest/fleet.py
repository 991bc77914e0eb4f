"""Fleet mode: run every enabled camera the API defines, and follow its changes live.

Each refresh reconciles what runs with what is defined: new enabled cameras start, removed or
disabled ones stop, a camera whose definition changed restarts with the new one, and the rest
are left alone. A camera that fails (a crashed loop, a file that cannot be decoded) is restarted
at once, but at most ``MAX_RESTARTS`` times in ``RESTART_WINDOW_S``, so a camera that fails on
every start does not spin; after that, as after a clean end (a file played out), it stays stopped
until its definition changes. Nothing here stops a camera because the API could not be read.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from kafka import KafkaProducer

from vigil_ingest.camera import CameraPipeline, build_camera
from vigil_ingest.definitions import CameraDefinition
from vigil_ingest.metrics import IngestMetrics
from vigil_ingest.publisher import send_status
from vigil_ingest.push import PushRoutes
from vigil_ingest.settings import IngestSettings
from vigil_ingest.sources import SourceError, check_exists
from vigil_ingest.status import CameraTracker
from vigil_shared.logging import bind

log = logging.getLogger(__name__)
BuildCamera = Callable[..., CameraPipeline]
MAX_RESTARTS = 3
RESTART_WINDOW_S = 60.0


@dataclass
class Changes:
    """What one reconciliation did, by camera id."""

    started: list[str] = field(default_factory=list)
    restarted: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.started or self.restarted or self.stopped or self.failed)


@dataclass
class _Running:
    definition: CameraDefinition
    pipeline: CameraPipeline


class Fleet:
    """The cameras this process runs, all on one Kafka producer and one metrics registry."""

    def __init__(
        self,
        *,
        base: IngestSettings,
        producer: KafkaProducer,
        metrics: IngestMetrics,
        grace_s: float,
        push_routes: PushRoutes | None = None,
        build: BuildCamera = build_camera,
    ) -> None:
        self._base = base
        self._producer = producer
        self._metrics = metrics
        self._grace_s = grace_s
        self._push_routes = push_routes
        self._build = build
        self._running: dict[str, _Running] = {}
        self._ended: dict[str, CameraDefinition] = {}  # ended by themselves, by definition
        self._failures: dict[str, deque[float]] = {}  # monotonic times of recent failures
        self._warning: str | None = None

    @property
    def running(self) -> dict[str, CameraDefinition]:
        return {camera_id: run.definition for camera_id, run in self._running.items()}

    def pipeline(self, camera_id: str) -> CameraPipeline | None:
        run = self._running.get(camera_id)
        return run.pipeline if run else None

    def reconcile(self, definitions: Iterable[CameraDefinition]) -> Changes:
        """Make the running cameras match ``definitions`` (the API's whole list)."""
        wanted = {d.id: d for d in definitions if d.enabled}
        changes = Changes()
        for camera_id, run in list(self._running.items()):
            if camera_id not in wanted:
                changes.stopped.append(camera_id)
            elif wanted[camera_id] != run.definition:
                changes.restarted.append(camera_id)
        self._stop(changes.stopped, reason="camera disabled or removed in the API")
        self._stop(changes.restarted, reason="camera definition changed; restarting")
        self._ended = {cid: d for cid, d in self._ended.items() if wanted.get(cid) == d}
        self._failures = {cid: f for cid, f in self._failures.items() if cid in wanted}
        for camera_id, definition in wanted.items():
            if camera_id in self._running or camera_id in self._ended:
                continue
            if self._start(definition):
                if camera_id not in changes.restarted:
                    changes.started.append(camera_id)
            else:
                changes.failed.append(camera_id)
        for camera_id in changes.restarted:
            self._metrics.camera_restarts.labels(camera_id).inc()
        self._metrics.cameras_running.set(len(self._running))
        if changes:
            log.info("cameras reconciled", extra={"changes": changes.__dict__})
        return changes

    def warn(self, warning: str | None) -> None:
        """Show ``warning`` in the status reason of every camera, running or started later, until
        cleared with None: a problem of ingest's, such as the API refusing its key."""
        self._warning = warning
        for run in self._running.values():
            run.pipeline.warn(warning)

    def reap(self) -> list[str]:
        """Close the cameras whose loops ended by themselves, restarting those that failed
        while they have restarts left; returns the ids of the cameras that ended."""
        ended = [cid for cid, run in self._running.items() if run.pipeline.done()]
        for camera_id in ended:
            run = self._running.pop(camera_id)
            with bind(camera_id=camera_id):
                finish = run.pipeline.close(timeout_s=self._grace_s)
                if finish.failed and self._may_restart(camera_id):
                    log.warning("camera failed; restarting it", extra={"reason": finish.reason})
                    self._metrics.camera_restarts.labels(camera_id).inc()
                    self._start(run.definition)
                    continue
                self._ended[camera_id] = run.definition
                log.log(
                    logging.ERROR if finish.failed else logging.INFO,
                    "camera ended; it starts again when its definition changes",
                    extra={"reason": finish.reason},
                )
        self._metrics.cameras_running.set(len(self._running))
        return ended

    def _may_restart(self, camera_id: str) -> bool:
        now = time.monotonic()
        failures = self._failures.setdefault(camera_id, deque(maxlen=MAX_RESTARTS))
        if len(failures) == MAX_RESTARTS and now - failures[0] < RESTART_WINDOW_S:
            return False
        failures.append(now)
        return True

    def close(self) -> None:
        """Stop every camera (all halted first, so their shutdowns overlap)."""
        self._stop(list(self._running), reason="ingest stopped")
        self._metrics.cameras_running.set(0)

    def _stop(self, camera_ids: list[str], *, reason: str) -> None:
        runs = [self._running.pop(camera_id) for camera_id in camera_ids]
        for run in runs:
            run.pipeline.stop()
        for run in runs:
            with bind(camera_id=run.definition.id):
                run.pipeline.close(timeout_s=self._grace_s, reason=reason)
                log.info("camera stopped", extra={"reason": reason})

    def _start(self, definition: CameraDefinition) -> bool:
        settings = definition.settings(self._base)
        with bind(camera_id=definition.id):
            try:
                check_exists(settings.source)
                pipeline = self._build(
                    settings,
                    producer=self._producer,
                    metrics=self._metrics,
                    push_routes=self._push_routes,
                )
            except SourceError as exc:
                # A definition to fix, not a fault to retry: say so on the status topic.
                log.error("camera not started", extra={"reason": str(exc)})
                self._ended[definition.id] = definition
                self._report_stopped(settings, str(exc))
                return False
            pipeline.warn(self._warning)
            pipeline.start()
            self._running[definition.id] = _Running(definition, pipeline)
            log.info("camera started", extra={"fps": definition.target_fps})
        return True

    def _report_stopped(self, settings: IngestSettings, reason: str) -> None:
        tracker = CameraTracker(
            camera_id=settings.camera_id,
            target_fps=settings.fps,
            report_interval_s=settings.status_interval_s,
            metrics=self._metrics,
        )
        tracker.stopped(reason)
        send_status(self._producer, settings.common.kafka.topics.camera_status, tracker.report())
