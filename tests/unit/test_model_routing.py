"""Model routing: scopes, fallbacks, live swaps, failed loads and the bounded model cache."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
import torch

from vigil_inference.health import ScoringHealth
from vigil_inference.metrics import InferenceMetrics
from vigil_inference.models import WARMUP, Deferred, ScoringModel
from vigil_inference.routing import ModelRouter
from vigil_shared.schemas.assignments import AssignmentAction, ModelAssignment
from vigil_shared.schemas.events import ModelRef
from vigil_shared.schemas.scoring_status import ScoringStatus
from vigil_shared.vision.scoring import FrameScore


class FakeModel:
    def __init__(self) -> None:
        self.forgotten: list[str] = []

    def score_frames(
        self,
        camera_ids: Sequence[str],
        images: Sequence[torch.Tensor],
        times: Sequence[float] | None = None,
    ) -> list[FrameScore | None]:
        return [FrameScore(score=1.0, threshold=1.0) for _ in camera_ids]

    context_frames = 0

    def forget(self, camera_id: str) -> None:
        self.forgotten.append(camera_id)


class Loader:
    """Loads any id but those in ``broken``; counts loads and the sha256 each was asked with."""

    def __init__(self, broken: set[str] | None = None) -> None:
        self.broken = broken or set()
        self.loads: list[str] = []
        self.checked: list[str | None] = []

    def __call__(self, model_id: str, artifact_sha256: str | None = None) -> ScoringModel:
        self.loads.append(model_id)
        self.checked.append(artifact_sha256)
        if model_id in self.broken:
            raise FileNotFoundError(f"models/{model_id}/manifest.json")
        return ScoringModel(ModelRef(id=model_id, kind="registry"), FakeModel(), artifact_sha256)


def assignment(
    scope: str, production: str | None, shadow: str | None = None, sha256: str | None = None
) -> ModelAssignment:
    return ModelAssignment(
        change_id=uuid.uuid4(),
        scope=scope,
        production_model_id=production,
        shadow_model_id=shadow,
        production_artifact_sha256=sha256,
        action=AssignmentAction.PROMOTE,
        actor="test",
        changed_at=datetime.now(UTC),
    )


def router(
    loader: Loader,
    default: str | None = None,
    cache_size: int = 4,
    reports: list[ScoringStatus] | None = None,
) -> tuple[ModelRouter, InferenceMetrics]:
    metrics = InferenceMetrics()
    routes = ModelRouter(
        loader=loader,
        warmup=ScoringModel(WARMUP, FakeModel()),
        default_model_id=default,
        cache_size=cache_size,
        metrics=metrics,
        health=ScoringHealth(metrics=metrics, report=None if reports is None else reports.append),
    )
    return routes, metrics


def production(routes: ModelRouter, camera_id: str) -> str:
    return routes.route(camera_id).production.ref.id


def test_camera_scope_wins_over_global_over_default_over_warmup() -> None:
    routes, _ = router(Loader())
    assert production(routes, "a") == "warmup"
    routes, _ = router(Loader(), default="m-default")
    routes.apply([assignment("*", "m-global"), assignment("b", "m-b")])
    assert production(routes, "a") == "m-global"
    assert production(routes, "b") == "m-b"
    routes.apply([assignment("*", None, shadow="m-candidate")])  # cleared global production
    assert production(routes, "c") == "m-default"
    assert routes.route("c").shadow is not None
    assert routes.route("b").shadow is not None, "a global shadow runs next to camera models"


def test_a_promotion_switches_known_cameras_and_reports_them() -> None:
    routes, metrics = router(Loader())
    routes.apply([assignment("*", "m-1")])
    old = routes.route("a").production
    production(routes, "b")
    switched = routes.apply([assignment("a", "m-2")])
    assert switched == ["a"]
    assert production(routes, "a") == "m-2" and production(routes, "b") == "m-1"
    assert isinstance(old.scorer, FakeModel) and old.scorer.forgotten == ["a"]
    assert metrics.registry.get_sample_value("vigil_inference_model_swaps_total") == 1


def test_models_shared_by_cameras_load_once() -> None:
    loader = Loader()
    routes, _ = router(loader)
    routes.apply([assignment("*", "m-1")])
    for camera in "abcdef":
        production(routes, camera)
    assert loader.loads == ["m-1"]


def test_a_model_that_cannot_load_keeps_the_old_one_and_is_counted() -> None:
    loader = Loader(broken={"m-bad"})
    routes, metrics = router(loader)
    routes.apply([assignment("*", "m-1")])
    production(routes, "a")
    assert routes.apply([assignment("*", "m-bad")]) == []
    assert production(routes, "a") == "m-1"
    assert production(routes, "new-camera") == "warmup", "a new camera falls back past it"
    assert metrics.registry.get_sample_value("vigil_inference_model_load_failures_total") == 1
    assert loader.loads.count("m-bad") == 1, "no retry until the next assignment"


def test_the_shadow_is_dropped_when_it_is_the_production_model() -> None:
    routes, _ = router(Loader())
    routes.apply([assignment("a", "m-1", shadow="m-1")])
    assert routes.route("a").shadow is None


def test_unused_models_leave_the_cache_beyond_its_size() -> None:
    loader = Loader()
    routes, _ = router(loader, cache_size=1)
    for index in range(3):
        routes.apply([assignment("*", f"m-{index}")])
        production(routes, "a")
    routes.apply([assignment("*", "m-0")])
    production(routes, "a")
    assert loader.loads == ["m-0", "m-1", "m-2", "m-0"]


@pytest.mark.parametrize("size", [1, 3])
def test_models_in_use_are_never_evicted(size: int) -> None:
    loader = Loader()
    routes, _ = router(loader, cache_size=size)
    for index in range(4):
        routes.apply([assignment(f"cam{index}", f"m-{index}")])
        production(routes, f"cam{index}")
    routes.apply([assignment("*", None)])
    assert [production(routes, f"cam{i}") for i in range(4)] == ["m-0", "m-1", "m-2", "m-3"]
    assert len(loader.loads) == 4


def test_the_registry_sha256_reaches_the_loader_and_a_model_checked_for_another_reloads() -> None:
    loader = Loader()
    routes, _ = router(loader, default="m-1")  # the default: loaded without a registry sha256
    production(routes, "a")
    routes.apply([assignment("*", "m-1", sha256="a" * 64)])
    assert production(routes, "a") == "m-1"
    assert loader.checked == [None, "a" * 64], "the registry's sha256 was not checked"
    assert routes.route("a").production.artifact_sha256 == "a" * 64
    production(routes, "b")
    assert len(loader.loads) == 2, "a model checked against that sha256 is shared"


def test_a_model_that_cannot_load_is_visible_until_one_loads() -> None:
    reports: list[ScoringStatus] = []
    routes, metrics = router(Loader(broken={"m-bad"}), reports=reports)
    routes.apply([assignment("*", "m-bad", sha256="b" * 64)])
    assert production(routes, "a") == "warmup"
    problem = reports[-1].problem or ""
    assert reports[-1].camera_id == "a" and reports[-1].assigned_model_id == "m-bad"
    assert reports[-1].model.id == "warmup"
    assert problem.startswith("assigned model m-bad cannot be loaded: models/m-bad/manifest.json")
    assert problem.endswith("scored by warmup")
    assert routes.health.readiness() == [f"camera a: {problem}"]
    value = metrics.registry.get_sample_value
    assert value("vigil_inference_cameras_on_fallback") == 1
    assert value("vigil_inference_model_unloadable", {"model_id": "m-bad"}) == 1

    assert routes.apply([assignment("*", "m-good")]) == ["a"]
    assert reports[-1].problem is None and reports[-1].model.id == "m-good"
    assert routes.health.readiness() == []
    assert value("vigil_inference_cameras_on_fallback") == 0
    assert value("vigil_inference_model_unloadable", {"model_id": "m-bad"}) is None
    before = len(reports)
    production(routes, "a")
    routes.apply([assignment("other-camera", "m-good")])
    assert len(reports) == before, "an unchanged camera is reported again"


def test_a_camera_kept_on_its_model_and_a_broken_shadow_are_reported() -> None:
    reports: list[ScoringStatus] = []
    routes, metrics = router(Loader(broken={"m-bad"}), reports=reports)
    routes.apply([assignment("*", "m-1")])
    production(routes, "a")
    routes.apply([assignment("a", "m-bad", shadow="m-bad")])
    assert production(routes, "a") == "m-1"
    problem = reports[-1].problem or ""
    assert "assigned model m-bad cannot be loaded" in problem and "scored by m-1" in problem
    assert "shadow model m-bad cannot be loaded" in problem
    routes.forget("a")
    assert routes.health.readiness() == []
    assert metrics.registry.get_sample_value("vigil_inference_cameras_on_fallback") == 0


def test_the_warm_up_model_is_built_on_first_use_only_once() -> None:
    built: list[FakeModel] = []

    def build() -> FakeModel:
        built.append(FakeModel())
        return built[-1]

    deferred = Deferred(build)
    deferred.forget("cam")  # nothing built yet: nothing to forget
    assert built == []
    image = torch.zeros(3, 4, 4, dtype=torch.uint8)
    deferred.score_frames(["cam"], [image])
    deferred.score_frames(["cam"], [image])
    deferred.forget("cam")
    assert len(built) == 1 and built[0].forgotten == ["cam"]
    assert deferred.context_frames == 0


def test_reset_drops_a_silent_cameras_model_state_and_keeps_its_route() -> None:
    routes, _ = router(Loader())
    route = routes.route("a")
    routes.reset("a")
    assert routes.route("a") is route
    scorer = route.production.scorer
    assert isinstance(scorer, FakeModel) and scorer.forgotten == ["a"]
