"""Labeled footage in the shared datasets' layout (bench/footage.py): what the event bench
reads from any site's recordings, checked on small recordings written here."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.footage import Footage, FootageError, opens_slot, write_video


def _frames(n: int, size: tuple[int, int], *, colour: bool) -> list[Image.Image]:
    """A bright square walking right over a textured background, one frame per step."""
    rng = np.random.default_rng(0)
    width, height = size
    ground = rng.integers(40, 90, size=(height, width, 3), dtype=np.uint8)
    if not colour:
        ground[..., 1] = ground[..., 2] = ground[..., 0]
    out = []
    for i in range(n):
        frame = ground.copy()
        x = 20 + 12 * i
        frame[100:160, x : x + 60] = (250, 60, 40) if colour else 220
        out.append(Image.fromarray(frame, "RGB"))
    return out


def _footage(root: Path, *, fps: float, size: tuple[int, int], colour: bool) -> Path:
    for clip in ("Train001", "Train002"):
        write_video(root / "train" / f"{clip}.mp4", _frames(30, size, colour=colour), fps=fps)
    write_video(root / "test" / "Test001.mp4", _frames(30, size, colour=colour), fps=fps)
    write_video(root / "test" / "Test002.mp4", _frames(20, size, colour=colour), fps=fps)
    labels = {"fps": fps, "clips": {"Test001": {"abnormal": [[5, 10]]}, "Test002": {}}}
    (root / "labels.json").write_text(json.dumps(labels))
    return root


def test_a_camera_keeps_the_frames_that_open_its_rates_slots() -> None:
    def kept(n: int, fps: float, rate: float) -> list[int]:
        return [i for i in range(n) if opens_slot(i, fps=fps, rate=rate)]

    assert kept(6, 10, 10) == [0, 1, 2, 3, 4, 5]
    assert kept(6, 10, 5) == [0, 2, 4]  # every second frame, as Ped2 at 5 fps always was
    assert kept(11, 25, 10) == [0, 3, 5, 8, 10]  # steps of 0.12 s and 0.08 s
    with pytest.raises(FootageError, match="at 30 fps"):
        opens_slot(1, fps=25, rate=30)


def test_colour_footage_at_25_fps_is_taken_as_a_10_fps_camera_at_ingests_size(
    tmp_path: Path,
) -> None:
    root = _footage(tmp_path / "hall", fps=25, size=(800, 600), colour=True)
    footage = Footage.open(root, cache=tmp_path / "cache")
    assert (footage.fps, footage.train, footage.test) == (
        25.0,
        ("Train001", "Train002"),
        (
            "Test001",
            "Test002",
        ),
    )
    assert not footage.grey and footage.slug == "hall"
    clip = footage.clip("test", "Test001", rate=10)
    # 30 frames at 25 fps: 12 open a 0.1 s slot, at their own capture times.
    assert len(clip.paths) == 12
    assert clip.times[:4] == pytest.approx([0.0, 0.12, 0.2, 0.32])
    # frames 5-10 (1-based) are abnormal: of the kept ones, frames 6 and 9 (indices 5 and 8).
    assert clip.abnormal.nonzero().flatten().tolist() == [2, 3]
    with Image.open(clip.paths[0]) as image:
        assert (image.size, image.mode) == ((640, 480), "RGB")  # ingest's default cap
        pixel = image.getpixel((image.width * 60 // 800, image.height * 130 // 600))
        assert isinstance(pixel, tuple)
        red, green, _ = pixel
        assert red > 200 > 100 > green  # the colour survived
    again = footage.clip("test", "Test001", rate=10)  # from the cache this time
    assert again.paths == clip.paths and again.times == clip.times
    normal = footage.clip("train", "Train002", limit=7)  # every frame, the first 7
    assert len(normal.paths) == 7 and not bool(normal.abnormal.any())
    assert not bool(footage.clip("test", "Test002").abnormal.any())  # no ranges: normal


def test_grey_footage_stays_one_channel(tmp_path: Path) -> None:
    root = _footage(tmp_path / "walkway", fps=10, size=(360, 240), colour=False)
    footage = Footage.open(root, cache=tmp_path / "cache")
    assert footage.grey
    frames = list(footage.frames("train", "Train001"))
    assert len(frames) == 30 and frames[0].image.mode == "L"
    assert frames[0].image.size == (360, 240)  # under the cap: untouched
    assert [f.index for f in footage.frames("train", "Train001", 5)][:3] == [0, 2, 4]


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (None, "no labels.json"),
        ("{", "not JSON"),
        ("[1, 2]", "not an object"),
        ({"fps": 0, "clips": {"Test001": {}}}, "'fps'"),
        ({"fps": 10, "clips": {}}, "'clips'"),
        ({"fps": 10, "clips": {"Test001": {"abnormal": [[0, 3]]}}}, "1-based"),
        ({"fps": 10, "clips": {"Test001": {"abnormal": [[5, 3]]}}}, "1-based"),
        ({"fps": 10, "clips": {"Test001": {"abnormal": "1-3"}}}, "'abnormal' ranges"),
        ({"fps": 10, "clips": {"Test009": {}}}, "no recording named 'Test009'"),
    ],
)
def test_a_folder_off_the_layout_is_refused_before_anything_is_decoded(
    tmp_path: Path, labels: object, message: str
) -> None:
    root = _footage(tmp_path / "site", fps=10, size=(64, 48), colour=False)
    if labels is None:
        (root / "labels.json").unlink()
    else:
        (root / "labels.json").write_text(labels if isinstance(labels, str) else json.dumps(labels))
    with pytest.raises(FootageError, match=message):
        Footage.open(root)


def test_footage_without_normal_recordings_is_refused(tmp_path: Path) -> None:
    root = _footage(tmp_path / "site", fps=10, size=(64, 48), colour=False)
    for path in (root / "train").iterdir():
        path.unlink()
    with pytest.raises(FootageError, match="no normal recordings"):
        Footage.open(root)


def test_recordings_may_be_folders_of_frames_in_their_numbers_order(tmp_path: Path) -> None:
    root = tmp_path / "frames-site"
    frames = _frames(12, (320, 240), colour=True)
    for clip, suffix in (("Train001", ".png"), ("Train002", ".png")):
        (root / "train" / clip).mkdir(parents=True)
        for i, image in enumerate(frames):
            image.save(root / "train" / clip / f"{i + 1}{suffix}")  # 1.png ... 12.png
    small, large = root / "test" / "Test001", root / "test" / "Test002"
    small.mkdir(parents=True)
    large.mkdir(parents=True)
    for i, image in enumerate(frames):
        image.save(small / f"{i + 1}.jpg", quality=95)
        image.resize((1280, 960)).save(large / f"{i + 1}.jpg", quality=95)
    labels = {"fps": 10, "clips": {"Test001": {"abnormal": [[3, 4]]}, "Test002": {}}}
    (root / "labels.json").write_text(json.dumps(labels))
    footage = Footage.open(root, cache=tmp_path / "cache")
    assert footage.train == ("Train001", "Train002") and not footage.grey
    order = [f.index for f in footage.frames("train", "Train001")]
    assert order == list(range(12))
    second = np.asarray(list(footage.frames("train", "Train001"))[1].image)
    # 2.png (its square at x 32-92), not 10.png (x 128-188) as a sort by name would give.
    assert second[130, 60].tolist() == [250, 60, 40] and second[130, 150].tolist() != [250, 60, 40]
    as_sent = footage.clip("test", "Test001")
    assert as_sent.paths == [small / f"{i + 1}.jpg" for i in range(12)]  # scored as they are
    assert as_sent.abnormal.nonzero().flatten().tolist() == [2, 3]
    capped = footage.clip("test", "Test002", rate=5)
    assert len(capped.paths) == 6 and capped.paths[0].parent != large  # decoded, capped
    with Image.open(capped.paths[0]) as image:
        assert image.size == (640, 480)


def test_the_rate_comes_from_the_videos_where_labels_json_leaves_it_out(tmp_path: Path) -> None:
    root = _footage(tmp_path / "site", fps=25, size=(64, 48), colour=False)
    (root / "labels.json").write_text(json.dumps({"clips": {"Test001": {}}}))
    assert Footage.open(root).fps == pytest.approx(25.0)
    folders = tmp_path / "folders"
    (folders / "train" / "Train001").mkdir(parents=True)
    _frames(1, (64, 48), colour=False)[0].save(folders / "train" / "Train001" / "1.png")
    (folders / "test").symlink_to(root / "test")
    (folders / "labels.json").write_text(json.dumps({"clips": {"Test001": {}}}))
    with pytest.raises(FootageError, match="'fps' must be the recordings' frame rate"):
        Footage.open(folders)  # frames state no rate


def test_a_recording_that_does_not_decode_is_named(tmp_path: Path) -> None:
    root = _footage(tmp_path / "site", fps=10, size=(64, 48), colour=False)
    video = root / "test" / "Test002.mp4"
    video.write_bytes(video.read_bytes()[:200])  # cut short: a corrupt file
    footage = Footage.open(root, cache=tmp_path / "cache")
    with pytest.raises(FootageError, match=r"Test002\.mp4: not a readable video"):
        footage.clip("test", "Test002")
    frames = root / "train" / "Train003"
    frames.mkdir()
    (frames / "1.png").write_bytes(b"not a png")
    with pytest.raises(FootageError, match=r"1\.png: not a readable image"):
        list(footage.frames("train", "Train003"))


def test_labeled_recordings_that_start_normal_declare_their_own_training_footage(
    tmp_path: Path,
) -> None:
    """A crowd set ships labeled recordings only: each one's first frames are declared normal
    training footage, fitted on as a recording of its own and not scored."""
    root = tmp_path / "crowds"
    frames = _frames(30, (64, 48), colour=False)
    write_video(root / "test" / "hall.mp4", frames, fps=10)
    write_video(root / "test" / "lawn.mp4", frames, fps=10)
    clips: dict[str, dict[str, list[list[int]]]] = {
        "hall": {"train": [[1, 12]], "abnormal": [[21, 30]]},
        "lawn": {"train": [[1, 5], [11, 15]], "abnormal": [[25, 26]]},
    }
    labels = {"fps": 10, "clips": clips}
    (root / "labels.json").write_text(json.dumps(labels))
    footage = Footage.open(root, cache=tmp_path / "cache")  # no train/ folder at all
    assert footage.train == ("hall@1-12", "lawn@1-5", "lawn@11-15")
    assert footage.test == ("hall", "lawn@16-end", "lawn@6-10")
    fitted = footage.clip("train", "hall@1-12")
    assert len(fitted.paths) == 12 and not bool(fitted.abnormal.any())
    assert [f.index for f in footage.frames("train", "lawn@11-15")] == [10, 11, 12, 13, 14]
    scored = footage.clip("test", "hall", rate=5)  # frames 13-30 at 5 fps, timed from 13
    assert len(scored.paths) == 9 and scored.times[:2] == pytest.approx([0.0, 0.2])
    assert scored.abnormal.nonzero().flatten().tolist() == [4, 5, 6, 7, 8]  # frames 21-30
    assert footage.clip("test", "lawn@16-end").abnormal.nonzero().flatten().tolist() == [9, 10]
    assert not bool(footage.clip("test", "lawn@6-10").abnormal.any())
    clips["hall"]["train"] = [[1, 22]]
    (root / "labels.json").write_text(json.dumps(labels))
    with pytest.raises(FootageError, match=r"\[1, 22\] takes abnormal frames \[21, 30\]"):
        Footage.open(root)
    clips["hall"]["train"] = [[1, 12], [10, 14]]
    (root / "labels.json").write_text(json.dumps(labels))
    with pytest.raises(FootageError, match=r"\[1, 12\] overlaps \[10, 14\]"):
        Footage.open(root)
    clips["hall"] = {"train": [[1, 30]]}  # all of it: nothing left to score
    (root / "labels.json").write_text(json.dumps(labels))
    with pytest.raises(FootageError, match="test clip 'hall' has no frames to take"):
        Footage.open(root, cache=tmp_path / "cache").clip("test", "hall")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--footage", "{root}/nowhere"], "--footage: .*no labels.json"),
        (["--footage", "{root}", "--fps", "30"], "--fps 30: the footage is shot at 10 fps"),
        (["--footage", "{root}", "--lifecycle", '{"open_k": 9}'], "--lifecycle: need 1 <= open_k"),
        (["--footage", "{root}", "--lifecycle", '{"opens": 1}'], "--lifecycle: .*opens"),
        (["--footage", "{root}", "--lifecycle", "[1"], "--lifecycle: "),
    ],
)
def test_the_bench_refuses_bad_arguments_before_any_work(
    tmp_path: Path, argv: list[str], message: str
) -> None:
    from bench.ped2_events import main

    root = _footage(tmp_path / "site", fps=10, size=(64, 48), colour=False)
    with pytest.raises(SystemExit, match=message):
        main([arg.replace("{root}", str(root)) for arg in argv])
