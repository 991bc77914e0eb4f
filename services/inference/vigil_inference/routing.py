"""Which model scores each camera, from the compacted model-assignment topic, swapped live.

The latest assignment per scope is the truth: a camera's own scope wins over ``*``, which wins
over ``VIGIL_INFERENCE_MODEL_ID``, which wins over the built-in warm-up scorer. Production and
shadow are resolved independently (a global shadow candidate can run next to a camera's own
production model). A new model is loaded before any camera switches to it; if it cannot be
loaded, cameras keep the model they had. Models are shared by the cameras that use them and
kept in a bounded cache.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from kafka import KafkaConsumer, TopicPartition
from pydantic import ValidationError

from vigil_inference.metrics import InferenceMetrics
from vigil_inference.models import ScoringModel
from vigil_shared.schemas.assignments import GLOBAL_SCOPE, ModelAssignment

log = logging.getLogger("vigil_inference")
ModelLoader = Callable[[str], ScoringModel]
"""Model id to a loaded model; raises when it cannot be loaded."""


@dataclass(frozen=True)
class Route:
    production: ScoringModel
    shadow: ScoringModel | None = None


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
    ) -> None:
        self._loader = loader
        self._warmup = warmup
        self._default = default_model_id
        self._cache_size = cache_size
        self._metrics = metrics
        self._table: dict[str, ModelAssignment] = {}
        self._routes: dict[str, Route] = {}
        self._cache: OrderedDict[str, ScoringModel] = OrderedDict((m.ref.id, m) for m in preloaded)
        self._failed: set[str] = set()

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
            if new.production.ref != old.production.ref:
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
        self._evict()
        return switched

    def forget(self, camera_id: str) -> None:
        route = self._routes.pop(camera_id, None)
        if route is not None:
            route.production.scorer.forget(camera_id)
            if route.shadow is not None:
                route.shadow.scorer.forget(camera_id)

    def _wanted(self, camera_id: str) -> tuple[list[str], str | None]:
        own, everyone = self._table.get(camera_id), self._table.get(GLOBAL_SCOPE)
        production = [
            model_id
            for model_id in (
                own.production_model_id if own else None,
                everyone.production_model_id if everyone else None,
                self._default,
            )
            if model_id is not None
        ]
        shadow = own.shadow_model_id if own and own.shadow_model_id else None
        if shadow is None and everyone is not None:
            shadow = everyone.shadow_model_id
        return production, shadow

    def _resolve(self, camera_id: str, *, current: Route | None) -> Route:
        wanted, shadow_id = self._wanted(camera_id)
        production = self._production(wanted, current)
        shadow = None
        if shadow_id is not None and shadow_id != production.ref.id:
            shadow = self._load(shadow_id)
        return Route(production=production, shadow=shadow)

    def _production(self, wanted: list[str], current: Route | None) -> ScoringModel:
        for model_id in wanted:
            if current is not None and current.production.ref.id == model_id:
                return current.production
            model = self._load(model_id)
            if model is not None:
                return model
            if current is not None:
                return current.production  # a model that cannot load never replaces a working one
        return self._warmup

    def _load(self, model_id: str) -> ScoringModel | None:
        cached = self._cache.get(model_id)
        if cached is not None:
            self._cache.move_to_end(model_id)
            return cached
        if model_id in self._failed:
            return None
        started = time.perf_counter()
        try:
            model = self._loader(model_id)
        # Anything a broken or missing artifact raises (S3, integrity, schema, torch) must leave
        # the worker scoring with the model it has; the reason is logged and counted.
        except Exception as exc:
            self._failed.add(model_id)
            self._metrics.model_load_failures.inc()
            log.error("model could not be loaded", extra={"model_id": model_id, "reason": str(exc)})
            return None
        self._metrics.model_load_seconds.observe(time.perf_counter() - started)
        self._cache[model_id] = model
        log.info("model loaded", extra={"model_id": model_id})
        return model

    def _evict(self) -> None:
        in_use = {
            model.ref.id
            for route in self._routes.values()
            for model in (route.production, route.shadow)
            if model is not None
        }
        for model_id in list(self._cache):
            if len(self._cache) <= self._cache_size:
                break
            if model_id not in in_use:
                del self._cache[model_id]


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
