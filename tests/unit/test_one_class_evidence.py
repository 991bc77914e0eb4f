"""Evidence accumulated over a camera's recent frames (``OneClassSpec.evidence``): a windowed
CUSUM of the fused surprises, the same in the fit (a clip at once) and live (frame by frame)."""

from __future__ import annotations

import math

import pytest
import torch
from pydantic import ValidationError

from tests.unit.test_one_class_fusion import calibrated_tensors
from tests.unit.test_one_class_model import frame, manifest, spec
from vigil_shared.event_lifecycle import LifecycleSettings
from vigil_shared.event_simulation import replay
from vigil_shared.vision.one_class_model import OneClassFrameModel, history_frames, over_time
from vigil_shared.vision.score_metrics import accumulated_evidence


def by_definition(scores: list[float], window: int, drift: float) -> list[float]:
    """Each score plus the best sum of (score - drift) over a run of the frames just before it."""
    out = []
    for t, score in enumerate(scores):
        runs = [sum(s - drift for s in scores[j:t]) for j in range(max(0, t - window + 1), t)]
        out.append(score + max([0.0, *runs]))
    return out


def test_evidence_is_the_best_run_of_excess_before_each_frame() -> None:
    generator = torch.Generator().manual_seed(0)
    scores = torch.rand(200, generator=generator, dtype=torch.float64) * 5
    for window, drift in ((2, 1.0), (6, 2.3), (10, 0.0)):
        expected = by_definition(scores.tolist(), window, drift)
        got = accumulated_evidence(scores, window, drift)
        assert got.tolist() == pytest.approx(expected)


def test_a_frame_alone_scores_itself_and_a_run_of_somewhat_unusual_frames_adds_up() -> None:
    drift = math.log(10)
    calm = [0.0, 1.0, 0.5, 2.0, 0.0]
    assert accumulated_evidence(torch.tensor(calm), 10, drift).tolist() == pytest.approx(calm)
    lone = torch.tensor([0.0, 0.0, 9.0, 0.0, 0.0])
    assert accumulated_evidence(lone, 10, drift)[2] == pytest.approx(9.0)
    slow = torch.full((12,), 4.0, dtype=torch.float64)  # each frame under a threshold of 8
    evidence = accumulated_evidence(slow, 10, drift)
    assert float(evidence.max()) > 8.0 and float(evidence[0]) == 4.0
    # the window bounds the run: 9 frames back at most, whatever the clip's length
    assert float(evidence[-1]) == pytest.approx(4.0 + 9 * (4.0 - drift))


def test_a_slow_anomaly_under_the_threshold_opens_an_event_with_evidence_only() -> None:
    """Moderate surprises on every frame never reach the threshold alone; accumulated, they do,
    while the same clip's calm frames stay calm."""
    scores = [0.5] * 30 + [4.5] * 20 + [0.5] * 30
    threshold = 12.0
    settings = LifecycleSettings()
    model_spec = spec(fusion="calibrated_max", evidence={})
    plain = replay(scores, threshold=threshold, settings=settings, fps=10.0)
    accumulated = over_time(model_spec, torch.tensor(scores, dtype=torch.float64)).tolist()
    events = replay(accumulated, threshold=threshold, settings=settings, fps=10.0)
    assert plain == [] and len(events) == 1
    assert max(accumulated[:30]) == 0.5


def test_evidence_needs_a_calibrated_fusion_and_no_smoothing_window() -> None:
    with pytest.raises(ValidationError, match="calibrated fusion"):
        spec(fusion="weighted", evidence={})
    with pytest.raises(ValidationError, match="use one"):
        spec(fusion="calibrated_max", evidence={}, smoothing_window=3)
    with pytest.raises(ValidationError):
        spec(fusion="calibrated_max", evidence={"window": 1})


def test_live_scores_match_the_fit_and_a_restart_replays_the_window() -> None:
    """The worker scores frame by frame what the fit computed on whole clips (``over_time``),
    and ``context_frames`` is what a fresh camera needs to give the same score."""
    model_spec = spec(fusion="calibrated_max", evidence={"window": 4, "drift": 0.5})
    assert history_frames(model_spec) == 4
    model = OneClassFrameModel.from_artifact(
        manifest(model_spec, threshold=5.0), calibrated_tensors(model_spec), "cpu"
    )
    assert model.context_frames == 3 + 2  # window - 1 scores back, then persistence 2
    steps = [0, 2, 9, 9, 3, 12, 1, 0, 15, 4, 0, 0]
    images = [frame(10 + sum(steps[: i + 1])) for i in range(len(steps))]
    live = [s.score for s in model.score_frames(["cam"] * len(images), images)]
    fused = torch.cat([model.fuse(model.stream_scores(["raw"], [image]))[0] for image in images])
    assert live == pytest.approx(over_time(model_spec, fused.double()).tolist(), rel=1e-6)
    context = model.context_frames
    for t in range(context, len(images)):
        replayed = model.score_frames([f"replay-{t}"] * (context + 1), images[t - context : t + 1])
        assert replayed[-1].score == pytest.approx(live[t], rel=1e-6)
    assert max(live) > float(fused.max()), "the runs of excess must add up somewhere"
