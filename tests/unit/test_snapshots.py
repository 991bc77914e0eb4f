"""Snapshot overlays: the heatmap shows where the score is high, and nothing else changes."""

from __future__ import annotations

from datetime import UTC, datetime

import torch

from tests.factories import scene_jpeg
from vigil_inference.snapshots import colorize, overlay, render_overlay
from vigil_shared.event_lifecycle import Observation
from vigil_shared.schemas.events import ModelRef
from vigil_shared.vision.preprocess import decode


def test_without_a_heatmap_the_frame_is_unchanged() -> None:
    image = torch.full((3, 8, 8), 100, dtype=torch.uint8)
    assert torch.equal(overlay(image, None, threshold=1.0), image)


def test_only_areas_near_or_above_the_threshold_are_tinted_red() -> None:
    image = torch.full((3, 40, 40), 128, dtype=torch.uint8)
    heatmap = torch.zeros(4, 4)
    heatmap[0, 0] = 3.0  # three times the threshold, top-left cell
    out = overlay(image, heatmap, threshold=1.0)
    assert out.dtype == torch.uint8 and out.shape == image.shape
    assert torch.equal(out[:, 30:, 30:], image[:, 30:, 30:]), "a calm area must stay as it was"
    red, green, blue = out[:, 2, 2].tolist()
    assert red > 128 and green < 128 and blue < 128


def test_the_ramp_runs_from_blue_to_red() -> None:
    ends = colorize(torch.tensor([[0.0, 1.0]]))
    assert ends[:, 0, 0].tolist() == [0.0, 0.0, 255.0]
    assert ends[:, 0, 1].tolist() == [255.0, 0.0, 0.0]


def test_render_overlay_gives_a_jpeg_of_the_frame_size() -> None:
    frame = Observation(
        camera_id="c",
        seq=0,
        captured_at=datetime.now(UTC),
        offset=0,
        score=2.0,
        threshold=1.0,
        model=ModelRef(id="m", kind="registry"),
        jpeg=scene_jpeg(3),
        heatmap=torch.rand(6, 9) * 2,
    )
    assert tuple(decode(render_overlay(frame)).shape) == (3, 120, 180)
