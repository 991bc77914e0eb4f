"""SYNTHETIC scenes built from UCSD Ped2 training frames, one per failure kind of issue 11.

Ped2's test anomalies are all "something unusual moves through the scene" (bikes, carts,
skaters). Real sites also see the scene itself change, which Ped2 never shows; these clips make
those kinds from Ped2's own *training* clips (normal footage only, so nothing here comes from
the test clips), each with per-frame labels, deterministic by seed:

- ``empties``: the walkers fade into the clip's median background within 1 s and the walkway
  stays empty (abnormal from the onset, 50-70 frames in, to the end);
- ``fills``: the walkers of 3 other training clips fade in over 1 s, a crowd in which each
  walks at a walker's speed (onset to end);
- ``moved``: the camera is knocked, zoom 1.15-1.25 and a shift of 15-25 by 8-15 px, and stays
  so (onset to end);
- ``covered-dark``: the lens is covered, brightness falls to 8 % within 0.3 s, for 5 s, then
  comes back (the 5 s and the ramps);
- ``covered-blur``: something smears the lens, Gaussian blur (sigma 6) for 5 s (the 5 s);
- ``far-motion``: a small figure (a walker crop scaled to 10-14 px) crosses the lawn at the top
  of the view at 6-10 px a frame, several times a walker's speed there (while it is in view);
- ``busy`` (NORMAL throughout, no anomaly): the walkers of one other training clip are pasted in
  from the first frame, a busier walkway than usual where everyone walks. It counts false
  alarms and the ranking's negatives: a knob that raises crowded normal frames' scores pays here
  (the persistence radius did on Ped2's crowded Test003, docs/one-class.md);
- ``speeding``: a walker crop scaled to a near walker's height (30-45 px) glides along the
  walkway among the walkers at 3-5 px a frame, 3-4 times their pace (about 1.2 px a frame):
  rigid and fast, as a cyclist or a skater is (while it is in view). Ped2's own anomalies are
  of this kind, so the knobs of the motion stream are judged on it too;
- ``running``: the same, but the figure is a real walker followed frame by frame in another
  clip (its limbs, outline and compression noise change as filmed, its own pace taken out) and
  moved along the pavement at 3-5 px a frame: a runner among walkers, whose flow is as noisy
  as a real one's, where ``speeding``'s rigid sprite is clean;
- ``jogging``: the same at 2-2.6 px a frame, under twice a walker's pace: a slow anomaly (a
  jogger, a cart pushed briskly) that persistence must not wait out;
- ``cart``: a filmed walker (as ``running``) pushing a box ahead of them (1.1-1.4 times their
  height long, half to two thirds of it tall, dark with a light rim) at a walker's pace, 1-1.6 px
  a frame: its motion is a walker's, only its look is unusual, as Ped2's carts and wheelchairs
  are, so it is the appearance stream's kind (while it is in view);
- ``disperses``: the crowd suddenly flees, the incident issue 11 was filed on. At the onset
  every walker in view (a foreground component at least 8 px tall; walkers that overlap, as one)
  runs off at 3-4 times a walker's pace, away from the crowd's centre with a random turn of up
  to 30 degrees, so some run toward or away from the camera (down or up the view), growing or
  shrinking with Ped2's perspective (``HEIGHT_PER_ROW``), where their image flow is small;
  nobody walks in after, and the walkway stays empty (onset to end: a scene that empties
  *with* motion, then without).

Every figure (``far-motion``, ``speeding``, ``running``, ``jogging``, ``cart``) walks into the
view from beyond its edge, as Ped2's cyclists and carts do: its first abnormal frame shows its
leading few pixels, so no figure pops into view for the flow to flag (scenes built before 7 Dec
morning pasted each figure whole at the edge, the cart faded in).

The onset and the training clip behind each scene are drawn from the seed. Foregrounds (the
walkers) are the pixels more than 20 grey levels from the clip's per-pixel median, cleaned by a
morphological opening and dilated, which leaves faint ghosts at the walkers' edges when they
fade: the scenes test *which kind* of change a model flags, not image realism. Nothing here is
real footage of such an event.

    python -m bench.synthetic_scenes --out .cache/ped2-synthetic   # JPEGs + labels.json
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image

from bench.ped2_data import decode_clip, ped2_root

Frames = npt.NDArray[np.uint8]  # (N, H, W) grayscale
Mask = npt.NDArray[np.bool_]
KINDS = (
    "empties",
    "fills",
    "moved",
    "covered-dark",
    "covered-blur",
    "far-motion",
    "busy",
    "speeding",
    "running",
    "jogging",
    "cart",
    "disperses",
)
FADE = 10  # frames: one second at Ped2's 10 fps
COVER = 50  # frames a lens stays covered
FOREGROUND_LEVELS = 20
# Ped2's perspective: feet on row r stand a figure about HEIGHT_PER_ROW * (r - HORIZON) px tall
# (a walker 12 px tall on the far lawn, row 75; 40 px on the near pavement, row 150).
HORIZON = 43
HEIGHT_PER_ROW = 0.37
FLEE = (3.0, 5.0)  # px a frame for a figure 30 px tall: 3 to 4 times a walker's pace


@dataclass(frozen=True)
class Scene:
    name: str
    source: str
    """The training clip(s) it is made of."""
    onset: int
    frames: Frames
    abnormal: Mask


def background(clip: Frames) -> Frames:
    """The clip's per-pixel median: the walkway with no walkers (each pixel is mostly empty)."""
    median: Frames = np.median(clip, axis=0).astype(np.uint8)
    return median


def foreground(clip: Frames, empty: Frames) -> Mask:
    """Per frame, the walkers: far from the background, opened (no specks), then dilated."""
    far = (np.abs(clip.astype(np.int16) - empty.astype(np.int16)) > FOREGROUND_LEVELS).astype(
        np.uint8
    )
    small, grow = np.ones((3, 3), np.uint8), np.ones((9, 9), np.uint8)
    return np.stack([cv2.dilate(cv2.morphologyEx(f, cv2.MORPH_OPEN, small), grow) > 0 for f in far])


def ramp(n: int, start: int, length: int) -> npt.NDArray[np.float64]:
    """0 before ``start``, rising linearly to 1 over ``length`` frames, 1 after."""
    return np.clip((np.arange(n) - start + 1) / length, 0.0, 1.0)


def blend(a: Frames, b: Frames, weight: npt.NDArray[np.float64]) -> Frames:
    """Per frame, ``a`` to ``b`` by ``weight`` (0: a, 1: b)."""
    w = weight[:, None, None]
    return np.rint(a * (1.0 - w) + b * w).astype(np.uint8)


def from_onset(n: int, onset: int, end: int | None = None) -> Mask:
    labels = np.zeros(n, dtype=bool)
    labels[onset : n if end is None else end] = True
    return labels


def empties(clip: Frames, onset: int) -> tuple[Frames, Mask]:
    empty = background(clip)
    cleaned = np.where(foreground(clip, empty), empty[None], clip)
    return blend(clip, cleaned, ramp(len(clip), onset, FADE)), from_onset(len(clip), onset)


def fills(clip: Frames, others: list[Frames], onset: int) -> tuple[Frames, Mask]:
    n = min(len(clip), *(len(o) for o in others))
    out = clip[:n]
    weight = ramp(n, onset, FADE)
    for other in others:
        walkers = foreground(other[:n], background(other))
        pasted = np.where(walkers, other[:n], out)
        out = blend(out, pasted, weight)
    return out, from_onset(n, onset)


def busy(clip: Frames, other: Frames) -> tuple[Frames, Mask]:
    """``other``'s walkers in ``clip`` from its first frame on: more walkers, nothing unusual."""
    n = min(len(clip), len(other))
    walkers = foreground(other[:n], background(other))
    return np.where(walkers, other[:n], clip[:n]), np.zeros(n, dtype=bool)


def moved(clip: Frames, onset: int, rng: np.random.Generator) -> tuple[Frames, Mask]:
    height, width = clip.shape[1:]
    zoom = rng.uniform(1.15, 1.25)
    shift = rng.uniform(15, 25) * rng.choice([-1, 1]), rng.uniform(8, 15) * rng.choice([-1, 1])
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), 0.0, zoom)
    matrix[:, 2] += shift
    out = clip.copy()
    for i in range(onset, len(clip)):
        out[i] = cv2.warpAffine(clip[i], matrix, (width, height), borderMode=cv2.BORDER_REFLECT)
    return out, from_onset(len(clip), onset)


def covered_dark(clip: Frames, onset: int) -> tuple[Frames, Mask]:
    n, fade = len(clip), 3
    covered = ramp(n, onset, fade) - ramp(n, onset + COVER, fade)
    dark = np.rint(clip * 0.08).astype(np.uint8)
    return blend(clip, dark, covered), from_onset(n, onset, onset + COVER + fade - 1)


def covered_blur(clip: Frames, onset: int) -> tuple[Frames, Mask]:
    out = clip.copy()
    for i in range(onset, min(onset + COVER, len(clip))):
        out[i] = cv2.GaussianBlur(clip[i], (0, 0), 6.0)
    return out, from_onset(len(clip), onset, onset + COVER)


def sprite(clip: Frames, height: int) -> tuple[Frames, Mask]:
    """The tallest walker of the clip's middle frame, scaled to ``height`` px: pixels, mask."""
    middle = len(clip) // 2
    mask = foreground(clip[middle : middle + 1], background(clip))[0].astype(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask)
    if count < 2:
        raise ValueError("no walker in the clip's middle frame to make a sprite of")
    x, y, w, h, _ = stats[1 + int(np.argmax(stats[1:, cv2.CC_STAT_HEIGHT]))]
    scale = height / h
    size = (max(2, round(w * scale)), height)
    crop = clip[middle, y : y + h, x : x + w]
    pixels = np.asarray(cv2.resize(crop, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)
    outline = cv2.resize(mask[y : y + h, x : x + w], size, interpolation=cv2.INTER_NEAREST)
    shape = np.asarray(outline, dtype=bool)
    return pixels, shape


def far_motion(
    clip: Frames, figure: tuple[Frames, Mask], onset: int, rng: np.random.Generator
) -> tuple[Frames, Mask]:
    h = figure[0].shape[0]
    row = int(rng.integers(62, 100 - h))  # the lawn, the far part of the view
    speed = float(rng.uniform(6, 10)) * rng.choice([-1, 1])
    return crossing(clip, [figure], onset, row, speed)


def speeding(
    clip: Frames, figure: tuple[Frames, Mask], onset: int, rng: np.random.Generator
) -> tuple[Frames, Mask]:
    row = int(rng.integers(105, 136))  # on the pavement, where the walkers are
    speed = float(rng.uniform(3, 5)) * rng.choice([-1, 1])
    return crossing(clip, [figure], onset, row, speed)


def running(
    clip: Frames,
    walker: Sequence[tuple[Frames, Mask]],
    onset: int,
    rng: np.random.Generator,
    pace: tuple[float, float] = (3, 5),
) -> tuple[Frames, Mask]:
    """``walker`` moved along the pavement at ``pace`` px a frame (walkers: about 1.2)."""
    row = int(rng.integers(105, 136))  # on the pavement, where the walkers are
    speed = float(rng.uniform(*pace)) * rng.choice([-1, 1])
    return crossing(clip, walker, onset, row, speed)


def walker(clip: Frames, height: int, length: int = 60) -> list[tuple[Frames, Mask]]:
    """A real walker of the clip, frame by frame from its middle frame on, so its limbs, its
    outline and the compression noise on it change as filmed. Each foreground component of the
    middle frame at least 20 px tall is followed (in each next frame, the component nearest its
    last centre, lost when that is over 6 px away or half its height off, e.g. it met another
    walker); the one followed longest (at most ``length`` frames) is kept, each crop scaled by
    the factor that brings the first to ``height`` px."""
    empty = background(clip)
    start = len(clip) // 2
    frames = range(start, min(len(clip), start + length))
    masks = foreground(clip[frames.start : frames.stop], empty).astype(np.uint8)
    components = [cv2.connectedComponentsWithStats(mask)[1:] for mask in masks]
    _, stats, centres = components[0]
    best: list[int] = []
    for first in range(1, len(stats)):
        if stats[first, cv2.CC_STAT_HEIGHT] < 20:
            continue
        track, centre, tall = [first], centres[first], stats[first, cv2.CC_STAT_HEIGHT]
        for _, later_stats, later_centres in components[1:]:
            if len(later_stats) < 2:
                break
            distances = np.linalg.norm(later_centres[1:] - centre, axis=1)
            pick = 1 + int(np.argmin(distances))
            if (
                distances[pick - 1] > 6
                or abs(later_stats[pick, cv2.CC_STAT_HEIGHT] - tall) > tall / 2
            ):
                break
            track.append(pick)
            centre = later_centres[pick]
        if len(track) > len(best):
            best = track
    if not best:
        raise ValueError("no walker in the clip's middle frame to follow")
    scale = height / stats[best[0], cv2.CC_STAT_HEIGHT]
    crops: list[tuple[Frames, Mask]] = []
    for offset, pick in enumerate(best):
        x, y, w, h, _ = components[offset][1][pick]
        size = (max(2, round(w * scale)), max(2, round(h * scale)))
        index = frames.start + offset
        crop = cv2.resize(clip[index, y : y + h, x : x + w], size, interpolation=cv2.INTER_AREA)
        outline = cv2.resize(
            masks[offset, y : y + h, x : x + w], size, interpolation=cv2.INTER_NEAREST
        )
        crops.append((np.asarray(crop, dtype=np.uint8), np.asarray(outline, dtype=bool)))
    return crops


def pushing(
    crops: Sequence[tuple[Frames, Mask]], rightward: bool, rng: np.random.Generator
) -> list[tuple[Frames, Mask]]:
    """``crops`` (a walker's) each with the same box on the side it walks to, feet and box
    bottom on one line: a cart pushed, as one figure for ``crossing``."""
    first = crops[0][0].shape[0]
    box_h, box_w = round(first * rng.uniform(0.5, 0.67)), round(first * rng.uniform(1.1, 1.4))
    level = int(rng.integers(30, 71))
    box = np.clip(rng.normal(level, 6, (box_h, box_w)), 0, 255).astype(np.uint8)
    box[:2], box[-2:], box[:, :2], box[:, -2:] = (min(255, level + 110),) * 4
    out = []
    for pixels, shape in crops:
        h, w = pixels.shape
        height = max(h, box_h)
        canvas = np.zeros((height, w + box_w), dtype=np.uint8)
        outline = np.zeros_like(canvas, dtype=bool)
        person, cart = (slice(0, w), slice(w, w + box_w))
        if not rightward:
            person, cart = slice(box_w, box_w + w), slice(0, box_w)
        canvas[height - h :, person], outline[height - h :, person] = pixels, shape
        canvas[height - box_h :, cart], outline[height - box_h :, cart] = box, True
        out.append((canvas, outline))
    return out


def cart(
    clip: Frames,
    crops: Sequence[tuple[Frames, Mask]],
    onset: int,
    rng: np.random.Generator,
) -> tuple[Frames, Mask]:
    """A walker's ``crops`` pushing a cart along the pavement at a walker's pace."""
    row = int(rng.integers(105, 136))  # on the pavement, where the walkers are
    speed = float(rng.uniform(1, 1.6)) * rng.choice([-1, 1])
    return crossing(clip, pushing(crops, speed > 0, rng), onset, row, speed)


def crossing(
    clip: Frames,
    figures: Sequence[tuple[Frames, Mask]],
    onset: int,
    row: int,
    speed: float,
) -> tuple[Frames, Mask]:
    """``figures`` (one, or a walker's successive crops, repeated) walk into the view from beyond
    its edge at ``onset`` and across it, their feet on the line below ``row`` + the first's
    height, ``speed`` px a frame (leftward when negative). The frames that show any of a figure
    are abnormal: the first shows its leading ``speed`` px, so nothing pops into view for the
    flow to see, as a cyclist riding into a real camera's view does not."""
    width = clip.shape[2]
    first_h = figures[0][0].shape[0]
    out, labels = clip.copy(), np.zeros(len(clip), dtype=bool)
    for i in range(onset, len(clip)):
        pixels, shape = figures[(i - onset) % len(figures)]
        h, w = pixels.shape
        step = (i - onset + 1) * speed
        left = round(step) - w if speed > 0 else round(width + step)  # its leading edge
        if left >= width or left + w <= 0:
            break  # out of the far side
        top = max(0, row + first_h - h)
        cols = slice(max(0, left), min(width, left + w))
        part = slice(cols.start - left, cols.stop - left)
        rows = slice(top, min(clip.shape[1], top + h))
        region = out[i, rows, cols]
        fits = slice(0, rows.stop - rows.start)
        seen = shape[fits, part]
        out[i, rows, cols] = np.where(seen, pixels[fits, part], region)
        labels[i] = bool(seen.any())
    return out, labels


def disperses(
    clip: Frames, onset: int, rng: np.random.Generator, *, horizon: float | None = HORIZON
) -> tuple[Frames, Mask]:
    """Every walker in view at ``onset`` flees from the crowd's centre (module docstring), in
    Ped2's perspective; ``horizon`` None: a flat view, where every figure keeps its size and
    runs at ``FLEE`` px a frame."""
    empty = background(clip)
    walkers = foreground(clip, empty)
    out = clip.copy()
    out[onset:] = np.where(walkers[onset:], empty[None], clip[onset:])
    count, _, stats, centres = cv2.connectedComponentsWithStats(walkers[onset].astype(np.uint8))
    people = [i for i in range(1, count) if stats[i, cv2.CC_STAT_HEIGHT] >= 8]
    if not people:
        raise ValueError("no walker in view at the onset: no crowd to disperse")
    feet_rows = [stats[i, cv2.CC_STAT_TOP] + stats[i, cv2.CC_STAT_HEIGHT] for i in people]
    crowd = np.array([np.mean([centres[i][0] for i in people]), np.mean(feet_rows)])
    for person, feet in zip(people, feet_rows, strict=True):
        x, y, w, h, _ = stats[person]
        pixels = clip[onset, y : y + h, x : x + w]
        shape = walkers[onset, y : y + h, x : x + w]
        where = np.array([centres[person][0], float(feet)])
        away = where - crowd
        angle = (
            float(np.arctan2(away[1], away[0]))
            if np.hypot(*away) > 1
            else rng.uniform(-np.pi, np.pi)
        )
        angle += float(rng.uniform(-np.pi / 6, np.pi / 6))
        pace = float(rng.uniform(*FLEE))
        for i in range(onset, len(clip)):
            tall = h * _stature(where[1], horizon) / _stature(float(feet), horizon)
            speed = pace * (tall / 30 if horizon is not None else 1.0)
            where = where + speed * np.array([np.cos(angle), np.sin(angle)])
            tall = h * _stature(where[1], horizon) / _stature(float(feet), horizon)
            if not _paste(out[i], pixels, shape, where, tall):
                break  # out of the view, or too far to see
    return out, from_onset(len(clip), onset)


def _stature(feet: float, horizon: float | None) -> float:
    return 1.0 if horizon is None else max(1.0, HEIGHT_PER_ROW * (feet - horizon))


def _paste(
    frame: Frames, pixels: Frames, shape: Mask, where: npt.NDArray[np.float64], tall: float
) -> bool:
    """``pixels`` scaled to ``tall`` px, centred on ``where`` (x, feet row) in ``frame``; False
    when none of it would show."""
    h = round(tall)
    w = max(1, round(pixels.shape[1] * tall / pixels.shape[0]))
    left, top = round(where[0] - w / 2), round(where[1]) - h
    height, width = frame.shape
    if h < 4 or left >= width or left + w <= 0 or top >= height or top + h <= 0:
        return False
    scaled = cv2.resize(pixels, (w, h), interpolation=cv2.INTER_AREA)
    seen = cv2.resize(shape.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
    rows = slice(max(0, top), min(height, top + h))
    cols = slice(max(0, left), min(width, left + w))
    part = (slice(rows.start - top, rows.stop - top), slice(cols.start - left, cols.stop - left))
    frame[rows, cols] = np.where(seen[part], scaled[part], frame[rows, cols])
    return True


def build_scenes(train: Mapping[str, Frames], *, seed: int) -> list[Scene]:
    """One scene of each kind from the training ``clips`` (name to frames), drawn by ``seed``."""
    rng = np.random.default_rng(seed)
    names = sorted(train)
    order = [names[i] for i in rng.permutation(len(names))]
    bases = {kind: order[i % len(order)] for i, kind in enumerate(KINDS)}
    others = [n for n in order if n != bases["fills"]][:3]
    donor = order[-1]
    strangers = [n for n in reversed(order) if n != bases["busy"]] or [bases["busy"]]
    passers_by = next((n for n in strangers if n != donor), strangers[0])
    makers: dict[str, Callable[[Frames, int], tuple[Frames, Mask]]] = {
        "empties": empties,
        "fills": lambda clip, onset: fills(clip, [train[n] for n in others], onset),
        "moved": lambda clip, onset: moved(clip, onset, rng),
        "covered-dark": covered_dark,
        "covered-blur": covered_blur,
        "far-motion": lambda clip, onset: far_motion(
            clip, sprite(train[donor], int(rng.integers(10, 15))), onset, rng
        ),
        "busy": lambda clip, onset: busy(clip, train[passers_by]),
        "speeding": lambda clip, onset: speeding(
            clip, sprite(train[donor], int(rng.integers(30, 46))), onset, rng
        ),
        "running": lambda clip, onset: running(
            clip, walker(train[donor], int(rng.integers(30, 46))), onset, rng
        ),
        "jogging": lambda clip, onset: running(
            clip, walker(train[passers_by], int(rng.integers(30, 46))), onset, rng, (2, 2.6)
        ),
        "cart": lambda clip, onset: cart(
            clip, walker(train[donor], int(rng.integers(30, 46))), onset, rng
        ),
        "disperses": lambda clip, onset: disperses(clip, onset, rng),
    }
    scenes = []
    for kind in KINDS:  # a new kind goes last: the earlier kinds' draws stay as they were
        onset = int(rng.integers(50, 71))
        frames, abnormal = makers[kind](train[bases[kind]], onset)
        if abnormal.any():  # a figure walking in is labeled from the first frame showing it
            onset = int(np.flatnonzero(abnormal)[0])
        source = "+".join([bases[kind], *(others if kind == "fills" else [])])
        if kind in ("far-motion", "speeding"):
            source += f"+sprite:{donor}"
        if kind in ("running", "cart"):
            source += f"+walker:{donor}"
        if kind == "jogging":
            source += f"+walker:{passers_by}"
        if kind == "busy":
            source, onset = f"{source}+walkers:{passers_by}", 0  # normal: no change point
        scenes.append(Scene(kind, source, onset, frames, abnormal))
    return scenes


def training_clips(root: Path, names: list[str] | None = None) -> dict[str, Frames]:
    """Ped2's training clips at full size (240 x 360), decoded."""
    paths = sorted((root / "train").glob("Train*.mp4"))
    return {p.stem: decode_clip(p) for p in paths if names is None or p.stem in names}


def write_scenes(scenes: list[Scene], out: Path, *, seed: int) -> dict[str, Path]:
    """Each scene as ``<out>/<name>/NNN.jpg`` (JPEG q95, as the test frames), with
    ``labels.json`` (abnormal intervals, 1-based inclusive like Ped2's); the scene folders."""
    folders: dict[str, Path] = {}
    labels: dict[str, object] = {"fps": 10, "seed": seed, "synthetic": True, "clips": {}}
    for scene in scenes:
        folder = out / scene.name
        folder.mkdir(parents=True, exist_ok=True)
        for index, frame in enumerate(scene.frames):
            Image.fromarray(frame).save(folder / f"{index + 1:03d}.jpg", quality=95)
        changes = np.flatnonzero(np.diff(np.r_[0, scene.abnormal.astype(np.int8), 0]))
        ranges = [[int(a) + 1, int(b)] for a, b in changes.reshape(-1, 2)]
        assert isinstance(labels["clips"], dict)
        labels["clips"][scene.name] = {
            "n_frames": len(scene.frames),
            "abnormal": ranges,
            "onset": scene.onset + 1,
            "source": scene.source,
        }
        folders[scene.name] = folder
    (out / "labels.json").write_text(json.dumps(labels, indent=2) + "\n")
    return folders


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(".cache/ped2-synthetic"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    scenes = build_scenes(training_clips(ped2_root()), seed=args.seed)
    for name, folder in write_scenes(scenes, args.out / f"seed{args.seed}", seed=args.seed).items():
        print(name, folder)


if __name__ == "__main__":
    main()
