"""Masks: privacy and ignore zones are black in every published frame, and do not wake the gate."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw
from pydantic import ValidationError

from tests.unit.ingest_fakes import TOPICS, FakeProducer, camera_settings, run_to_end, scripted
from vigil_ingest.camera import build_camera
from vigil_ingest.masks import MaskSet
from vigil_ingest.metrics import IngestMetrics
from vigil_ingest.motion import MotionGate
from vigil_ingest.shaping import FrameShaper

LEFT_HALF = ((0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0))


def white(size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    return Image.new(mode, size, "white")


def test_a_polygon_is_black_and_the_rest_untouched() -> None:
    pixels = np.asarray(MaskSet([LEFT_HALF]).apply(white((100, 40))))
    assert pixels[:, :49].max() == 0  # the left half, edge to edge
    assert pixels[:, 51:].min() == 255  # the right half as it was


@pytest.mark.parametrize("size", [(64, 48), (1280, 720)])
def test_coordinates_are_fractions_so_one_mask_fits_every_resolution(
    size: tuple[int, int],
) -> None:
    corner = ((0.75, 0.75), (1.0, 0.75), (1.0, 1.0), (0.75, 1.0))
    pixels = np.asarray(MaskSet([corner]).apply(white(size)).convert("L"))
    width, height = size
    assert pixels[-1, -1] == 0 and pixels[height * 3 // 4 + 2, width * 3 // 4 + 2] == 0
    assert pixels[0, 0] == 255 and pixels[height // 2, width // 2] == 255
    black = (pixels == 0).mean()
    assert black == pytest.approx(1 / 16, abs=0.02)


def test_pictures_of_any_mode_come_out_in_a_mode_jpeg_holds() -> None:
    masked = MaskSet([LEFT_HALF]).apply(white((20, 20), "RGBA"))
    assert masked.mode == "RGB" and masked.getpixel((2, 2)) == (0, 0, 0)
    gray = MaskSet([LEFT_HALF]).apply(white((20, 20), "L"))
    assert gray.mode == "L" and gray.getpixel((2, 2)) == 0


@pytest.mark.parametrize(
    "polygon",
    [((0.0, 0.0), (1.0, 1.0)), ((0.0, 0.0), (1.2, 0.0), (0.0, 1.0)), ((0, 0), (1, 0), (-0.1, 1))],
)
def test_a_polygon_that_is_not_one_is_refused(polygon: tuple[tuple[float, float], ...]) -> None:
    with pytest.raises(ValueError, match="at least 3 points"):
        MaskSet([polygon])
    with pytest.raises(ValidationError):
        camera_settings(masks=[polygon])


def test_movement_inside_a_mask_does_not_pass_the_motion_gate() -> None:
    shaper = FrameShaper(
        masks=MaskSet([LEFT_HALF]), max_size=(640, 480), gate=MotionGate(threshold=0.01)
    )
    still = Image.new("RGB", (64, 48), (90, 90, 90))
    moved = still.copy()
    ImageDraw.Draw(moved).rectangle((0, 0, 30, 47), fill=(255, 255, 255))  # left half only
    assert shaper.shape(still.copy()) is not None
    assert shaper.shape(moved) is None


def test_published_frames_carry_the_mask() -> None:
    producer = FakeProducer()
    settings = camera_settings(source="clip.mp4", masks=[LEFT_HALF], jpeg_quality=95)
    camera = build_camera(settings, producer=producer, metrics=IngestMetrics(), frames=scripted(3))
    run_to_end(camera)
    frames = [s.value for s in producer.sent if s.topic == TOPICS.frames]
    assert len(frames) == 3
    for payload in frames:
        pixels = np.asarray(Image.open(io.BytesIO(payload)).convert("L"), dtype=np.int16)
        assert pixels[:, :28].max() <= 8  # black, up to JPEG's ringing
        assert pixels[:, 36:].mean() > 80  # the unmasked half still shows the scene
