"""Job specs are refused before queueing, with the path of every bad field in the error."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from vigil_shared.schemas.jobs import ClassifySpec, JobSpec, JobSpecDocument, OneClassSpec

SPEC: TypeAdapter[Any] = TypeAdapter(JobSpec)
BASE = {"name": "gate", "task": "classify", "dataset": {"name": "gate-frames"}}


def error_locations(payload: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ValidationError) as info:
        SPEC.validate_python(payload)
    return {".".join(str(p) for p in e["loc"]): e["msg"] for e in info.value.errors()}


def test_defaults_make_a_complete_classify_spec() -> None:
    spec = SPEC.validate_python(BASE)
    assert isinstance(spec, ClassifySpec)
    assert spec.hyper.loss == "cross_entropy"
    assert spec.augment.flip is not None and spec.augment.rotation is None
    assert spec.structure.freeze.mode == "last_n_stages"


def test_a_spec_without_task_is_one_class() -> None:
    spec = SPEC.validate_python({"name": "walkway", "dataset": {"name": "ped2-train"}})
    assert isinstance(spec, OneClassSpec)


@pytest.mark.parametrize(
    ("patch", "location"),
    [
        ({"hyper": {"lr": 5}}, "classify.hyper.lr"),
        ({"hyper": {"optimizer": "rmsprop"}}, "classify.hyper.optimizer"),
        ({"hyper": {"loss": "hinge"}}, "classify.hyper.loss"),
        ({"augment": {"rotation": {"degrees": 400}}}, "classify.augment.rotation.degrees"),
        ({"augment": {"noise": {"std": -1}}}, "classify.augment.noise.std"),
        ({"structure": {"head": {"kind": "transformer"}}}, "classify.structure.head.kind"),
        (
            {"structure": {"freeze": {"last_n_stages": 0}}},
            "classify.structure.freeze.last_n_stages",
        ),
        ({"architecture": "alexnet"}, "classify.architecture"),
        ({"image_size": 100}, "classify.image_size"),
        ({"dataset": {"name": "Bad Name"}}, "classify.dataset.name"),
        ({"surprise": 1}, "classify.surprise"),
    ],
)
def test_bad_fields_are_named_by_path(patch: dict[str, Any], location: str) -> None:
    assert location in error_locations({**BASE, **patch})


@pytest.mark.parametrize("fps", [0, -5, 121, float("nan"), float("inf"), 10**40])
def test_a_footage_rate_outside_a_cameras_is_refused(fps: float) -> None:
    payload = {"name": "walkway", "dataset": {"name": "ped2-train"}, "footage_fps": fps}
    assert "one_class.footage_fps" in error_locations(payload)


def test_unknown_task_is_refused_with_the_choices() -> None:
    errors = error_locations({**BASE, "task": "regress"})
    assert any("task must be 'one_class' or 'classify'" in m for m in errors.values())


def test_search_space_paths_and_values_are_checked_against_the_spec() -> None:
    space = {
        "hyper.lrr": {"type": "float", "low": 1e-4, "high": 1e-2},
        "structure.freeze.last_n_stages": {"type": "int", "low": 0, "high": 3},
        "hyper.optimizer": {"type": "categorical", "choices": ["adamw", "rmsprop"]},
        "augment.rotation": {"type": "float", "low": 1, "high": 2},
        "dataset.name": {"type": "categorical", "choices": ["a", "b"]},
        "architecture": {"type": "categorical", "choices": ["resnet18", "vgg16"]},
        "validation.fraction": {"type": "float", "low": 0.1, "high": 0.3},
    }
    errors = error_locations({**BASE, "search": {"space": space}})
    message = errors["classify.search.space"]
    assert "hyper has no field 'lrr'" in message
    assert "'structure.freeze.last_n_stages']: 0 is not allowed" in message
    assert "'rmsprop' is not allowed" in message
    assert "'augment.rotation']: a section" in message
    assert "'dataset.name']: this field cannot be searched" in message
    assert "'architecture']: this field cannot be searched" in message
    assert "'validation.fraction']: this field cannot be searched" in message


def test_a_valid_search_reaches_into_optional_sections() -> None:
    space = {
        "hyper.lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
        "augment.rotation.degrees": {"type": "float", "low": 0.5, "high": 30},
        "structure.head.kind": {"type": "categorical", "choices": ["linear", "mlp"]},
    }
    spec = SPEC.validate_python({**BASE, "search": {"space": space, "trials": 4}})
    assert spec.search.trials == 4


@pytest.mark.parametrize(
    ("distribution", "message"),
    [
        ({"type": "float", "low": 1, "high": 1}, "must be below high"),
        ({"type": "float", "low": 0, "high": 1, "log": True}, "log distribution needs low > 0"),
        ({"type": "categorical", "choices": ["adamw"]}, "at least 2"),
    ],
)
def test_malformed_distributions_are_refused(distribution: dict[str, Any], message: str) -> None:
    errors = error_locations({**BASE, "search": {"space": {"hyper.lr": distribution}}})
    assert any(message in m for m in errors.values()), errors


def test_fusion_rules() -> None:
    top_k = {"kind": "top_k_trials", "k": 3}
    assert "search" in str(error_locations({**BASE, "fusion": top_k}))
    space = {"hyper.lr": {"type": "float", "low": 1e-4, "high": 1e-2}}
    too_many = {**BASE, "search": {"space": space, "trials": 2}, "fusion": top_k}
    assert "exceeds search.trials" in str(error_locations(too_many))
    one_model = {**BASE, "fusion": {"kind": "registry_models", "model_ids": ["m-1"]}}
    assert "at least 2 model_ids" in str(error_locations(one_model))
    ok = SPEC.validate_python(
        {**BASE, "fusion": {"kind": "registry_models", "model_ids": ["m-1", "m-2"]}}
    )
    assert ok.fusion.method == "probability"


def test_the_union_exports_as_one_json_schema() -> None:
    schema = JobSpecDocument.model_json_schema()
    assert {"ClassifySpec", "OneClassSpec"} <= set(schema["$defs"])


@pytest.mark.parametrize("fps", [0, -5, 121, float("nan"), float("inf"), 10**40, "ten"])
def test_a_motion_reference_rate_outside_a_cameras_is_refused(fps: Any) -> None:
    payload = {
        "name": "walkway",
        "dataset": {"name": "ped2-train"},
        "motion": {"reference_fps": fps},
    }
    assert "one_class.motion.reference_fps" in error_locations(payload)
