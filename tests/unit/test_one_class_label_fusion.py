"""Calibrated fusion fitted on labels: a stream that only adds noise where the labeled events are
is turned down, and only when that holds on groups the gains were not chosen on."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from tests.unit.test_one_class_fusion import calibrated_tensors
from tests.unit.test_one_class_model import frame, manifest, spec
from vigil_shared.event_lifecycle import LifecycleSettings
from vigil_shared.schemas.one_class import OneClassSpec
from vigil_shared.vision.backbones import LITE0_PREPROCESSING
from vigil_shared.vision.one_class_model import (
    APPEARANCE_TAIL,
    FUSION_GAINS,
    MOTION_TAIL,
    ArtifactError,
    OneClassFrameModel,
    OneClassScorer,
    StreamScores,
    check_tensors,
)
from vigil_shared.vision.score_metrics import normal_threshold
from vigil_shared.vision.tail_scores import fit_tail, surprise
from vigil_trainer.one_class.calibrate import ClipScores, stream_tails
from vigil_trainer.one_class.fit import _calibrate
from vigil_trainer.one_class.label_fusion import ADOPT_MARGIN, fit_fusion_gains


def clip(
    generator: torch.Generator, frames: int, *, appearance: float = 0.0, motion: float = 0.0
) -> ClipScores:
    """Unit-normal stream scores; with a shift, frames 20-39 are a labeled event that raises
    appearance and motion by ``appearance`` and ``motion``."""
    abnormal = torch.zeros(frames, dtype=torch.bool)
    if appearance or motion:
        abnormal[20:40] = True
    scores = [
        torch.randn(frames, generator=generator) + shift * abnormal
        for shift in (appearance, motion)
    ]
    nan = torch.full((frames,), float("nan"))
    return ClipScores([StreamScores(scores[0], None, scores[1], None, nan, nan)], abnormal)


def labeled_site(*, noise_motion: bool) -> tuple[list[ClipScores], list[ClipScores]]:
    """20 normal groups and 12 labeled events (240 frames). With ``noise_motion`` every event
    shows in appearance only and motion is pure noise; otherwise half the events show in
    appearance only and half in motion only, so each stream catches what the other misses."""
    generator = torch.Generator().manual_seed(0)
    normal = [clip(generator, 100) for _ in range(20)]
    events = [
        clip(generator, 60, appearance=2.0)
        if noise_motion or i % 2
        else clip(generator, 60, motion=2.0)
        for i in range(12)
    ]
    return normal, events


def scorer(model_spec: OneClassSpec, tensors: dict[str, torch.Tensor]) -> OneClassScorer:
    return OneClassScorer(
        spec=model_spec,
        preprocessing=LITE0_PREPROCESSING,
        threshold=0.0,
        extractor=None,
        tensors=tensors,
        device="cpu",
    )


def tailed(
    normal: list[ClipScores], fusion: str = "calibrated_max", **overrides: object
) -> OneClassScorer:
    model_spec = spec(fusion=fusion, **overrides)
    return scorer(model_spec, stream_tails(model_spec, [r for c in normal for r in c.raw]))


@pytest.mark.parametrize(
    ("smoothing_window", "method"),
    [(1, "calibrated_max"), (3, "calibrated_max"), (1, "calibrated_sum")],
)
def test_a_stream_that_only_adds_noise_is_turned_down(smoothing_window: int, method: str) -> None:
    normal, events = labeled_site(noise_motion=True)
    fusion = fit_fusion_gains(
        tailed(normal, method, smoothing_window=smoothing_window), normal + events, seed=0
    )
    assert fusion is not None and fusion.gains is not None
    appearance, motion = fusion.gains.tolist()
    assert appearance == 1.0 and motion < 0.5
    metrics = fusion.metrics
    assert metrics["fusion_from_labels"] == 1.0 and metrics["fusion_gain_motion"] == motion
    assert metrics["fusion_heldout_auroc_fitted"] > metrics["fusion_heldout_auroc_max"] + 0.01


def test_where_every_stream_catches_events_plain_max_is_kept() -> None:
    normal, events = labeled_site(noise_motion=False)
    fusion = fit_fusion_gains(tailed(normal), normal + events, seed=0)
    assert fusion is not None and fusion.gains is None
    metrics = fusion.metrics
    assert metrics["fusion_from_labels"] == 0.0
    assert metrics["fusion_gain_appearance"] == metrics["fusion_gain_motion"] == 1.0
    fitted, plain = metrics["fusion_heldout_auroc_fitted"], metrics["fusion_heldout_auroc_max"]
    assert fitted <= plain + ADOPT_MARGIN


def test_a_single_stream_or_the_weighted_fusion_has_nothing_to_fit() -> None:
    normal, events = labeled_site(noise_motion=True)
    assert fit_fusion_gains(tailed(normal, motion=None), normal + events, seed=0) is None
    weighted = scorer(spec(fusion="weighted"), {})
    assert fit_fusion_gains(weighted, normal + events, seed=0) is None


def calibrated(
    *,
    labels_enough: bool,
    false_alarms_per_hour: float | None = None,
    lifecycle: LifecycleSettings | None = None,
) -> tuple[OneClassSpec, dict[str, torch.Tensor], dict[str, float]]:
    normal, events = labeled_site(noise_motion=True)
    model_spec = spec(fusion="calibrated_max", false_alarms_per_hour=false_alarms_per_hour)
    fit = _calibrate(
        spec=model_spec,
        scorer=scorer(model_spec, {}),
        holdout=normal,
        validation=events,
        fps=10.0,
        lifecycle=lifecycle or LifecycleSettings(),
        counts={},
        labels_enough=labels_enough,
    )
    return model_spec, fit.tensors, fit.metrics | {"fitted_threshold": fit.threshold}


def test_with_enough_labels_the_fit_stores_the_gains_and_thresholds_the_gained_scores() -> None:
    model_spec, tensors, metrics = calibrated(labels_enough=True)
    assert tensors[FUSION_GAINS].tolist() == [1.0, metrics["fusion_gain_motion"]]
    assert metrics["fusion_from_labels"] == 1.0
    # The normal threshold is the quantile of the normal scores as the stored model gives them.
    normal, _ = labeled_site(noise_motion=True)
    stored = scorer(model_spec, tensors)
    scores = torch.cat([stored.fuse(c.raw[0])[0] for c in normal])
    assert metrics["threshold_normal"] == normal_threshold(scores, target_fpr=0.01)


def test_enough_labels_set_the_threshold_only_under_the_frame_rule() -> None:
    _, _, frame_rule = calibrated(labels_enough=True)
    assert frame_rule["threshold_from_labels"] == 1.0
    _, tensors, metrics = calibrated(labels_enough=True, false_alarms_per_hour=5.0)
    # The operator's alarm budget holds: the labels weigh the streams, the rate sets the cut.
    assert metrics["fusion_from_labels"] == 1.0 and FUSION_GAINS in tensors
    assert metrics["threshold_from_labels"] == 0.0
    assert metrics["expected_false_alarms_per_hour"] == pytest.approx(5.0)
    # What the F1-best threshold would cost is reported beside it.
    assert metrics["threshold_labeled"] == pytest.approx(frame_rule["threshold_labeled"])
    assert metrics["threshold_labeled"] < metrics["threshold_normal"]
    assert metrics["expected_false_alarms_per_hour_labeled"] > 5.0


def test_without_enough_labels_the_fusion_stays_plain_max() -> None:
    _, tensors, metrics = calibrated(labels_enough=False)
    assert FUSION_GAINS not in tensors and metrics["fusion_from_labels"] == 0.0
    assert "fusion_heldout_auroc_max" not in metrics
    assert metrics["threshold_from_labels"] == 0.0


def raw_batch() -> StreamScores:
    generator = torch.Generator().manual_seed(1)
    appearance_map = torch.rand((4, 6, 8), generator=generator) * 8
    motion_map = torch.rand((4, 3, 4), generator=generator) * 8
    nan = torch.full((4,), float("nan"))
    motion = motion_map.flatten(1).amax(1)
    motion[0] = float("nan")  # a camera's first frame has no motion
    return StreamScores(
        appearance_map.flatten(1).amax(1), appearance_map, motion, motion_map, nan, nan
    )


def test_a_scorer_with_gains_scores_the_largest_gained_surprise() -> None:
    model_spec = spec(fusion="calibrated_max")
    tail = fit_tail(torch.linspace(0.0, 4.0, 100))
    tails = {APPEARANCE_TAIL: tail, MOTION_TAIL: tail}
    raw = raw_batch()
    gained = scorer(model_spec, tails | {FUSION_GAINS: torch.tensor([1.0, 0.5])})
    fused, _ = gained.fuse(raw)
    expected = torch.maximum(
        surprise(raw.appearance, tail), 0.5 * surprise(raw.motion, tail).nan_to_num(0.0)
    )
    assert torch.allclose(fused, expected)
    # Absent gains are all 1; halving every gain halves scores and heatmaps alike.
    plain_scores, plain_map = scorer(model_spec, tails).fuse(raw)
    half = scorer(model_spec, tails | {FUSION_GAINS: torch.tensor([0.5, 0.5])})
    half_scores, half_map = half.fuse(raw)
    assert torch.allclose(half_scores, plain_scores / 2)
    assert torch.allclose(half_map, plain_map / 2)


def test_an_artifact_with_gains_loads_and_bad_gains_are_refused() -> None:
    model_spec = spec(fusion="calibrated_max", scene={"embedding": False})  # 3 fused streams
    tensors = calibrated_tensors(model_spec) | {FUSION_GAINS: torch.tensor([1.0, 0.0, 0.5])}
    stored = load_safetensors(save_safetensors({k: v.clone() for k, v in tensors.items()}))
    model = OneClassFrameModel.from_artifact(manifest(model_spec), stored, "cpu")
    scores = model.score_frames(["cam"] * 3, [frame(20 + 5 * i) for i in range(3)])
    assert all(s.score >= 0.0 for s in scores)
    for bad in ([1.0, 0.5], [1.0, -1.0, 0.5], [0.0, 0.0, 0.0]):
        with pytest.raises(ArtifactError, match=FUSION_GAINS):
            check_tensors(model_spec, tensors | {FUSION_GAINS: torch.tensor(bad)})


def test_the_threshold_counts_events_with_inferences_debounce() -> None:
    """A deployment that opens an event on one hot frame (VIGIL_INFERENCE_EVENT_OPEN_K/N 1/1)
    raises more events at any threshold than the default 3 of 5, so the same target rate needs
    a higher threshold; the model records the debounce it was calibrated for."""
    _, _, default = calibrated(labels_enough=False, false_alarms_per_hour=1.0)
    eager_settings = LifecycleSettings(open_k=1, open_n=1)
    _, _, eager = calibrated(
        labels_enough=False, false_alarms_per_hour=1.0, lifecycle=eager_settings
    )
    assert (default["lifecycle_open_k"], default["lifecycle_open_n"]) == (3, 5)
    assert (eager["lifecycle_open_k"], eager["lifecycle_open_n"]) == (1, 1)
    assert (eager["lifecycle_close_after"], eager["lifecycle_close_ratio"]) == (5, 1.0)
    assert eager["fitted_threshold"] > default["fitted_threshold"]
