"""Image directories, sampling and source names: what ingest reads and how it names it."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from PIL import Image

from tests.unit.ingest_fakes import numbered_image
from vigil_ingest.images import iter_images
from vigil_ingest.sources import Sampler, SourceError, check_exists, kind_of
from vigil_shared.cameras.sources import SourceKind, redact


def image_dir(tmp_path: Path, count: int) -> Path:
    for index in range(count):
        numbered_image(index).save(tmp_path / f"{index:03d}.png")
    return tmp_path


def test_directory_images_come_in_name_order_one_per_frame(tmp_path: Path) -> None:
    directory = image_dir(tmp_path, 6)
    (directory / "notes.txt").write_text("not an image")
    frames = list(iter_images(directory, fps=5))
    assert [f.offset_s for f in frames] == pytest.approx([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    assert [f.image.tobytes() for f in frames] == [
        Image.open(directory / f"{i:03d}.png").convert("RGB").tobytes() for i in range(6)
    ]


def test_directory_shot_faster_is_sampled_to_the_target_fps(tmp_path: Path) -> None:
    frames = list(iter_images(image_dir(tmp_path, 10), fps=5, image_fps=10))
    assert [round(f.offset_s, 3) for f in frames] == [0, 0.2, 0.4, 0.6, 0.8]


def test_unreadable_image_is_skipped_and_the_rest_published(tmp_path: Path) -> None:
    directory = image_dir(tmp_path, 3)
    (directory / "001.png").write_bytes(b"not a png")
    assert len(list(iter_images(directory, fps=10))) == 2


def test_looping_directory_keeps_offsets_increasing(tmp_path: Path) -> None:
    frames = list(itertools.islice(iter_images(image_dir(tmp_path, 3), fps=10, loop=True), 7))
    offsets = [f.offset_s for f in frames]
    assert all(a < b for a, b in itertools.pairwise(offsets)) and offsets[-1] > 0.5


def test_empty_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="holds no images"):
        next(iter_images(tmp_path, fps=5))


@pytest.mark.dataset
def test_ped2_frame_directory_publishes_every_frame(ped2: Path) -> None:
    frames = list(iter_images(ped2 / "test_frames" / "Test002", fps=10, image_fps=10))
    assert len(frames) == 180
    assert frames[0].image.size == (360, 240)


def test_sampler_keeps_the_average_rate_of_an_uneven_source() -> None:
    sampler = Sampler(7)
    kept = [i for i in range(300) if sampler.keep(i / 30)]  # 10 s at 30 fps
    assert 69 <= len(kept) <= 71


def test_sampler_restarts_its_grid_after_a_gap() -> None:
    sampler = Sampler(5)
    assert [sampler.keep(t) for t in (0.0, 0.1, 5.0, 5.1, 5.2)] == [True, False, True, False, True]


def test_kinds_and_missing_paths(tmp_path: Path) -> None:
    assert kind_of("rtsp://cam/1") is SourceKind.STREAM
    assert kind_of(str(tmp_path)) is SourceKind.DIRECTORY
    assert kind_of(str(tmp_path / "a.mp4")) is SourceKind.FILE
    with pytest.raises(SourceError, match=r"video file .* does not exist"):
        check_exists(str(tmp_path / "a.mp4"))
    check_exists("rtsp://cam/1")  # a stream may come up later: never refused up front


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("rtsp://admin:s3cret@10.0.0.7:554/s1", "rtsp://admin:***@10.0.0.7:554/s1"),
        ("rtsp://admin@10.0.0.7/s1", "rtsp://admin@10.0.0.7/s1"),
        ("http://10.0.0.7/snap.jpg?x=1", "http://10.0.0.7/snap.jpg?x=1"),
        ("/videos/a.mp4", "/videos/a.mp4"),
    ],
)
def test_passwords_are_redacted_from_source_names(url: str, shown: str) -> None:
    assert redact(url) == shown
