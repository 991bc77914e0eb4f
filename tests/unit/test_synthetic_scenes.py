"""The synthetic failure-kind scenes do what their labels say, on made-up walkway clips."""

from __future__ import annotations

import numpy as np
import pytest

from bench.synthetic_scenes import (
    COVER,
    FADE,
    KINDS,
    Frames,
    Scene,
    background,
    build_scenes,
    walker,
)

N_FRAMES = 130
WALKWAY = slice(120, 200)


def walkway_clip(seed: int, walkers: int = 4) -> Frames:
    """A textured background with dark 12 x 30 walkers crossing the walkway at 2 px a frame."""
    rng = np.random.default_rng(seed)
    ground = np.linspace(90, 160, 360)[None, :] + rng.normal(0, 4, (240, 360))
    clip = np.repeat(np.clip(ground, 0, 255).astype(np.uint8)[None], N_FRAMES, axis=0)
    for _ in range(walkers):
        row, start = int(rng.integers(125, 165)), int(rng.integers(0, 100))
        for t in range(N_FRAMES):
            x = start + 2 * t
            clip[t, row : row + 30, x : x + 12] = 30
    return clip


@pytest.fixture(scope="module")
def train() -> dict[str, Frames]:
    return {f"Train{i:03d}": walkway_clip(i) for i in range(1, 5)}


@pytest.fixture(scope="module")
def scenes(train: dict[str, Frames]) -> dict[str, Scene]:
    return {s.name: s for s in build_scenes(train, seed=7)}


def source(scene: Scene, train: dict[str, Frames]) -> Frames:
    return train[scene.source.split("+")[0]][: len(scene.frames)]


def test_one_scene_per_kind_labeled_from_its_onset(scenes: dict[str, Scene]) -> None:
    assert list(scenes) == list(KINDS)
    for scene in scenes.values():
        assert scene.frames.shape[1:] == (240, 360) and scene.frames.dtype == np.uint8
        assert len(scene.abnormal) == len(scene.frames)
        if scene.name == "busy":  # normal throughout: no onset
            assert scene.onset == 0 and not scene.abnormal.any()
            continue
        assert 50 <= scene.onset <= 70
        assert not scene.abnormal[: scene.onset].any() and scene.abnormal[scene.onset]


def test_the_same_seed_builds_the_same_scenes(train: dict[str, Frames]) -> None:
    again, other = build_scenes(train, seed=7), build_scenes(train, seed=8)
    first = build_scenes(train, seed=7)
    assert all(np.array_equal(a.frames, b.frames) for a, b in zip(first, again, strict=True))
    assert [s.onset for s in first] != [s.onset for s in other]


def test_normal_frames_are_the_training_frames_untouched(
    scenes: dict[str, Scene], train: dict[str, Frames]
) -> None:
    for scene in scenes.values():
        original = source(scene, train)
        assert np.array_equal(scene.frames[: scene.onset], original[: scene.onset])


def dark_pixels(frames: Frames) -> float:
    return float((frames[:, WALKWAY] < 60).mean())


def test_the_walkway_empties_and_fills(scenes: dict[str, Scene], train: dict[str, Frames]) -> None:
    empties = scenes["empties"]
    after = empties.frames[empties.onset + FADE :]
    original = source(empties, train)
    assert dark_pixels(after) < 0.05 * dark_pixels(original)
    empty = background(original).astype(int)
    assert np.abs(after.astype(int) - empty).mean() < 2
    fills = scenes["fills"]
    crowd = fills.frames[fills.onset + FADE :]
    assert dark_pixels(crowd) > 1.8 * dark_pixels(source(fills, train)[fills.onset + FADE :])


def test_the_camera_moves_and_stays_moved(
    scenes: dict[str, Scene], train: dict[str, Frames]
) -> None:
    moved = scenes["moved"]
    original = source(moved, train)
    changed = np.abs(moved.frames.astype(int) - original).mean(axis=(1, 2))
    assert (changed[moved.onset :] > 3).all()
    assert moved.abnormal[moved.onset :].all()


def test_a_covered_lens_darkens_or_blurs_for_a_while(
    scenes: dict[str, Scene], train: dict[str, Frames]
) -> None:
    dark = scenes["covered-dark"]
    inside = dark.frames[dark.onset + 3 : dark.onset + COVER]
    assert inside.mean() < 0.1 * source(dark, train).mean()
    assert dark.abnormal.sum() == COVER + 2
    back = dark.onset + COVER + 2
    assert np.array_equal(dark.frames[back:], source(dark, train)[back:])
    assert not dark.abnormal[back:].any()
    blur = scenes["covered-blur"]
    blurred = blur.frames[blur.abnormal].astype(float)
    sharp = source(blur, train)[blur.abnormal].astype(float)
    assert np.abs(np.diff(blurred, axis=2)).mean() < 0.3 * np.abs(np.diff(sharp, axis=2)).mean()


@pytest.mark.parametrize(
    ("kind", "rows", "speeds"),
    [
        ("far-motion", (62, 100), (5, 11)),  # small and fast on the far lawn
        ("speeding", (105, 136 + 45), (2.5, 5.5)),  # near-walker size, on the walkway
        ("running", (105 - 45, 136 + 45), (2.5, 5.5)),  # a filmed walker, its pace taken out
        ("jogging", (105 - 45, 136 + 45), (1.5, 3.1)),  # the same, under twice a walker's pace
        ("cart", (105 - 45, 136 + 45), (0.7, 1.9)),  # a walker pushing a box, at their pace
    ],
)
def test_a_figure_crosses_the_view_while_labeled(
    scenes: dict[str, Scene],
    train: dict[str, Frames],
    kind: str,
    rows: tuple[int, int],
    speeds: tuple[float, float],
) -> None:
    scene = scenes[kind]
    diff = scene.frames.astype(int) != source(scene, train)
    touched_rows = np.flatnonzero(diff.any(axis=(0, 2)))
    assert touched_rows.min() >= rows[0] and touched_rows.max() < rows[1]
    touched = diff.any(axis=(1, 2))
    assert np.array_equal(touched, scene.abnormal) and 20 <= scene.abnormal.sum() <= 80
    columns = [np.flatnonzero(d.any(axis=0)) for d in diff[scene.abnormal]]
    rightward = columns[-1].mean() > columns[0].mean()
    leading = [c.max() if rightward else c.min() for c in columns[1:-1]]  # moves while it enters
    assert speeds[0] <= float(np.median(np.abs(np.diff(leading)))) <= speeds[1]
    at_edge = columns[0].min() == 0 if rightward else columns[0].max() == diff.shape[2] - 1
    assert at_edge and columns[0].size <= speeds[1] + 1, (
        "the figure walks in from beyond the edge: its first frame shows its leading few pixels"
    )


def test_a_runner_is_a_walker_followed_frame_by_frame(train: dict[str, Frames]) -> None:
    crops = walker(train["Train001"], 40)
    assert len(crops) >= 20  # the made-up walkers cross no one for a while
    assert crops[0][0].shape[0] == 40 and all(c.shape == m.shape for c, m in crops)


def test_a_cart_is_a_walker_with_a_box_ahead(
    scenes: dict[str, Scene], train: dict[str, Frames]
) -> None:
    scene = scenes["cart"]
    diff = scene.frames.astype(int) != source(scene, train)
    changed = diff[scene.abnormal].any(axis=1).sum(axis=1)  # columns touched per frame
    walker_width = 12  # the made-up walkers' width, as ``walker`` crops them (scale 1 to 1.5)
    assert changed.max() > 2.5 * walker_width, "wider than a walker: the box is in front"


def test_a_busy_walkway_has_more_walkers_and_no_anomaly(
    scenes: dict[str, Scene], train: dict[str, Frames]
) -> None:
    busy = scenes["busy"]
    base, _, walkers = busy.source.partition("+walkers:")
    assert walkers in train and walkers != base and not busy.abnormal.any()
    original = train[base][: len(busy.frames)]
    assert dark_pixels(busy.frames) > 1.5 * dark_pixels(original)
    changed = busy.frames != original
    assert 0.0 < float(changed.mean()) < 0.2, "only the pasted walkers change the clip"


def test_a_crowd_disperses_and_the_walkway_stays_empty(
    scenes: dict[str, Scene], train: dict[str, Frames]
) -> None:
    scene = scenes["disperses"]
    original = source(scene, train)
    assert scene.abnormal[scene.onset :].all(), "abnormal from the flight to the end"
    left = scene.frames[scene.onset + 40 :]
    assert dark_pixels(left) < 0.05 * dark_pixels(original[scene.onset + 40 :]), "all fled"
    empty = background(original).astype(int)
    assert np.abs(left.astype(int) - empty).mean() < 2
    # The made-up walkers (2 px a frame) run off from where they were at 3 px a frame or more.
    rows, cols = np.nonzero(scene.frames[scene.onset - 1] < 60)
    centre = np.array([rows.mean(), cols.mean()])

    def off(frame: Frames) -> float:
        rows, cols = np.nonzero(frame < 60)
        return float(np.hypot(rows - centre[0], cols - centre[1]).mean())

    start = off(scene.frames[scene.onset - 1])
    for later in (4, 8):
        away = off(scene.frames[scene.onset + later]) - start
        assert away > 2 * later, f"{later} frames on, the walkers are {away:.0f} px further off"
