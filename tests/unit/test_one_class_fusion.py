"""Calibrated fusion: stream scores as surprises under the site's normal frames, the largest
wins or Fisher's sum; and models stored before it keep scoring as they did."""

from __future__ import annotations

import json
import math

import pytest
import torch
from pydantic import ValidationError

from tests.unit.test_one_class_model import fitted_tensors, frame, manifest, spec
from vigil_shared.schemas.manifests import ModelManifest
from vigil_shared.schemas.one_class import (
    MIN_SCENE_GROUPS,
    SCENE_LEFT_OUT,
    Fusion,
    OneClassSpec,
    SceneSpec,
    as_requested,
)
from vigil_shared.vision.one_class_fusion import (
    Stream,
    calibrated,
    combine,
    fisher,
    frame_surprises,
    leading,
    weighted,
)
from vigil_shared.vision.one_class_model import (
    ACTIVITY_TAIL,
    APPEARANCE_TAIL,
    MOTION_NORM,
    MOTION_TAIL,
    PROJECTION_COMPONENTS,
    PROJECTION_MEAN,
    SCENE_BANK,
    SCENE_TAIL,
    ArtifactError,
    OneClassFrameModel,
)
from vigil_shared.vision.tail_scores import fit_tail, surprise
from vigil_trainer.one_class.banks import scene_bank


def test_surprise_is_about_minus_log_of_the_normal_exceedance_rate() -> None:
    generator = torch.Generator().manual_seed(0)
    held_out = torch.randn(2000, generator=generator) * 3 + 10
    fresh = torch.randn(100_000, generator=generator) * 3 + 10
    scores = surprise(fresh, fit_tail(held_out))
    for level in (math.log(20), math.log(100)):  # 5 % and 1 % of normal frames
        rate = float((scores > level).float().mean())
        assert math.exp(-level) / 2 < rate < math.exp(-level) * 2
    assert float(scores.min()) == 0.0  # below the median: nothing unusual
    beyond = surprise(torch.tensor([40.0, 60.0]), fit_tail(held_out))
    assert 10 < float(beyond[0]) < float(beyond[1])  # keeps counting past every normal score


def test_a_two_sided_tail_finds_too_little_as_well_as_too_much() -> None:
    held_out = torch.linspace(4.0, 6.0, 200)
    tail = fit_tail(held_out, two_sided=True)
    low, middle, high = surprise(torch.tensor([0.0, 5.0, 10.0]), tail).tolist()
    assert middle == 0.0 and low > 10 and high > 10
    assert surprise(torch.tensor([0.0]), fit_tail(held_out))[0] == 0.0  # one-sided: calm


def test_a_stream_that_never_varies_on_normal_frames_still_gives_finite_scores() -> None:
    tail = fit_tail(torch.zeros(50))
    scores = surprise(torch.tensor([0.0, 1.0, float("nan")]), tail)
    assert scores[0] == 0.0 and math.isfinite(float(scores[1])) and scores[1] > 10
    assert math.isnan(float(scores[2]))


def streams(first: list[float], second: list[float]) -> list[Stream]:
    """Two whole-frame streams of different units, each calibrated on its own normal range."""
    normal_a = torch.linspace(0.0, 1.0, 100)  # a distance of order 1
    normal_b = torch.linspace(0.0, 100.0, 100)  # a magnitude of order 100
    a = Stream(torch.tensor(first), None, 0.9, torch.tensor([0.5, 0.29]), fit_tail(normal_a))
    b = Stream(torch.tensor(second), None, 0.1, torch.tensor([50.0, 29.0]), fit_tail(normal_b))
    return [a, b]


def test_either_stream_alarms_on_its_own_whatever_the_units_and_weights() -> None:
    # frame 0: both normal; frame 1: only the low-weight stream is far out; frame 2: only a
    both = streams([0.5, 0.5, 3.0], [50.0, 400.0, 50.0])
    fused, heatmap = calibrated(both, "calibrated_max")
    assert fused[0] < 2 and fused[1] > 20 and fused[2] > 20
    assert heatmap.shape == (3, 1, 1) and torch.equal(heatmap[:, 0, 0], fused)
    drowned, _ = weighted(both)  # the 0.1-weighted stream's signal is diluted ten times
    assert drowned[1] < drowned[2] / 2


def test_a_frame_is_labeled_by_the_stream_it_is_most_unusual_in() -> None:
    # frame 0: the second stream far out; 1: the first; 2: no stream scores; 3: the first only
    parts = streams([0.5, 3.0, float("nan"), 2.0], [400.0, 50.0, float("nan"), float("nan")])
    surprises, gains = frame_surprises(parts)
    assert leading(surprises, gains) == [1, 0, None, 0]
    fused, _ = calibrated(parts, "calibrated_max")  # the leading stream's surprise is the score
    assert torch.equal(fused[:2], surprises[[0, 1], [1, 0]])
    # A stream a label fit turned off (gain 0) never leads, however unusual.
    assert leading(surprises, torch.tensor([1.0, 0.0])) == [0, 0, None, 0]


@pytest.mark.parametrize("fusion", ["calibrated_max", "calibrated_sum"])
def test_a_frame_without_some_stream_is_scored_on_the_others(fusion: Fusion) -> None:
    parts = streams([2.0, float("nan")], [float("nan"), float("nan")])
    fused, _ = calibrated(parts, fusion)
    alone, _ = calibrated(parts[:1], fusion)
    assert fused[0] > 5 and fused[1] == 0.0 and float(fused[0]) == float(alone[0])


def test_fisher_adds_up_streams_that_are_each_somewhat_unusual() -> None:
    surprises = torch.tensor([[4.0, 4.0], [10.0, 0.0], [0.0, 0.0], [4.0, float("nan")]])
    ones = torch.ones(2)
    summed, largest = (
        combine(surprises, ones, "calibrated_sum"),
        combine(surprises, ones, "calibrated_max"),
    )
    assert summed[0] > largest[0] + 1  # 8 - ln 9 = 5.8 against 4
    assert 7 < summed[1] < largest[1]  # one strong stream still alarms, a little later
    assert summed[2] == 0.0 and summed[3] == largest[3] == 4.0  # one stream: its own surprise
    assert torch.allclose(
        fisher(torch.tensor([8.0]), torch.tensor([2])), torch.tensor([8 - math.log(9)])
    )


@pytest.mark.parametrize("streams_per_frame", [1, 2, 4])
def test_fisher_keeps_the_surprise_scale_whatever_the_number_of_streams(
    streams_per_frame: int,
) -> None:
    # Independent normal streams' surprises are Exp(1); one frame in a hundred should read ln 100.
    generator = torch.Generator().manual_seed(0)
    surprises = torch.empty((200_000, streams_per_frame)).exponential_(generator=generator)
    fused = combine(surprises, torch.ones(streams_per_frame), "calibrated_sum")
    for level in (math.log(20), math.log(100)):
        rate = float((fused > level).float().mean())
        assert math.exp(-level) / 1.2 < rate < math.exp(-level) * 1.2


def calibrated_tensors(model_spec: OneClassSpec) -> dict[str, torch.Tensor]:
    """The weighted test artifact plus tails (a wide normal range) and a scene bank."""
    tensors = fitted_tensors(model_spec)
    wide = fit_tail(torch.linspace(0.0, 4.0, 100))
    tails = {APPEARANCE_TAIL: wide, MOTION_TAIL: wide, SCENE_TAIL: wide}
    return tensors | tails | {ACTIVITY_TAIL: fit_tail(torch.linspace(0, 4, 100), two_sided=True)}


def test_a_calibrated_model_needs_its_tails_and_scene_bank() -> None:
    model_spec = spec(fusion="calibrated_max", scene={})
    tensors = calibrated_tensors(model_spec)
    with pytest.raises(ArtifactError, match=SCENE_BANK):
        OneClassFrameModel.from_artifact(manifest(model_spec), tensors, "cpu")
    del tensors[ACTIVITY_TAIL]
    tensors[SCENE_BANK] = torch.zeros(4, 152)
    with pytest.raises(ArtifactError, match=ACTIVITY_TAIL):
        OneClassFrameModel.from_artifact(manifest(model_spec), tensors, "cpu")


@pytest.mark.parametrize("fusion", ["calibrated_max", "calibrated_sum"])
def test_a_calibrated_model_scores_and_maps_a_moving_blob(fusion: Fusion) -> None:
    model_spec = spec(fusion=fusion, scene={"embedding": False})
    model = OneClassFrameModel.from_artifact(
        manifest(model_spec, threshold=5.0), calibrated_tensors(model_spec), "cpu"
    )
    scores = model.score_frames(["cam"] * 5, [frame(20 + 5 * i) for i in range(5)])
    assert all(s.score >= 0.0 for s in scores)
    last = scores[-1]
    assert last.heatmap is not None and last.heatmap.shape == (6, 8)
    assert last.score > scores[0].score and float(last.heatmap.max()) <= last.score + 1e-5
    # A bright new object that moves: unusual in look and in motion, the larger one names it.
    assert last.label in {"appearance", "motion"}


def test_an_event_names_the_stream_that_made_its_frames_unusual() -> None:
    model_spec = spec(fusion="calibrated_max", appearance={"weight": 0.0}, scene={})
    model = OneClassFrameModel.from_artifact(
        manifest(model_spec, threshold=5.0), calibrated_tensors(model_spec), "cpu"
    )
    scores = model.score_frames(["cam"] * 5, [frame(20 + 5 * i) for i in range(5)])
    # Motion only (its overall activity too): a first frame has neither, so no label.
    assert scores[0].label is None and scores[-1].label == "motion"


def legacy_manifest_json(model_spec: OneClassSpec) -> str:
    """A manifest as main stored it before ``fusion``, ``scene``, the persistence radius and
    the full window existed."""
    stored = json.loads(manifest(model_spec).model_dump_json(by_alias=True))
    del stored["spec"]["fusion"], stored["spec"]["scene"]
    del stored["spec"]["motion"]["persistence_radius"], stored["spec"]["motion"]["full_window"]
    return json.dumps(stored)


def test_a_manifest_stored_before_fusion_existed_loads_and_scores_as_before() -> None:
    weighted_spec = spec(fusion="weighted")
    legacy = ModelManifest.model_validate_json(legacy_manifest_json(weighted_spec))
    assert isinstance(legacy.spec, OneClassSpec)
    assert legacy.spec.fusion == "weighted" and legacy.spec.scene is None
    assert legacy.spec.motion is not None and legacy.spec.motion.persistence_radius == 0
    assert not legacy.spec.motion.full_window  # its motion scored from a camera's second frame
    tensors = fitted_tensors(weighted_spec)  # what an old artifact holds: no tails, no scene
    old = OneClassFrameModel.from_artifact(legacy, tensors, "cpu")
    frames = [frame(None), frame(20), frame(26), frame(33)]
    scores = [s.score for s in old.score_frames(["cam"] * 4, frames)]
    # As main scored it: softplus of the weighted z-scores (0.2 appearance, 0.8 motion).
    raw = old.stream_scores(["replay"] * 4, frames)
    (a_mean, a_std), (m_mean, m_std) = tensors["appearance.norm"], tensors[MOTION_NORM]
    z_a = (raw.appearance - a_mean) / a_std
    z_m = (raw.motion - m_mean) / m_std
    expected = [float(torch.nn.functional.softplus(z_a[0]))] + [
        float(torch.nn.functional.softplus(0.2 * z_a[i] + 0.8 * z_m[i])) for i in (1, 2, 3)
    ]
    assert scores == pytest.approx(expected, abs=1e-5)
    # Read back and stored again, it keeps its method.
    again = ModelManifest.model_validate_json(legacy.model_dump_json(by_alias=True))
    assert again.spec == legacy.spec


def test_the_scene_stream_is_on_by_default_and_rides_on_the_streams_it_needs() -> None:
    base: dict[str, object] = {"name": "x", "dataset": {"name": "d"}}
    default = OneClassSpec.model_validate(base)
    assert default.scene == SceneSpec() and default.scene.min_groups == MIN_SCENE_GROUPS
    assert default.scene_embedding and default.scene_activity
    assert OneClassSpec.model_validate(base | {"scene": None}).scene is None
    # weighted fuses two streams by weight: asked for without a scene, it has none ...
    assert OneClassSpec.model_validate(base | {"fusion": "weighted"}).scene is None
    with pytest.raises(ValidationError, match="scene to null"):  # ... asked with one, refused
        OneClassSpec.model_validate(base | {"fusion": "weighted", "scene": {}})
    appearance_only = OneClassSpec.model_validate(base | {"motion": None, "scene": {}})
    assert appearance_only.scene_embedding and not appearance_only.scene_activity


def test_a_stored_scene_stream_reads_as_fitted_and_a_retrain_asks_again_for_one_left_out() -> None:
    stored = json.loads(
        manifest(spec(fusion="calibrated_max", scene={})).model_dump_json(by_alias=True)
    )
    del stored["spec"]["scene"]["min_groups"]  # stored before the field: fitted whatever the groups
    legacy = ModelManifest.model_validate_json(json.dumps(stored))
    assert isinstance(legacy.spec, OneClassSpec) and legacy.spec.scene is not None
    assert legacy.spec.scene.min_groups == 1
    # A fit that left the stream out stores no scene, and says what it asked for.
    left_out = {"scene": None, "fusion": "calibrated_max"}
    assert as_requested(left_out, {SCENE_LEFT_OUT: 5.0})["scene"] == {"min_groups": 5}
    assert as_requested(left_out, {})["scene"] is None  # null asked for: null kept
    assert as_requested(left_out, {SCENE_LEFT_OUT: math.inf}) == left_out  # no fit wrote that
    on = {"scene": {"min_groups": 5}}
    assert as_requested(on, {SCENE_LEFT_OUT: 5.0}) == on


def test_the_scene_bank_is_the_projected_frame_means_capped_by_a_seeded_sample() -> None:
    generator = torch.Generator().manual_seed(0)
    patches = torch.randn((40, 9, 6), generator=generator)  # 40 frames, 9 patches, 6 values
    mean, components = torch.randn(6, generator=generator), torch.randn((6, 3), generator=generator)
    tensors = {PROJECTION_MEAN: mean, PROJECTION_COMPONENTS: components}
    model_spec = spec(fusion="calibrated_max", scene={"bank_frames": 16})
    bank = scene_bank(patches.mean(dim=1), tensors, spec=model_spec)[SCENE_BANK]
    projected_means = ((patches - mean) @ components).mean(dim=1)  # what inference pools
    assert bank.shape == (16, 3)
    assert all(torch.isclose(projected_means, row, atol=1e-5).all(1).any() for row in bank)
    again = scene_bank(patches.mean(dim=1), tensors, spec=model_spec)[SCENE_BANK]
    assert torch.equal(bank, again)
