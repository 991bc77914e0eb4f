"""Which kinds of change a one_class model flags, through the real fit (S3 dataset,
``fit_one_class``, safetensors artifact, ``score_frames``), on generated walkway footage.

Normal footage: a textured walkway with sensor grain where four walkers pace at 1 px a frame.
Two anomalies, each of one kind only:

- ``empties``: the walkers fade into the background (``bench.synthetic_scenes.empties``) and
  the walkway stays empty: a change of occupancy, nothing moves unusually;
- ``runner``: a fifth figure crosses at 5 px a frame among the usual walkers: unusual motion,
  the scene otherwise as always;
- ``disperses``: the incident issue 11 was filed on, both at once: every walker runs off at 3-5
  px a frame (``bench.synthetic_scenes.disperses``), then the walkway stays empty.

With ``calibrated_max`` fusion (each stream as its surprise under the held-out normal frames,
the largest wins) and the scene stream both are flagged. The ``weighted`` fusion of
appearance and motion z-scores (0.2 / 0.8, the earlier default) flags the runner but scores
the emptied walkway *below* normal: its motion is below normal, and the 0.8 weight drowns what
appearance sees. So after a crowd has fled it sees the flight and then nothing.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
import torch
from minio import Minio
from PIL import Image

from bench.ped2_one_class import frame_model
from bench.synthetic_scenes import Frames, Mask, disperses, empties
from tests.integration.test_one_class_site_backbone import fit
from vigil_shared.datasets import DatasetManifest, DatasetRef, NewImage, write_dataset
from vigil_shared.schemas.one_class import OneClassSpec
from vigil_shared.settings import CommonSettings
from vigil_shared.storage import ensure_buckets, make_s3_client
from vigil_shared.vision.one_class_model import MOTION_NORM, OneClassFrameModel
from vigil_shared.vision.scoring import FrameScore

pytestmark = pytest.mark.slow

HEIGHT, WIDTH, FRAMES, ONSET = 96, 128, 100, 40
SETTLED = ONSET + 12  # the fade (10 frames) is over and the persistence window is full
SMALL = {
    "image_size": 96,
    "holdout_fraction": 0.5,
    "appearance": {"whiten_dim": 0, "frame_stride": 3, "bank_size": 1024},
    "motion": {
        "flow_height": HEIGHT,
        "flow_width": WIDTH,
        "grid_rows": 6,
        "grid_cols": 8,
        "top_k": 2,
        "persistence": 3,
    },
}


def walkway(seed: int, *, runner_from: int | None = None) -> Frames:
    """Grey frames: a textured ground with grain, four dark walkers pacing at 1 px a frame
    (each on its own row, bouncing at the edges), and from ``runner_from`` a fifth figure
    crossing at 5 px a frame."""
    rng = np.random.default_rng(seed)
    ground = np.kron(rng.random((HEIGHT // 4, WIDTH // 4)) * 60 + 100, np.ones((4, 4)))
    starts = rng.integers(0, WIDTH - 12, size=4)
    frames = []
    for t in range(FRAMES):
        grain = np.random.default_rng([seed, t]).normal(0, 4, (HEIGHT, WIDTH))
        frame = ground + grain
        for i, start in enumerate(starts):
            x = _bounce(int(start) + t, WIDTH - 10)
            frame[8 + 22 * i : 24 + 22 * i, x : x + 8] = 40
        if runner_from is not None and t >= runner_from:
            x = (5 * (t - runner_from)) % (WIDTH + 10) - 10
            frame[60:76, max(0, x) : max(0, x + 8)] = 30
        frames.append(frame.clip(0, 255).astype(np.uint8))
    return np.stack(frames)


def _bounce(position: int, span: int) -> int:
    position %= 2 * span
    return position if position < span else 2 * span - position


def _jpeg(frame: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


def normal_dataset(s3: Minio, bucket: str) -> DatasetManifest:
    """Four normal clips of the site: two build the banks, two are held out; all four are
    scored for calibration, the bank clips cross-fitted."""
    images = [
        NewImage(data=_jpeg(frame), extension=".jpg", group=f"clip{seed}", sequence=t)
        for seed in range(1, 5)
        for t, frame in enumerate(walkway(seed))
    ]
    return write_dataset(s3, bucket, name="walkway", images=images, source="import")


def anomalies() -> dict[str, tuple[Frames, Mask]]:
    runner = np.zeros(FRAMES, dtype=bool)
    runner[ONSET:] = True
    flat = None  # the made-up walkway has no perspective
    return {
        "empties": empties(walkway(9), ONSET),
        "runner": (walkway(9, runner_from=ONSET), runner),
        "disperses": disperses(walkway(9), ONSET, np.random.default_rng(0), horizon=flat),
    }


def fitted(
    s3: Minio, settings: CommonSettings, dataset: DatasetManifest, fusion: dict[str, Any]
) -> OneClassFrameModel:
    ref = DatasetRef(name=dataset.name, version=dataset.version)
    spec = OneClassSpec.model_validate(SMALL | fusion | {"name": "walkway", "dataset": ref})
    return frame_model(fit(s3, settings, spec, dataset), "cpu")


def _images(frames: Frames) -> list[torch.Tensor]:
    return [torch.from_numpy(f).expand(3, -1, -1).contiguous() for f in frames]


def scored(model: OneClassFrameModel, frames: Frames) -> list[FrameScore]:
    """The frames scored in order, as one camera's, in batches of 16."""
    images = _images(frames)
    scores: list[FrameScore] = []
    for start in range(0, len(images), 16):
        batch = images[start : start + 16]
        scores += model.score_frames(["cam"] * len(batch), batch)
    model.forget("cam")
    return scores


def flagged(model: OneClassFrameModel, frames: Frames) -> torch.Tensor:
    """Per frame, whether the model's score is at or above its own threshold."""
    return torch.tensor([s.score for s in scored(model, frames)]) >= model.threshold


def hot_labels(model: OneClassFrameModel, frames: Frames, after: int) -> set[str | None]:
    """The labels of the frames from ``after`` on that the model flags: what an event says."""
    return {s.label for s in scored(model, frames)[after:] if s.score >= model.threshold}


Models = dict[str, OneClassFrameModel]


def fitted_models() -> Models:
    """The same normal footage fitted with each fusion."""
    settings = CommonSettings()
    s3 = make_s3_client(settings.s3)
    ensure_buckets(s3, settings.s3)
    dataset = normal_dataset(s3, settings.s3.datasets_bucket)
    return {
        # Four normal clips, all alike: the scene's range is in them (the default asks five).
        "calibrated_max": fitted(s3, settings, dataset, {"scene": {"min_groups": 4}}),
        "weighted": fitted(s3, settings, dataset, {"fusion": "weighted"}),
    }


@pytest.fixture(scope="module")
def models(test_environment: None) -> Models:
    return fitted_models()


def test_a_walkway_that_empties_is_flagged_though_nothing_moves_unusually(models: Models) -> None:
    frames, _ = anomalies()["empties"]
    calibrated = flagged(models["calibrated_max"], frames)
    assert float(calibrated[:ONSET].float().mean()) <= 0.05  # the normal frames before it
    assert float(calibrated[SETTLED:].float().mean()) >= 0.9
    # Nothing moves unusually: the motion stream alone sees less than normal, never more.
    settled = _images(frames[SETTLED - 3 :])  # with the persistence window before them
    motion = models["calibrated_max"].stream_scores(["e"] * len(settled), settled).motion[3:]
    assert float(motion.max()) < float(models["calibrated_max"].tensors[MOTION_NORM][0])
    # Its events say so: the whole frame, or its overall motion, is what is unusual.
    assert hot_labels(models["calibrated_max"], frames, SETTLED) <= {"scene", "activity"}
    # The weighted fusion scores the emptied walkway as calm, below its threshold.
    weighted = flagged(models["weighted"], frames)
    assert float(weighted[SETTLED:].float().mean()) <= 0.05


def test_unusual_motion_alone_is_flagged_by_either_fusion(models: Models) -> None:
    frames, _ = anomalies()["runner"]
    for fusion, model in models.items():
        hot = flagged(model, frames)
        assert float(hot[:ONSET].float().mean()) <= 0.05, fusion
        assert float(hot[SETTLED:].float().mean()) >= 0.8, fusion
    # Its events say movement: where it runs, or (a small frame) the overall motion it adds.
    runner = hot_labels(models["calibrated_max"], frames, SETTLED)
    assert "motion" in runner and runner <= {"motion", "activity"}
    assert hot_labels(models["weighted"], frames, SETTLED) == {None}  # no common scale


def test_a_crowd_that_disperses_is_flagged_as_it_flees_and_once_it_has_gone(
    models: Models,
) -> None:
    frames, _ = anomalies()["disperses"]
    walkers = (frames < 60).sum(axis=(1, 2))  # the walkers are dark, the ground is not
    assert walkers[ONSET - 1] > 0
    gone = ONSET + int(np.flatnonzero(walkers[ONSET:] == 0)[0])
    assert gone < FRAMES - 20, "every walker has left the view"
    calibrated = models["calibrated_max"]
    scores = scored(calibrated, frames)
    hot = torch.tensor([s.score for s in scores]) >= calibrated.threshold
    assert float(hot[:ONSET].float().mean()) <= 0.05
    fleeing = {s.label for s in scores[ONSET:gone] if s.score >= calibrated.threshold}
    assert "motion" in fleeing, "the flight itself"
    empty = gone + 3  # with the persistence window after the last walker left
    assert float(hot[empty:].float().mean()) >= 0.9, "and the walkway left empty"
    assert hot_labels(calibrated, frames, empty) <= {"scene", "activity"}
    # The weighted fusion sees the flight, then calls the empty walkway calm.
    weighted = flagged(models["weighted"], frames)
    assert bool(weighted[ONSET:gone].any())
    assert float(weighted[empty:].float().mean()) <= 0.05


def test_the_calibrated_threshold_holds_its_false_alarm_rate_on_held_out_normal_frames(
    models: Models,
) -> None:
    metrics = models["calibrated_max"].manifest.metrics
    # Every normal clip scored by banks that never saw it: two held out, two cross-fitted.
    assert metrics["n_holdout"] == 4 * FRAMES and metrics["cross_fit_folds"] == 2
    assert metrics["holdout_fpr"] <= 0.02
    assert metrics["expected_false_alarms_per_hour"] == pytest.approx(1.0)
    low, high = (metrics[f"expected_false_alarms_per_hour_{end}"] for end in ("low", "high"))
    assert low < 1.0 < high
    assert flagged(models["calibrated_max"], walkway(7)).float().mean() <= 0.05  # unseen clip
