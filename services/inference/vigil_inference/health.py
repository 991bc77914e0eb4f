"""What inference tells an operator about its models: which cameras are not scored by the model
assigned to them, and why.

A model that cannot be loaded (an artifact replaced in S3, a missing file) must not be silent.
The router keeps scoring such a camera with what it has, and reports it here, which makes it
visible everywhere an operator looks: ``/readyz`` answers 503 with the reasons,
``vigil_inference_cameras_on_fallback`` and ``vigil_inference_model_unloadable{model_id}`` are on
/metrics, and a ``ScoringStatus`` per camera goes to ``vigil.scoring-status.v1``, which the API
shows with the camera and the model. Called from the worker's loop thread only; ``problems`` may
be called from any thread (the health server's).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from vigil_inference.metrics import InferenceMetrics
from vigil_shared.schemas.events import ModelRef
from vigil_shared.schemas.frames import utc_now
from vigil_shared.schemas.scoring_status import PROBLEM_MAX, ScoringStatus

log = logging.getLogger("vigil_inference")
ReportStatus = Callable[[ScoringStatus], None]
"""Sends a camera's status (to ``vigil.scoring-status.v1``)."""
READINESS_CAMERAS = 20  # cameras named in /readyz; the rest are counted


@dataclass(frozen=True)
class CameraScoring:
    """How one camera is scored: what the assignments want and what scores it."""

    model: ModelRef
    assigned_model_id: str | None = None
    shadow_model_id: str | None = None
    problem: str | None = None
    on_fallback: bool = False
    """Scored by another model than the assigned one (that one cannot be loaded)."""


class ScoringHealth:
    def __init__(self, *, metrics: InferenceMetrics, report: ReportStatus | None = None) -> None:
        self._metrics = metrics
        self._report = report
        self._cameras: dict[str, CameraScoring] = {}
        self._problems: dict[str, str] = {}  # replaced, never mutated: read by other threads

    def camera(self, camera_id: str, scoring: CameraScoring) -> None:
        """Record how ``camera_id`` is scored now; a change is reported."""
        if self._cameras.get(camera_id) == scoring:
            return
        old = self._cameras.get(camera_id)
        self._cameras[camera_id] = scoring
        if scoring.problem is not None and (old is None or old.problem != scoring.problem):
            log.error(
                "camera not scored as assigned",
                extra={"camera_id": camera_id, "reason": scoring.problem},
            )
        elif scoring.problem is None and old is not None and old.problem is not None:
            log.info("camera scored as assigned again", extra={"camera_id": camera_id})
        self._refresh()
        if self._report is not None:
            self._report(
                ScoringStatus(
                    camera_id=camera_id,
                    model=scoring.model,
                    assigned_model_id=scoring.assigned_model_id,
                    shadow_model_id=scoring.shadow_model_id,
                    problem=scoring.problem[:PROBLEM_MAX] if scoring.problem else None,
                    reported_at=utc_now(),
                )
            )

    def forget(self, camera_id: str) -> None:
        """The camera left this worker (its partition went to another): no longer ours."""
        if self._cameras.pop(camera_id, None) is not None:
            self._refresh()

    def unloadable(self, failures: dict[str, str]) -> None:
        """The models that cannot be loaded now (id to reason), for the labelled gauge."""
        gauge = self._metrics.model_unloadable
        gauge.clear()
        for model_id in failures:
            gauge.labels(model_id).set(1)

    def problems(self) -> dict[str, str]:
        """Camera id to why it is not scored as assigned; empty when all are."""
        return self._problems

    def readiness(self) -> list[str]:
        """``/readyz``'s reasons: one line per camera not scored as assigned (the first few)."""
        problems = sorted(self._problems.items())
        lines = [f"camera {camera}: {problem}" for camera, problem in problems[:READINESS_CAMERAS]]
        if len(problems) > READINESS_CAMERAS:
            lines.append(f"and {len(problems) - READINESS_CAMERAS} more cameras")
        return lines

    def _refresh(self) -> None:
        self._problems = {c: s.problem for c, s in self._cameras.items() if s.problem is not None}
        self._metrics.cameras_on_fallback.set(sum(s.on_fallback for s in self._cameras.values()))
