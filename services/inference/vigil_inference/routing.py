"""Which model scores each camera, from the compacted model-assignment topic, swapped live.

The latest assignment per scope is the truth: a camera's own scope wins over ``*``, which wins
over ``VIGIL_INFERENCE_MODEL_ID``, which wins over the built-in warm-up scorer. Production and
shadow are resolved independently (a global shadow candidate can run next to a camera's own
production model). A new model is loaded before any camera switches to it, checked against the
registry's sha256 of its artifact that the assignment carries; if it cannot be loaded, cameras
keep the model they had, and the camera's ``ScoringHealth`` says so (``/readyz``, metrics, the
scoring-status topic). Models are shared by the cameras that use them and kept in a bounded cache.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from kafka import KafkaConsumer, TopicPartition
from pydantic import ValidationError

from vigil_inference.health import CameraScoring, ScoringHealth
from vigil_inference.metrics import InferenceMetrics
from vigil_inference.models import ScoringModel
from vigil_shared.schemas.assignments import GLOBAL_SCOPE, ModelAssignment

log = logging.getLogger("vigil_inference")
ModelLoader = Callable[[str, str | None], ScoringModel]
"""Model id and the registry's sha256 of its artifact (None: unknown) to a loaded model whose
``artifact_sha256`` is that sha256; raises when it cannot be loaded."""


@dataclass(frozen=True)
class Route:
    production: ScoringModel
    shadow: ScoringModel | None = None


@dataclass(frozen=True)
class Wanted:
    """A model an assignment names, with the registry's sha256 of its artifact, if it gave one."""

    model_id: str
    artifact_sha256: str | None = None

    def matches(self, model: ScoringModel) -> bool:
        return model.ref.id == self.model_id and self.artifact_sha256 in (
            None,
            model.artifact_sha256,
        )


class ModelRouter:
    def __init__(
        self,
        *,
        loader: ModelLoader,
        warmup: ScoringModel,
        default_model_id: str | None,
        cache_size: int,
        metrics: InferenceMetrics,
        preloaded: Iterable[ScoringModel] = (),
        health: ScoringHealth | None = None,
    ) -> None:
        self._loader = loader
        self._warmup = warmup
        self._default = default_model_id
        self._cache_size = cache_size
        self._metrics = metrics
        self.health = health or ScoringHealth(metrics=metrics)
        self._table: dict[str, ModelAssignment] = {}
        self._routes: dict[str, Route] = {}
        self._cache: OrderedDict[Wanted, ScoringModel] = OrderedDict(
            (Wanted(m.ref.id, m.artifact_sha256), m) for m in preloaded
        )
        self._failed: dict[Wanted, str] = {}  # why each failed model could not be loaded

    def route(self, camera_id: str) -> Route:
        route = self._routes.get(camera_id)
        if route is None:
            route = self._routes[camera_id] = self._resolve(camera_id, current=None)
        return route

    def apply(self, assignments: Iterable[ModelAssignment]) -> list[str]:
        """Record assignments and re-route known cameras; returns those whose production model
        changed (their open events end: an event is scored by one model)."""
        changes = list(assignments)
        if not changes:
            return []
        for assignment in changes:
            self._table[assignment.scope] = assignment
        self._failed.clear()  # a new assignment is a reason to try a failed model again
        switched = []
        for camera_id, old in list(self._routes.items()):
            new = self._routes[camera_id] = self._resolve(camera_id, current=old)
            if new.production is not old.production:
                old.production.scorer.forget(camera_id)
                switched.append(camera_id)
                self._metrics.model_swaps.inc()
                log.info(
                    "camera switched model",
                    extra={
                        "camera_id": camera_id,
                        "from": old.production.ref.id,
                        "to": new.production.ref.id,
                    },
                )
        self.health.unloadable(self._failed_models())
        self._evict()
        return switched

    def forget(self, camera_id: str) -> None:
        """The camera is gone from this worker (another took its partition): route, model
        state and health."""
        self.reset(camera_id)
        self._routes.pop(camera_id, None)
        self.health.forget(camera_id)

    def reset(self, camera_id: str) -> None:
        """Drop the camera's state in its models (it fell silent): its next frame starts
        afresh, as a replay will start it; its route stays."""
        route = self._routes.get(camera_id)
        if route is not None:
            route.production.scorer.forget(camera_id)
            if route.shadow is not None:
                route.shadow.scorer.forget(camera_id)

    def _wanted(self, camera_id: str) -> tuple[list[Wanted], Wanted | None]:
        own, everyone = self._table.get(camera_id), self._table.get(GLOBAL_SCOPE)
        production = [
            Wanted(a.production_model_id, a.production_artifact_sha256)
            for a in (own, everyone)
            if a is not None and a.production_model_id is not None
        ]
        if self._default is not None:
            production.append(Wanted(self._default))
        shadow = next(
            (
                Wanted(a.shadow_model_id, a.shadow_artifact_sha256)
                for a in (own, everyone)
                if a is not None and a.shadow_model_id is not None
            ),
            None,
        )
        return production, shadow

    def _resolve(self, camera_id: str, *, current: Route | None) -> Route:
        wanted, shadow_wanted = self._wanted(camera_id)
        production = self._production(wanted, current)
        shadow = None
        if shadow_wanted is not None and shadow_wanted.model_id != production.ref.id:
            shadow = self._load(shadow_wanted)
        self._report(camera_id, wanted[0] if wanted else None, production, shadow_wanted, shadow)
        return Route(production=production, shadow=shadow)

    def _production(self, wanted: list[Wanted], current: Route | None) -> ScoringModel:
        for want in wanted:
            if current is not None and want.matches(current.production):
                return current.production
            model = self._load(want)
            if model is not None:
                return model
            if current is not None:
                return current.production  # a model that cannot load never replaces a working one
        return self._warmup

    def _report(
        self,
        camera_id: str,
        assigned: Wanted | None,
        production: ScoringModel,
        shadow_wanted: Wanted | None,
        shadow: ScoringModel | None,
    ) -> None:
        problems = []
        fallback = assigned is not None and not assigned.matches(production)
        if assigned is not None and fallback:
            reason = self._failed.get(assigned, "not loaded")
            problems.append(
                f"assigned model {assigned.model_id} cannot be loaded: {reason}; "
                f"scored by {production.ref.id}"
            )
        if shadow_wanted is not None and shadow is None and shadow_wanted in self._failed:
            problems.append(
                f"shadow model {shadow_wanted.model_id} cannot be loaded: "
                f"{self._failed[shadow_wanted]}"
            )
        self.health.camera(
            camera_id,
            CameraScoring(
                model=production.ref,
                assigned_model_id=assigned.model_id if assigned is not None else None,
                shadow_model_id=shadow.ref.id if shadow is not None else None,
                problem="; ".join(problems) or None,
                on_fallback=fallback,
            ),
        )

    def _load(self, want: Wanted) -> ScoringModel | None:
        cached = self._cache.get(want) or next(
            (m for m in self._cache.values() if want.matches(m)), None
        )
        if cached is not None:
            self._cache.move_to_end(Wanted(cached.ref.id, cached.artifact_sha256))
            return cached
        if want in self._failed:
            return None
        started = time.perf_counter()
        try:
            model = self._loader(want.model_id, want.artifact_sha256)
        # Anything a broken or missing artifact raises (S3, integrity, schema, torch) must leave
        # the worker scoring with the model it has; the reason is logged, counted and reported.
        except Exception as exc:
            self._failed[want] = str(exc)
            self._metrics.model_load_failures.inc()
            self.health.unloadable(self._failed_models())
            log.error(
                "model could not be loaded",
                extra={"model_id": want.model_id, "reason": str(exc)},
            )
            return None
        self._metrics.model_load_seconds.observe(time.perf_counter() - started)
        self._cache[Wanted(model.ref.id, model.artifact_sha256)] = model
        log.info("model loaded", extra={"model_id": want.model_id})
        return model

    def _failed_models(self) -> dict[str, str]:
        return {want.model_id: reason for want, reason in self._failed.items()}

    def _evict(self) -> None:
        in_use = {
            id(model)
            for route in self._routes.values()
            for model in (route.production, route.shadow)
            if model is not None
        }
        for key, model in list(self._cache.items()):
            if len(self._cache) <= self._cache_size:
                break
            if id(model) not in in_use:
                del self._cache[key]


class AssignmentFollower:
    """Reads the compacted assignment topic outside any consumer group: all of it at start,
    then whatever arrives, between batches."""

    def __init__(self, consumer: KafkaConsumer, topic: str, metrics: InferenceMetrics) -> None:
        self._consumer = consumer
        self._topic = topic
        self._metrics = metrics

    def bootstrap(self, *, timeout_s: float = 30.0) -> list[ModelAssignment]:
        """Every assignment on the topic up to its current end."""
        partitions = self._partitions(timeout_s)
        self._consumer.assign(partitions)
        self._consumer.seek_to_beginning(*partitions)
        ends = self._consumer.end_offsets(partitions)
        out: list[ModelAssignment] = []
        deadline = time.monotonic() + timeout_s
        while any(self._consumer.position(tp) < ends[tp] for tp in partitions):
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read {self._topic} to its end in {timeout_s:.0f}s")
            out += self._read(timeout_ms=500)
        return out

    def poll(self) -> list[ModelAssignment]:
        return self._read(timeout_ms=0)

    def close(self) -> None:
        self._consumer.close()

    def _partitions(self, timeout_s: float) -> list[TopicPartition]:
        deadline = time.monotonic() + timeout_s
        while (ids := self._consumer.partitions_for_topic(self._topic)) is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"topic {self._topic} does not exist; start the stack")
            time.sleep(0.2)
        return [TopicPartition(self._topic, p) for p in sorted(ids)]

    def _read(self, *, timeout_ms: int) -> list[ModelAssignment]:
        out = []
        for records in self._consumer.poll(timeout_ms=timeout_ms).values():
            for record in records:
                try:
                    out.append(ModelAssignment.read_json(record.value or b""))
                except ValidationError as exc:
                    self._metrics.bad_assignments.inc()
                    log.warning(
                        "ignoring an invalid model assignment",
                        extra={"offset": record.offset, "reason": str(exc)[:300]},
                    )
        return out
