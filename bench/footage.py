"""Labeled footage of one camera, in the shared datasets' layout: what the event bench measures.

UCSD Ped2 (``../shared/datasets/ucsd-ped2``) is one such folder. Footage of any other site
packaged the same way is measured by the same bench, with nothing chosen on its labels
(``python -m bench.ped2_events --footage DIR``), so the defaults can be judged on footage of
kinds Ped2 does not show:

    DIR/labels.json        {"fps": 25, "clips": {"<clip>": {"abnormal": [[61, 180], ...]}, ...}}
                           ("fps" may be left out where the videos state their rate)
    DIR/train/<clip>.mp4   normal footage only, one file per recording (any container PyAV reads)
    DIR/test/<clip>.mp4    the labeled clips, named as in labels.json's "clips"

A recording may also be a folder of frame images (``DIR/train/<clip>/001.jpg ...``, JPEG, PNG,
TIFF or BMP, in the order of their names' numbers), as many research sets ship; Ped2's copy
adds its test clips' frames as JPEGs (``DIR/test_frames/<clip>/``), which the bench scores as
they are.

``abnormal`` lists 1-based, inclusive ranges of the recording's own frames; a clip with none is
normal throughout. Sets that ship no separate normal footage (labeled recordings that start
normal, as crowd sets often do) declare it instead: ``"train": [[1, 300]]`` beside a clip's
``abnormal`` takes those frames as a normal recording of their own (``<clip>@1-300``, fitted on
like any in ``train/``) and leaves them out of the scored clip, whose remaining stretch is
scored as the camera would see it (one stretch keeps the clip's name; several are
``<clip>@<first>-<last>``, the last one ``-end``). A training range may not touch a labeled
anomaly. A multi-camera set is one folder per camera: a site's model is fitted on one
camera's footage (``bench.pool_events`` adds the cameras' reports up).

Frames reach the bench as they would reach inference: decoded with PyAV, capped at ingest's
default resolution (aspect kept, ``vigil_ingest.publisher.cap_resolution``), kept grey when the
footage is grey (Ped2) and colour otherwise, and taken at the bench's frame rate the way ingest
takes a camera at its target rate: frame i, shot at i / fps s, is kept when it opens a new
1 / rate slot. Each kept frame carries its capture time, so footage at 25 fps taken at 10 fps
gets irregular steps (0.12 s, 0.08 s), as a live camera's do. Decoded frames are cached as JPEG
(q95, as Ped2's test frames) under ``.cache/footage``.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import itertools
import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cached_property
from pathlib import Path
from typing import Literal

import av
import numpy as np
import torch
from PIL import Image

from vigil_ingest.publisher import cap_resolution
from vigil_ingest.settings import IngestSettings
from vigil_shared.settings import REPO_ROOT, default_datasets_dir

Part = Literal["train", "test"]
LABELS = "labels.json"
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".ts")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")
MAX_SIZE = (
    int(IngestSettings.model_fields["max_width"].default),
    int(IngestSettings.model_fields["max_height"].default),
)
GREY_SPREAD = 4
"""Grey levels between a pixel's colour channels under which a frame counts as grey (a grey
recording encoded as YUV decodes with a little chroma noise)."""
CACHE = REPO_ROOT / ".cache" / "footage"
PED2 = "ucsd-ped2"


class FootageError(ValueError):
    """A footage folder that does not follow the layout; the message says what is wrong."""


def opens_slot(index: int, *, fps: float, rate: float) -> bool:
    """Whether frame ``index`` of footage shot at ``fps`` opens a new 1 / ``rate`` slot, i.e.
    is kept by a camera taken at ``rate`` (every frame is, at the footage's own rate)."""
    if not 0 < rate <= fps:
        raise FootageError(f"cannot take footage shot at {fps:g} fps at {rate:g} fps")
    return index == 0 or math.floor(index * rate / fps + 1e-9) > math.floor(
        (index - 1) * rate / fps + 1e-9
    )


@dataclass(frozen=True)
class Clip:
    """A clip as the bench scores it: frame files in order, each one's capture time in seconds
    from the clip's start, and whether it is abnormal."""

    paths: list[Path]
    times: list[float]
    abnormal: torch.Tensor

    def __post_init__(self) -> None:
        if not len(self.paths) == len(self.times) == len(self.abnormal):
            raise ValueError("a clip needs one time and one label per frame")


@dataclass(frozen=True)
class Stretch:
    """Where a clip's frames come from: a recording's frames ``first`` to ``last`` (0-based,
    inclusive; None: to its end)."""

    part: Part
    recording: str
    first: int = 0
    last: int | None = None

    def holds(self, index: int) -> bool:
        return self.first <= index and (self.last is None or index <= self.last)


@dataclass(frozen=True)
class Footage:
    root: Path
    fps: float
    train: tuple[str, ...]
    test: tuple[str, ...]
    ranges: Mapping[str, tuple[tuple[int, int], ...]]
    description: str
    cache: Path = CACHE
    """Where decoded clips are kept as JPEGs."""
    stretches: Mapping[tuple[Part, str], Stretch] = field(default_factory=dict)
    """Clips that are a stretch of a recording (declared training ranges, and what they leave
    of a labeled clip to score); any other clip is its whole recording."""

    @classmethod
    def open(cls, root: Path, *, cache: Path = CACHE) -> Footage:
        """The footage at ``root``, its layout checked before anything is decoded."""
        labels_path = root / LABELS
        if not labels_path.is_file():
            raise FootageError(f"{root}: no {LABELS} (see bench/footage.py for the layout)")
        try:
            doc = json.loads(labels_path.read_text())
        except json.JSONDecodeError as error:
            raise FootageError(f"{labels_path}: not JSON ({error})") from error
        if not isinstance(doc, dict):
            raise FootageError(f"{labels_path}: not an object with 'fps' and 'clips'")
        clips = doc.get("clips")
        if not isinstance(clips, dict) or not clips:
            raise FootageError(f"{labels_path}: 'clips' must map each test clip to its labels")
        ranges = {name: _ranges(labels_path, name, info) for name, info in clips.items()}
        declared = {
            name: _ranges(labels_path, name, info, key="train") for name, info in clips.items()
        }
        stretches = _stretches(labels_path, ranges, declared)
        recordings = _recordings(root / "train")
        train = tuple(sorted(recordings)) + tuple(
            name for part, name in stretches if part == "train"
        )
        if not train:
            raise FootageError(
                f"{root / 'train'}: no normal recordings to fit on (nor 'train' ranges in {LABELS})"
            )
        first_recording = (
            recordings[train[0]]
            if recordings
            else _recordings(root / "test").get(stretches["train", train[0]].recording)
        )
        fps = doc.get(
            "fps", _container_rate(first_recording) if first_recording is not None else None
        )
        if not isinstance(fps, int | float) or isinstance(fps, bool) or not 0 < fps <= 240:
            raise FootageError(
                f"{labels_path}: 'fps' must be the recordings' frame rate (needed where the "
                "recordings are frame folders or their container gives none)"
            )
        scored = [name for part, name in stretches if part == "test"]
        test = tuple(sorted([clip for clip in ranges if not declared[clip]] + scored))
        footage = cls(
            root=root,
            fps=float(fps),
            train=train,
            test=test,
            ranges=ranges,
            description=str(doc.get("dataset", root.name)),
            cache=cache,
            stretches=stretches,
        )
        for clip in ranges:
            footage.recording("test", clip)  # raises when missing
        return footage

    @classmethod
    def ped2(cls) -> Footage:
        root = default_datasets_dir() / PED2
        if not (root / LABELS).is_file():
            raise SystemExit(f"UCSD Ped2 not found at {root}: place ../shared/datasets beside it")
        return cls.open(root)

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def slug(self) -> str:
        """A name fit for a dataset or a camera id: "ped2" for Ped2, else the folder's name."""
        if self.is_ped2:
            return "ped2"
        return re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-")[:40] or "footage"

    @property
    def is_ped2(self) -> bool:
        """Ped2 itself: the synthetic scenes are drawn on its geometry (its walkway, its lawn)."""
        return self.name == PED2

    def recording(self, part: Part, clip: str) -> Path:
        """A clip's video file or folder of frames (Ped2's test clips: ``test_frames/<clip>``)."""
        found = _recordings(self.root / part).get(clip)
        if found is None and part == "test" and (self.root / "test_frames" / clip).is_dir():
            found = self.root / "test_frames" / clip
        if found is None:
            raise FootageError(f"{self.root / part}: no recording named {clip!r}")
        return found

    def abnormal_at(self, clip: str, indices: Sequence[int]) -> torch.Tensor:
        """Whether each of a recording's frames (0-based ``indices``) is labeled abnormal."""
        spans = self.ranges.get(clip, ())
        return torch.tensor(
            [any(first - 1 <= i < last for first, last in spans) for i in indices], dtype=torch.bool
        )

    @cached_property
    def grey(self) -> bool:
        """Whether the camera is monochrome, judged on the first training recording's first
        frame: grey footage stays one channel, as a monochrome camera's JPEGs are."""
        source = self.stretch("train", self.train[0])
        first = next(_decoded(self.recording(source.part, source.recording), grey=False))
        rgb = np.asarray(first, dtype=np.int16)
        return int((rgb.max(axis=2) - rgb.min(axis=2)).max()) <= GREY_SPREAD

    def stretch(self, part: Part, clip: str) -> Stretch:
        """Where a clip's frames come from: a stretch of a recording, or all of its own."""
        return self.stretches.get((part, clip), Stretch(part, clip))

    def frames(self, part: Part, clip: str, rate: float | None = None) -> Iterator[_Frame]:
        """A clip's frames in order as a camera taken at ``rate`` (the footage's own when None)
        would publish them, resolution capped; times from the clip's first frame."""
        source = self.stretch(part, clip)
        step = rate or self.fps
        recording = self.recording(source.part, source.recording)
        for index, image in enumerate(_decoded(recording, grey=self.grey)):
            if source.last is not None and index > source.last:
                return
            if source.holds(index) and opens_slot(index, fps=self.fps, rate=step):
                seconds = (index - source.first) / self.fps
                yield _Frame(index, seconds, cap_resolution(image, max_size=MAX_SIZE))

    def clip(self, part: Part, name: str, *, rate: float | None = None, limit: int = 0) -> Clip:
        """A clip as JPEG files, capture times and labels; ``limit``: its first frames only.
        A folder of JPEG frames a camera could have sent (Ped2's ``test_frames``) is read as
        its files; other recordings are decoded once into the cache."""
        source = self.stretch(part, name)
        files = self._jpeg_frames(source)
        if files is not None:
            step = rate or self.fps
            kept: list[tuple[int, float]] = [
                (i, (i - source.first) / self.fps)
                for i in range(len(files))
                if source.holds(i) and opens_slot(i, fps=self.fps, rate=step)
            ]
            paths = [files[i] for i, _ in kept]
        else:
            folder = self._cache(part, name, rate)
            done = folder / "frames.json"
            if not done.is_file():
                folder.mkdir(parents=True, exist_ok=True)
                written = []
                for frame in self.frames(part, name, rate):
                    frame.image.save(folder / f"{frame.index + 1:06d}.jpg", quality=95)
                    written.append([frame.index, frame.seconds])
                done.write_text(json.dumps(written))
            kept = [(int(i), float(s)) for i, s in json.loads(done.read_text())]
            paths = [folder / f"{index + 1:06d}.jpg" for index, _ in kept]
        if not kept:
            raise FootageError(f"{self.root}: {part} clip {name!r} has no frames to take")
        kept, paths = kept[: limit or None], paths[: limit or None]
        indices = [index for index, _ in kept]
        abnormal = (
            self.abnormal_at(source.recording, indices)
            if part == "test"
            else torch.zeros(len(kept), dtype=torch.bool)
        )
        return Clip(paths, [seconds for _, seconds in kept], abnormal)

    def _jpeg_frames(self, source: Stretch) -> list[Path] | None:
        """The recording's frame files when they can be scored as they are: JPEGs, within
        ingest's resolution cap, in the footage's channels (grey or colour)."""
        folder = self.root / "test_frames" / source.recording
        if not (source.part == "test" and folder.is_dir()):
            folder = self.recording(source.part, source.recording)
        if not folder.is_dir():
            return None
        files = _images(folder)
        if not files or any(f.suffix.lower() not in (".jpg", ".jpeg") for f in files):
            return None
        with Image.open(files[0]) as first:
            fits = first.width <= MAX_SIZE[0] and first.height <= MAX_SIZE[1]
            if not fits or first.mode != ("L" if self.grey else "RGB"):
                return None
        return files

    def _cache(self, part: Part, clip: str, rate: float | None) -> Path:
        source = self.stretch(part, clip)
        recording = self.recording(source.part, source.recording)
        stat = recording.stat()
        key = (
            f"{recording.resolve()}:{stat.st_size}:{stat.st_mtime_ns}:{rate}:{MAX_SIZE}:{self.fps}"
        ) + ("" if source == Stretch(part, clip) else f":{source.first}:{source.last}")
        digest = hashlib.sha256(key.encode()).hexdigest()[:12]
        return self.cache / f"{self.name}-{part}-{clip}-{digest}"


@dataclass(frozen=True)
class _Frame:
    index: int
    """The frame's position in the recording (0-based)."""
    seconds: float
    image: Image.Image

    def jpeg(self) -> bytes:
        buffer = io.BytesIO()
        self.image.save(buffer, "JPEG", quality=95)
        return buffer.getvalue()


def _recordings(folder: Path) -> dict[str, Path]:
    """The recordings in ``folder`` by clip name: video files, and folders of frame images."""
    if not folder.is_dir():
        return {}
    return {
        (p.name if p.is_dir() else p.stem): p
        for p in sorted(folder.iterdir())
        if (p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES) or (p.is_dir() and _images(p))
    }


def _container_rate(recording: Path) -> float | None:
    """A video file's frame rate as its container states it; None for a folder of frames or a
    file that states none."""
    if recording.is_dir():
        return None
    try:
        with av.open(str(recording)) as container:
            rate = container.streams.video[0].average_rate
    except (av.FFmpegError, IndexError) as error:
        raise FootageError(f"{recording}: not a readable video ({error})") from error
    return float(rate) if rate else None


def _images(folder: Path) -> list[Path]:
    """A folder's frame images in order, numbers compared as numbers (``9.jpg`` before
    ``10.jpg``)."""

    def key(path: Path) -> list[int | str]:
        return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]

    return sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=key)


def _decoded(recording: Path, *, grey: bool) -> Iterator[Image.Image]:
    """A recording's frames in order, one channel (luma) when ``grey``, else RGB; a file that
    does not decode is a ``FootageError`` naming it."""
    if recording.is_dir():
        for path in _images(recording):
            try:
                with Image.open(path) as image:
                    yield image.convert("L" if grey else "RGB")
            except OSError as error:
                raise FootageError(f"{path}: not a readable image ({error})") from error
        return
    try:
        with av.open(str(recording)) as container:
            for frame in container.decode(video=0):
                yield Image.fromarray(frame.to_ndarray(format="gray" if grey else "rgb24"))
    except (av.FFmpegError, IndexError) as error:
        raise FootageError(f"{recording}: not a readable video ({error})") from error


def _ranges(
    path: Path, clip: str, info: object, *, key: str = "abnormal"
) -> tuple[tuple[int, int], ...]:
    """A clip's ``key`` ranges (its abnormal frames, or those declared for training),
    checked: 1-based, inclusive, first <= last."""
    spans = info.get(key, []) if isinstance(info, dict) else None
    if not isinstance(spans, list):
        raise FootageError(f"{path}: clips[{clip!r}] must be an object with 'abnormal' ranges")
    out = []
    for span in spans:
        if (
            not isinstance(span, Sequence)
            or len(span) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in span)
            or not 1 <= span[0] <= span[1]
        ):
            raise FootageError(
                f"{path}: clips[{clip!r}].{key}: {span!r} is not a 1-based [first, last] range"
            )
        out.append((int(span[0]), int(span[1])))
    return tuple(out)


def _stretches(
    path: Path,
    abnormal: Mapping[str, tuple[tuple[int, int], ...]],
    declared: Mapping[str, tuple[tuple[int, int], ...]],
) -> dict[tuple[Part, str], Stretch]:
    """The training stretches declared in labeled clips (``<clip>@<first>-<last>``) and what
    each such clip leaves to score: the stretches between and after them (one keeps the clip's
    name). A training range over a labeled anomaly, or over another, is refused."""
    out: dict[tuple[Part, str], Stretch] = {}
    for clip, spans in declared.items():
        if not spans:
            continue
        spans = tuple(sorted(spans))
        for (a, b), (c, d) in itertools.pairwise(spans):
            if c <= b:
                raise FootageError(f"{path}: clips[{clip!r}].train: {[a, b]} overlaps {[c, d]}")
        for a, b in spans:
            hit = next(((x, y) for x, y in abnormal[clip] if x <= b and a <= y), None)
            if hit is not None:
                raise FootageError(
                    f"{path}: clips[{clip!r}].train: {[a, b]} takes abnormal frames {list(hit)} "
                    "as normal footage"
                )
            out["train", f"{clip}@{a}-{b}"] = Stretch("test", clip, a - 1, b - 1)
        bounds = [0, *(i for a, b in spans for i in (a - 1, b))]  # 0-based run edges
        runs = [
            (start, stop - 1 if stop is not None else None)
            for start, stop in zip(bounds[::2], [*bounds[1::2], None], strict=True)
            if stop is None or stop > start
        ]
        for first, last in runs:
            name = (
                clip
                if len(runs) == 1
                else f"{clip}@{first + 1}-{'end' if last is None else last + 1}"
            )
            out["test", name] = Stretch("test", clip, first, last)
    return out


def write_video(
    path: Path,
    frames: Iterable[Image.Image],
    *,
    fps: float,
    metadata: Mapping[str, str] | None = None,
) -> int:
    """``frames`` as an H.264 MP4 at ``fps`` (yuv420p, as cameras and Ped2's copies are), with
    these container tags (e.g. ``creation_time``); returns how many were written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with av.open(str(path), "w") as container:
        container.metadata.update(metadata or {})
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "18", "preset": "ultrafast", "bf": "0"}
        for image in frames:
            if count == 0:
                stream.width, stream.height = image.width // 2 * 2, image.height // 2 * 2
            rgb = image.convert("RGB").crop((0, 0, stream.width, stream.height))
            frame = av.VideoFrame.from_ndarray(np.asarray(rgb), format="rgb24")
            container.mux(stream.encode(frame))
            count += 1
        container.mux(stream.encode())
    return count


def repackaged(
    source: Footage,
    out: Path,
    *,
    train: Sequence[str],
    test: Sequence[str],
    scale: float = 2.0,
    repeat: int = 2,
    tint: tuple[float, float, float] = (1.0, 0.92, 0.8),
) -> Footage:
    """``source``'s clips as another camera would deliver them: ``scale`` times the size, in
    colour (grey times ``tint``), each frame shown ``repeat`` times at ``repeat`` times the
    rate; labels follow. Taken back at the source's rate, the bench sees the same moments, so
    its figures on the copy tell how much of a model's behaviour is the footage's format."""

    def convert(image: Image.Image) -> Image.Image:
        size = (round(image.width * scale), round(image.height * scale))
        grey = np.asarray(image.convert("L").resize(size, Image.Resampling.BICUBIC), np.float32)
        colour = np.clip(grey[..., None] * np.asarray(tint, np.float32), 0, 255)
        return Image.fromarray(colour.astype(np.uint8), "RGB")

    def copy(part: Part, clip: str) -> int:
        frames = (convert(f.image) for f in source.frames(part, clip) for _ in range(repeat))
        return write_video(out / part / f"{clip}.mp4", frames, fps=source.fps * repeat)

    for clip in train:
        copy("train", clip)
    clips = {}
    for clip in test:
        n = copy("test", clip)
        spans = [[(a - 1) * repeat + 1, b * repeat] for a, b in source.ranges.get(clip, ())]
        clips[clip] = {"n_frames": n, "abnormal": spans}
    doc = {
        "dataset": f"{source.description}, repackaged: x{scale:g}, colour, {repeat}x the rate",
        "fps": source.fps * repeat,
        "frame_index": "1-based, inclusive ranges",
        "clips": clips,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / LABELS).write_text(json.dumps(doc, indent=1) + "\n")
    return Footage.open(out, cache=source.cache)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="a footage folder to check (or to write)")
    parser.add_argument(
        "--repackage-ped2",
        action="store_true",
        help="write Ped2's clips into the folder as a colour camera at twice the size and rate",
    )
    args = parser.parse_args(argv)
    footage = (
        repackaged(
            Footage.ped2(), args.folder, train=Footage.ped2().train, test=Footage.ped2().test
        )
        if args.repackage_ped2
        else Footage.open(args.folder)
    )
    labeled = sum(
        1 for clip in footage.test if footage.ranges[footage.stretch("test", clip).recording]
    )
    print(
        json.dumps(
            {
                "footage": footage.name,
                "description": footage.description,
                "fps": footage.fps,
                "grey": footage.grey,
                "train_clips": len(footage.train),
                "test_clips": len(footage.test),
                "test_clips_with_anomalies": labeled,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
