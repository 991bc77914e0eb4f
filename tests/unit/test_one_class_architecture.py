"""A one_class model's ``architecture`` names what scores its frames: the streams in use and the
fusion, short enough for the registry's column."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import String

from vigil_shared.db.models import Model
from vigil_shared.schemas.one_class import OneClassSpec
from vigil_trainer.one_class.architecture import one_class_architecture


def spec(**fields: Any) -> OneClassSpec:
    return OneClassSpec.model_validate({"name": "walkway", "dataset": {"name": "d"}, **fields})


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, "efficientnet_lite0 patch-knn+farneback+scene|calibrated_max"),
        ({"scene": None}, "efficientnet_lite0 patch-knn+farneback|calibrated_max"),
        ({"fusion": "weighted"}, "efficientnet_lite0 patch-knn+farneback|weighted"),
        ({"motion": None, "scene": None}, "efficientnet_lite0 patch-knn|calibrated_max"),
        ({"motion": {"weight": 0}}, "efficientnet_lite0 patch-knn+scene(emb)|calibrated_max"),
        ({"appearance": {"weight": 0}}, "efficientnet_lite0 farneback+scene(act)|calibrated_max"),
        (
            {"motion": {"method": "lucas_kanade"}, "scene": {}},
            "efficientnet_lite0 patch-knn+lk-flow+scene|calibrated_max",
        ),
        (
            {"motion": {"method": "dis"}, "scene": None},
            "efficientnet_lite0 patch-knn+dis-flow|calibrated_max",
        ),
        (
            {"scene": {"activity": False}},
            "efficientnet_lite0 patch-knn+farneback+scene(emb)|calibrated_max",
        ),
        ({"scene": {}, "motion": None}, "efficientnet_lite0 patch-knn+scene(emb)|calibrated_max"),
        (
            {"scene": {}, "appearance": {"weight": 0}},
            "efficientnet_lite0 farneback+scene(act)|calibrated_max",
        ),
        (
            {"scene": {"embedding": False, "activity": False}},
            "efficientnet_lite0 patch-knn+farneback|calibrated_max",
        ),
    ],
)
def test_the_architecture_names_the_streams_in_use_and_the_fusion(
    fields: dict[str, Any], expected: str
) -> None:
    assert one_class_architecture(spec(**fields)) == expected


def test_knobs_that_do_not_change_what_scores_keep_the_name() -> None:
    tuned = spec(appearance={"stages": [1, 3], "whiten_dim": 0}, motion={"persistence": 1}, k=5)
    assert one_class_architecture(tuned) == one_class_architecture(spec())


def every_spec() -> list[OneClassSpec]:
    """One spec for each way a one_class model can score (and some that cannot be fitted)."""
    specs = []
    for appearance, motion, scene, fusion in itertools.product(
        [0.0, 0.2],
        [
            None,
            {"weight": 0},
            {"method": "farneback"},
            {"method": "lucas_kanade"},
            {"method": "dis"},
        ],
        [None, *({"embedding": e, "activity": a} for e in (True, False) for a in (True, False))],
        ["calibrated_max", "calibrated_sum", "weighted"],
    ):
        try:
            specs.append(
                spec(appearance={"weight": appearance}, motion=motion, scene=scene, fusion=fusion)
            )
        except ValidationError:
            continue
    return specs


def scores_by(s: OneClassSpec) -> tuple[object, ...]:
    motion = s.motion.method if s.motion is not None and s.motion.weight > 0 else None
    return (s.appearance.weight > 0, motion, s.scene_embedding, s.scene_activity, s.fusion)


def test_each_way_of_scoring_has_its_own_name_and_every_name_fits_the_registry() -> None:
    names = {scores_by(s): one_class_architecture(s) for s in every_spec()}
    assert len(names) >= 33  # 14 for each calibrated fusion (scene parts), 5 weighted
    assert len(set(names.values())) == len(names)
    column = Model.__table__.c.architecture.type
    assert isinstance(column, String) and column.length is not None
    assert max(len(name) for name in names.values()) <= column.length
