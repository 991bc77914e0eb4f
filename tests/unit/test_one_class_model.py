"""The one_class inferencer: heatmaps localise motion, artifacts round-trip, specs validate."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from vigil_shared.datasets import DatasetRef
from vigil_shared.schemas.frames import utc_now
from vigil_shared.schemas.jobs import ClassifySpec
from vigil_shared.schemas.manifests import ModelManifest
from vigil_shared.schemas.one_class import OneClassSpec
from vigil_shared.vision.backbones import LITE0_PREPROCESSING, load_efficientnet_lite0
from vigil_shared.vision.one_class_model import (
    APPEARANCE_BANK,
    APPEARANCE_NORM,
    MOTION_NORM,
    ArtifactError,
    OneClassFrameModel,
)
from vigil_shared.vision.patches import PatchFeatureExtractor
from vigil_shared.vision.preprocess import to_batch
from vigil_shared.vision.site_backbone import untouched_patch_stages

VERSION = "0" * 64


def spec(**overrides: object) -> OneClassSpec:
    base: dict[str, object] = {
        "name": "synthetic",
        "dataset": DatasetRef(name="synthetic", version=VERSION),
        "image_size": 96,
        "fusion": "weighted",  # these tests check the weighted fusion; test_one_class_fusion.py
        "scene": None,  # asked for where a test needs it
        "appearance": {"whiten_dim": 0},
        "motion": {
            "flow_height": 96,
            "flow_width": 128,
            "grid_rows": 6,
            "grid_cols": 8,
            "top_k": 2,
            "persistence": 2,
        },
    }
    return OneClassSpec.model_validate(base | overrides)


def manifest(model_spec: OneClassSpec, threshold: float = 1.0) -> ModelManifest:
    return ModelManifest(
        model_id="m-test",
        name=model_spec.name,
        task="one_class",
        architecture="efficientnet_lite0+patch-knn+flow",
        backbone_weights=load_efficientnet_lite0().provenance,
        preprocessing=LITE0_PREPROCESSING.model_copy(update={"image_size": 96}),
        threshold=threshold,
        k=model_spec.k,
        artifact_key="models/m-test/model.safetensors",
        artifact_sha256="1" * 64,
        dataset_sha256=VERSION,
        n_images=10,
        spec=model_spec,
        metrics={},
        code_version="test",
        created_at=utc_now(),
    )


def frame(blob_x: int | None) -> torch.Tensor:
    """A textured 3x96x128 scene; a bright textured square at columns blob_x..blob_x+20."""
    rng = np.random.default_rng(0)
    gray = torch.from_numpy((rng.random((96, 128)) * 60 + 40).astype(np.float32))
    gray = torch.nn.functional.avg_pool2d(gray[None, None], 3, 1, 1)[0, 0]
    if blob_x is not None:
        square = torch.from_numpy(np.random.default_rng(1).random((20, 20)).astype(np.float32))
        gray[40:60, blob_x : blob_x + 20] = square * 80 + 170
    return gray.round().to(torch.uint8).expand(3, -1, -1).contiguous()


QUIET = math.log(2)  # softplus(0): a frame exactly as calm as the site's normal mean


def motion_model() -> OneClassFrameModel:
    model_spec = spec(appearance={"weight": 0.0})
    tensors = {MOTION_NORM: torch.tensor([0.0, 1.0])}
    return OneClassFrameModel.from_artifact(manifest(model_spec), tensors, "cpu")


def test_heatmap_localises_a_moving_blob_and_the_first_frame_is_quiet() -> None:
    model = motion_model()
    scores = model.score_frames(["cam"] * 5, [frame(20 + 5 * i) for i in range(5)])
    assert scores[0].score == pytest.approx(QUIET)  # no previous frame: no motion to see
    last = scores[-1]
    assert last.heatmap is not None and last.heatmap.shape == (6, 8)
    row, col = divmod(int(last.heatmap.argmax()), 8)
    assert row in (2, 3) and col in (2, 3, 4)
    assert last.score > 1.0 and last.threshold == 1.0


def test_static_camera_scores_low_and_cameras_keep_separate_state() -> None:
    model = motion_model()
    still = model.score_frames(["a", "a", "a"], [frame(30)] * 3)
    assert max(s.score for s in still) < QUIET + 0.1
    model.score_frames(["b", "b"], [frame(20), frame(25)])  # a first flow: no full window yet
    moved = model.score_frames(["b", "a"], [frame(30), frame(30)])
    assert moved[0].score > 1.0 and moved[1].score < QUIET + 0.1


def test_forget_drops_a_camera_so_its_next_frame_is_a_first_frame() -> None:
    model = motion_model()
    model.score_frames(["cam"], [frame(20)])
    model.forget("cam")
    assert model.score_frames(["cam"], [frame(40)])[0].score == pytest.approx(QUIET)


def fitted_tensors(model_spec: OneClassSpec) -> dict[str, torch.Tensor]:
    """A tiny appearance bank of the static scene's own patches, plus normalisation."""
    backbone = load_efficientnet_lite0()
    extractor = PatchFeatureExtractor(backbone.module, model_spec.appearance.stages).eval()
    prep = LITE0_PREPROCESSING.model_copy(update={"image_size": 96})
    with torch.inference_mode():
        features = extractor(to_batch([frame(None)], prep))
    bank = features.permute(0, 2, 3, 1).reshape(-1, features.shape[1])
    return {
        APPEARANCE_BANK: bank.contiguous(),
        APPEARANCE_NORM: torch.tensor([0.5, 2.0]),
        MOTION_NORM: torch.tensor([0.1, 0.5]),
    }


def test_artifact_round_trips_through_safetensors() -> None:
    model_spec = spec()
    first = OneClassFrameModel.from_artifact(
        manifest(model_spec), fitted_tensors(model_spec), "cpu"
    )
    blob = save_safetensors(first.to_tensors())
    second = OneClassFrameModel.from_artifact(manifest(model_spec), load_safetensors(blob), "cpu")
    frames = [frame(None), frame(20), frame(26)]
    a = first.score_frames(["cam"] * 3, frames)
    b = second.score_frames(["cam"] * 3, frames)
    assert [s.score for s in a] == pytest.approx([s.score for s in b], abs=1e-5)
    assert a[2].score > a[0].score  # an object appeared and moved


def test_context_frames_are_exactly_what_a_fresh_camera_needs_to_get_the_same_score() -> None:
    model_spec = spec(smoothing_window=3)  # persistence 2, plus 3 - 1 smoothed scores back
    model = OneClassFrameModel.from_artifact(
        manifest(model_spec), fitted_tensors(model_spec), "cpu"
    )
    assert model.context_frames == 4
    steps = [0, 2, 9, 9, 3, 12, 1, 0, 15, 4]  # a blob moving at changing speeds
    images = [frame(10 + sum(steps[: i + 1])) for i in range(len(steps))]
    continuous = [s.score for s in model.score_frames(["cam"] * len(images), images)]
    one_short = []
    for t in range(4, len(images)):  # each replay is a camera of its own: a fresh state
        replayed = model.score_frames([f"replay-{t}"] * 5, images[t - 4 : t + 1])
        assert replayed[-1].score == pytest.approx(continuous[t], abs=1e-5)
        short = model.score_frames([f"short-{t}"] * 4, images[t - 3 : t + 1])
        one_short.append(abs(short[-1].score - continuous[t]))
    assert max(one_short) > 0.01, "one frame fewer must change a score: the context is tight"


def test_context_frames_follow_the_streams_in_use() -> None:
    appearance_only = spec(motion=None, smoothing_window=5)
    model = OneClassFrameModel.from_artifact(
        manifest(appearance_only), fitted_tensors(appearance_only), "cpu"
    )
    assert model.context_frames == 4
    assert motion_model().context_frames == 2  # the persistence window, no smoothing


def test_artifact_missing_a_stream_is_refused_with_the_names() -> None:
    model_spec = spec()
    tensors = fitted_tensors(model_spec)
    del tensors[MOTION_NORM]
    with pytest.raises(ArtifactError, match=MOTION_NORM):
        OneClassFrameModel.from_artifact(manifest(model_spec), tensors, "cpu")
    whitened = spec(appearance={"whiten_dim": 16})
    with pytest.raises(ArtifactError, match="projection"):
        OneClassFrameModel.from_artifact(manifest(whitened), fitted_tensors(whitened), "cpu")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"appearance": {"weight": 0.0}, "motion": None}, "nothing would score"),
        ({"appearance": {"stages": [2, 9]}}, "stage indices"),
        ({"motion": {"grid_rows": 64}}, "cells of at least 4 pixels"),
        ({"motion": {"top_k": 500}}, "top_k"),
        ({"target_fpr": 0.7}, "target_fpr"),
        ({"dataset": {"prefix": "ped2/"}}, "dataset.name"),
    ],
)
def test_spec_refuses_what_cannot_work(overrides: dict[str, object], message: str) -> None:
    base: dict[str, object] = {"name": "x", "dataset": {"name": "ped2-train"}}
    with pytest.raises(ValidationError) as info:
        OneClassSpec.model_validate(base | overrides)
    text = str(info.value) + " ".join(".".join(map(str, e["loc"])) for e in info.value.errors())
    assert message in text


def test_spec_defaults_fuse_every_stream() -> None:
    default = OneClassSpec.model_validate({"name": "x", "dataset": {"name": "ped2-train"}})
    assert default.motion is not None and default.motion.weight > 0
    assert default.appearance.weight > 0 and default.appearance.stages == (2, 4)
    assert default.fusion == "calibrated_max" and default.scene is not None
    assert default.scene_embedding and default.scene_activity  # from five normal groups


def test_a_frame_calmer_than_the_site_normal_scores_above_zero_not_below() -> None:
    model_spec = spec(appearance={"weight": 0.0})
    busy_site = {MOTION_NORM: torch.tensor([5.0, 1.0])}  # normal frames move 5 units
    model = OneClassFrameModel.from_artifact(manifest(model_spec), busy_site, "cpu")
    scores = model.score_frames(["cam"] * 4, [frame(30)] * 4)  # nothing moves: z = -5
    assert all(s.score >= 0.0 for s in scores)  # event messages carry scores >= 0
    # The first frame and flow have no motion to measure (no full persistence window of 2).
    assert all(s.score < 0.01 for s in scores[2:])
    assert all(s.heatmap is None or float(s.heatmap.min()) >= 0.0 for s in scores)


def test_a_backbone_fine_tuned_past_the_patch_stages_only_is_called_out() -> None:
    base = {"name": "c", "task": "classify", "dataset": {"name": "d"}}
    parent = manifest(spec()).model_copy(update={"model_id": "m-parent"})

    def warning(freeze: dict[str, object]) -> str | None:
        classify = ClassifySpec.model_validate(base | {"structure": {"freeze": freeze}})
        return untouched_patch_stages(parent.model_copy(update={"spec": classify}), (2, 4))

    default = warning({})  # the classify default trains the last 2 of 9 stages only
    assert default is not None and "patch stages [2, 4] are ImageNet's unchanged" in default
    assert warning({"mode": "all_but_head"}) is not None
    assert warning({"mode": "none"}) is None
    assert warning({"mode": "last_n_stages", "last_n_stages": 4}) is None
    assert warning({"mode": "last_n_stages", "last_n_stages": 3}) is not None
