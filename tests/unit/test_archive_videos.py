"""Videos in a dataset archive: each one a clip of JPEG frames timed by the video's own clock
(so a fit reads the footage's rate from it), and every bad video refused by name."""

from __future__ import annotations

import io
import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from bench.footage import write_video
from tests.factories import scene_jpeg, zip_bytes
from tests.unit.test_archives import LIMITS, problems_of
from vigil_api.domain.archive_videos import UNDATED
from vigil_api.domain.archives import read_archive

RECORDED = "2026-11-30T08:00:00.000000Z"


def walker(step: int) -> Image.Image:
    image = Image.new("RGB", (96, 64), (110, 110, 110))
    ImageDraw.Draw(image).rectangle((4 + 3 * step, 20, 12 + 3 * step, 44), fill=(40, 40, 40))
    return image


def video(tmp_path: Path, frames: int, *, fps: float = 5, **metadata: str) -> bytes:
    path = tmp_path / f"clip-{frames}-{fps}-{len(metadata)}.mp4"
    write_video(path, (walker(i) for i in range(frames)), fps=fps, metadata=metadata)
    return path.read_bytes()


def test_a_video_is_a_clip_of_frames_timed_by_its_own_clock(tmp_path: Path) -> None:
    entries = {
        "normal/hall/monday.mp4": video(tmp_path, 12, creation_time=RECORDED),
        "normal/lawn.mp4": video(tmp_path, 6, fps=10),  # no creation time recorded
        "normal/clip01_0001.jpg": scene_jpeg(1),
    }
    images = read_archive(io.BytesIO(zip_bytes(entries)), limits=LIMITS)
    by_group: dict[str, list[datetime]] = {}
    for image in images:
        if image.captured_at is not None:
            by_group.setdefault(image.group, []).append(image.captured_at)
    assert sorted(by_group) == ["hall/monday", "lawn"]
    start = datetime(2026, 11, 30, 8, tzinfo=UTC)
    assert by_group["hall/monday"] == [start + timedelta(seconds=i / 5) for i in range(12)]
    assert by_group["lawn"] == [UNDATED + timedelta(seconds=i / 10) for i in range(6)]
    frames = [i for i in images if i.group == "hall/monday"]
    assert [f.sequence for f in frames] == list(range(12))
    assert {(f.label, f.extension) for f in frames} == {("normal", ".jpg")}
    assert frames[3].name == "normal/hall/monday.mp4#3"
    with Image.open(io.BytesIO(frames[3].data)) as first:
        assert (first.format, first.size) == ("JPEG", (96, 64))
    image = next(i for i in images if i.name == "normal/clip01_0001.jpg")
    assert (image.group, image.captured_at) == ("clip01", None)


def test_a_recorders_rate_is_taken_down_to_the_cameras(tmp_path: Path) -> None:
    """30 fps kept at 10: every third frame, 0.1 s apart; 25 fps at 10: the first frame of each
    0.1 s, so the gaps alternate and their median is the camera's 0.1 s."""
    for fps, kept, sequences in ((30, 10, list(range(0, 30, 3))), (25, 10, None)):
        entries = {"normal/hall.mp4": video(tmp_path, fps, fps=fps)}
        images = read_archive(io.BytesIO(zip_bytes(entries)), limits=LIMITS, video_fps=10)
        assert len(images) == kept
        if sequences is not None:
            assert [i.sequence for i in images] == sequences
        times = [i.captured_at for i in images if i.captured_at is not None]
        gaps = sorted((b - a).total_seconds() for a, b in itertools.pairwise(times))
        assert gaps[len(gaps) // 2] == pytest.approx(0.1, abs=0.021)
        assert all(0.079 <= gap <= 0.121 for gap in gaps)


def test_the_same_video_gives_the_same_frames(tmp_path: Path) -> None:
    archive = zip_bytes({"normal/a.mp4": video(tmp_path, 5)})
    once, again = (read_archive(io.BytesIO(archive), limits=LIMITS) for _ in range(2))
    assert [(i.data, i.captured_at) for i in once] == [(i.data, i.captured_at) for i in again]


def test_bad_videos_are_each_named_in_one_error(tmp_path: Path) -> None:
    good = video(tmp_path, 8)
    found = problems_of(
        zip_bytes(
            {
                "normal/truncated.mp4": good[: len(good) // 3],
                "normal/noise.mkv": b"\x1a\x45\xdf\xa3" + bytes(range(256)) * 8,
                "normal/empty.mp4": b"",
                "normal/fine.mp4": good,
                "normal/notes.txt": b"not footage",
            }
        )
    )
    assert set(found) == {
        "normal/truncated.mp4",
        "normal/noise.mkv",
        "normal/empty.mp4",
        "normal/notes.txt",
    }
    assert found["normal/truncated.mp4"].startswith(("not a readable video", "a corrupt video"))
    assert found["normal/noise.mkv"].startswith(("not a readable video", "holds no"))
    assert found["normal/empty.mp4"] == "an empty (0-byte) file"
    assert found["normal/notes.txt"].startswith("neither an image (.jpg, .jpeg, .png) nor a video")


def test_a_video_past_the_archives_limits_is_refused(tmp_path: Path) -> None:
    long = video(tmp_path, 30)
    few = replace(LIMITS, max_entries=20)
    found = problems_of(zip_bytes({"normal/long.mp4": long}), few)
    assert found["normal/long.mp4"].startswith("more frames than the archive may still hold (20)")
    small = replace(LIMITS, max_pixels=96 * 64 - 1)
    found = problems_of(zip_bytes({"normal/long.mp4": long}), small)
    assert found["normal/long.mp4"] == "96x64 frames are larger than 6143 pixels"


def test_a_video_is_a_group_of_its_own(tmp_path: Path) -> None:
    clip = video(tmp_path, 4)
    found = problems_of(zip_bytes({"normal/hall.mp4": clip, "normal/hall/0001.jpg": scene_jpeg(1)}))
    assert found == {
        "normal/hall.mp4": "its group 'hall' also holds 1 other file(s): a video is a group of "
        "its own (rename it, or give it its own group in the manifest)"
    }
    manifest = b"file,label,group\na.mp4,normal,gate\nb.mp4,normal,gate\n"
    found = problems_of(zip_bytes({"manifest.csv": manifest, "a.mp4": clip, "b.mp4": clip}))
    assert list(found) == ["a.mp4"]
