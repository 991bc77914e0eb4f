"""The batch scorer: frames back in batch order, bad frames rejected alone, shadows recorded."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
import torch

from tests.factories import consumed_frame, scene_jpeg
from vigil_inference.frames import Frame
from vigil_inference.metrics import InferenceMetrics
from vigil_inference.models import ScoringModel
from vigil_inference.routing import Route
from vigil_inference.scoring import BatchScorer
from vigil_shared.schemas.events import ModelRef
from vigil_shared.vision.scoring import FrameScore

NARROW = (60, 40)
"""A frame size ``WidthModel`` cannot score."""


class WidthModel:
    """Scores a frame by its width; learns (scores None) the cameras in ``warming``; fails on a
    call that holds a frame narrower than 100 pixels."""

    def __init__(self, threshold: float, warming: frozenset[str] = frozenset()) -> None:
        self.threshold = threshold
        self.warming = warming
        self.calls: list[list[str]] = []

    def score_frames(
        self,
        camera_ids: Sequence[str],
        images: Sequence[torch.Tensor],
        times: Sequence[float] | None = None,
    ) -> list[FrameScore | None]:
        self.calls.append(list(camera_ids))
        if any(image.shape[-1] < 100 for image in images):
            raise ValueError("frame too small")
        return [
            None
            if camera_id in self.warming
            else FrameScore(score=float(image.shape[-1]), threshold=self.threshold)
            for camera_id, image in zip(camera_ids, images, strict=True)
        ]

    context_frames = 0

    def forget(self, camera_id: str) -> None:
        pass


def model(model_id: str, scorer: WidthModel) -> ScoringModel:
    return ScoringModel(ModelRef(id=model_id, kind="registry"), scorer)


def frame(camera_id: str, offset: int, jpeg: bytes) -> Frame:
    return consumed_frame(camera_id, offset, jpeg, partition=offset % 2)


@pytest.mark.parametrize("threads", [1, 3])
def test_frames_come_back_in_batch_order_and_only_bad_ones_are_rejected(threads: int) -> None:
    prod = model("prod", WidthModel(threshold=150.0, warming=frozenset({"c"})))
    frames = [
        frame("a", 0, scene_jpeg(0)),
        frame("b", 1, scene_jpeg(1)),
        frame("a", 2, b"not a jpeg"),
        frame("c", 3, scene_jpeg(3)),
        frame("b", 4, scene_jpeg(4, size=NARROW)),
        frame("a", 5, scene_jpeg(5)),
    ]
    scorer = BatchScorer(device="cpu", metrics=InferenceMetrics(), threads=threads)
    try:
        batch = scorer.submit(frames, dict.fromkeys("abc", Route(prod))).result()
    finally:
        scorer.close()

    assert [s.frame.record.offset for s in batch.frames] == [0, 1, 3, 4, 5]
    reasons = {r.record.offset: r.reason.split(":")[0] for r in batch.rejected}
    assert reasons == {2: "not a decodable JPEG", 4: "model prod could not score it"}
    observations = {s.frame.record.offset: s.observation for s in batch.frames}
    assert observations[3] is None, "a warm-up frame is learnt, not scored"
    assert observations[4] is None, "a frame its model cannot score has no observation"
    for offset in (0, 1, 5):
        observation = observations[offset]
        assert observation is not None
        assert observation.offset == offset and observation.model.id == "prod"
        assert observation.score == 180.0 and observation.hot
        assert observation.jpeg == frames[offset].record.value


def test_a_shadow_model_is_compared_with_production_and_its_failure_is_only_logged() -> None:
    metrics = InferenceMetrics()
    prod = model("prod", WidthModel(threshold=150.0))
    quiet_shadow = model("candidate", WidthModel(threshold=500.0))
    broken_shadow = model("broken", WidthModel(threshold=1.0))
    routes = {"a": Route(prod, quiet_shadow), "b": Route(prod, broken_shadow)}
    frames = [
        frame("a", 0, scene_jpeg(0)),
        frame("b", 1, scene_jpeg(1, size=(120, 80))),
        frame("a", 2, scene_jpeg(2)),
        frame("b", 3, scene_jpeg(3, size=NARROW)),
    ]
    scorer = BatchScorer(device="cpu", metrics=metrics, threads=1)
    try:
        batch = scorer.score(frames, routes)
    finally:
        scorer.close()

    hot = [s.observation.hot if s.observation else None for s in batch.frames]
    assert hot == [True, False, True, None]
    assert [r.record.offset for r in batch.rejected] == [3]

    def shadow_frames(model_id: str, shadow: str, production: str) -> float:
        labels = {"model_id": model_id, "shadow": shadow, "production": production}
        value = metrics.registry.get_sample_value("vigil_inference_shadow_frames_total", labels)
        return value or 0.0

    assert shadow_frames("candidate", "quiet", "hot") == 2
    assert shadow_frames("broken", "hot", "hot") == 0
    # Each compared frame is recorded for the shadow report: both models' scores, in order.
    recorded = [(s.camera_id, s.frame_offset, s.shadow.id, s.production.id) for s in batch.shadow]
    assert recorded == [("a", 0, "candidate", "prod"), ("a", 2, "candidate", "prod")]
    assert all(s.production_hot and not s.shadow_hot for s in batch.shadow)
