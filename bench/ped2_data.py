"""UCSD Ped2 as a labeled ``normal``/``abnormal`` frame-classification set, split by clip.

Frames are decoded once from the MP4s with PyAV, resized to a small square (the benchmark CPU
has two cores) and cached under ``.cache/`` as one ``.npz``; later runs load the cache.

The split is by clip, fixed, and every part holds both classes, so no held-out frame has a
near-duplicate neighbour in training:

| part | clips | normal | abnormal |
| --- | --- | --- | --- |
| train | Train001-012, Test001-006 | 2150 | 790 |
| validation (model selection: epochs, trials, fusion) | Train013-014, Test007-008 | 375 | 315 |
| test (reported, never used to choose anything) | Train015-016, Test009-012 | 387 | 543 |

    python -m bench.ped2_data --size 128 --to-s3 ped2-frames   # optional: a real Vigil dataset
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import av
import numpy as np
import numpy.typing as npt
from PIL import Image

from vigil_shared.settings import REPO_ROOT, default_datasets_dir

CLASSES = ("normal", "abnormal")
Part = Literal["train", "validation", "test"]
SPLIT: dict[Part, tuple[str, ...]] = {
    "train": (*(f"Train{i:03d}" for i in range(1, 13)), *(f"Test{i:03d}" for i in range(1, 7))),
    "validation": ("Train013", "Train014", "Test007", "Test008"),
    "test": ("Train015", "Train016", "Test009", "Test010", "Test011", "Test012"),
}
CACHE_DIR = REPO_ROOT / ".cache" / "ped2"


class Ped2MissingError(FileNotFoundError):
    """The shared Ped2 copy is not beside the checkout."""


@dataclass(frozen=True)
class Ped2Frames:
    """Grayscale frames with their label (index into ``CLASSES``), clip and 1-based number."""

    images: npt.NDArray[np.uint8]
    labels: npt.NDArray[np.int64]
    clips: npt.NDArray[np.str_]
    numbers: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def select(self, mask: npt.NDArray[np.bool_]) -> Ped2Frames:
        return Ped2Frames(
            self.images[mask], self.labels[mask], self.clips[mask], self.numbers[mask]
        )

    def rgb(self) -> npt.NDArray[np.uint8]:
        """(N, 3, S, S): the backbones take three channels; Ped2 is grayscale."""
        return np.repeat(self.images[:, None], 3, axis=1)


def ped2_root() -> Path:
    root = default_datasets_dir() / "ucsd-ped2"
    if not (root / "labels.json").is_file():
        raise Ped2MissingError(
            f"UCSD Ped2 is not at {root}: place the shared datasets folder beside the checkout"
        )
    return root


def _abnormal(n_frames: int, ranges: list[list[int]]) -> npt.NDArray[np.int64]:
    labels = np.zeros(n_frames, dtype=np.int64)
    for first, last in ranges:  # 1-based, inclusive
        labels[first - 1 : last] = 1
    return labels


def decode_clip(path: Path, *, size: int | None = None) -> npt.NDArray[np.uint8]:
    """A clip's frames in grayscale, (N, H, W); resized to ``size`` x ``size`` when given."""
    frames: list[npt.NDArray[np.uint8]] = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            gray = Image.fromarray(frame.to_ndarray(format="gray"))
            if size is not None:
                gray = gray.resize((size, size), Image.Resampling.BILINEAR)
            frames.append(np.asarray(gray))
    return np.stack(frames)


def _decode_all(root: Path, *, size: int) -> Ped2Frames:
    labels_doc = json.loads((root / "labels.json").read_text())
    clips: dict[str, tuple[Path, npt.NDArray[np.int64]]] = {}
    for name, info in labels_doc["train_clips"].items():
        clips[name] = (root / "train" / f"{name}.mp4", np.zeros(info["n_frames"], np.int64))
    for name, info in labels_doc["clips"].items():
        labels = _abnormal(info["n_frames"], info["abnormal"])
        clips[name] = (root / "test" / f"{name}.mp4", labels)
    images, labels_all, names, numbers = [], [], [], []
    for name, (path, labels) in sorted(clips.items()):
        decoded = decode_clip(path, size=size)
        if len(decoded) != len(labels):
            raise ValueError(
                f"{path} decodes to {len(decoded)} frames, labels.json says {len(labels)}"
            )
        images.append(decoded)
        labels_all.append(labels)
        names.append(np.full(len(labels), name))
        numbers.append(np.arange(1, len(labels) + 1, dtype=np.int64))
    return Ped2Frames(
        np.concatenate(images),
        np.concatenate(labels_all),
        np.concatenate(names),
        np.concatenate(numbers),
    )


def load_ped2(*, size: int, cache_dir: Path = CACHE_DIR) -> Ped2Frames:
    """Every Ped2 frame (train and test clips) at ``size`` x ``size``, decoded once and cached."""
    root = ped2_root()
    cache = cache_dir / f"ped2-{size}.npz"
    if cache.is_file():
        with np.load(cache) as data:
            return Ped2Frames(data["images"], data["labels"], data["clips"], data["numbers"])
    frames = _decode_all(root, size=size)
    cache.parent.mkdir(parents=True, exist_ok=True)
    partial = cache.with_suffix(".tmp.npz")
    np.savez(
        partial,
        images=frames.images,
        labels=frames.labels,
        clips=frames.clips,
        numbers=frames.numbers,
    )
    partial.replace(cache)  # a run killed mid-write leaves no truncated cache behind
    return frames


def split(frames: Ped2Frames, *, part: Part, stride: int = 1) -> Ped2Frames:
    """One part of the fixed clip split, keeping every ``stride``-th frame of each clip
    (consecutive frames at 10 fps are near-duplicates, so a stride loses little)."""
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    in_part = np.isin(frames.clips, SPLIT[part])
    on_stride = (frames.numbers - 1) % stride == 0
    return frames.select(in_part & on_stride)


def describe(frames: Ped2Frames) -> dict[str, dict[str, int]]:
    return {
        part: {
            name: int((split(frames, part=part).labels == index).sum())
            for index, name in enumerate(CLASSES)
        }
        for part in SPLIT
    }


def write_to_s3(frames: Ped2Frames, *, name: str) -> str:
    """Write the frames as a versioned Vigil dataset (JPEG, label, group = clip); its version."""
    import io

    from vigil_shared.datasets import NewImage, write_dataset
    from vigil_shared.settings import S3Settings
    from vigil_shared.storage import make_s3_client

    settings = S3Settings()
    images = []
    for image, label, clip, number in zip(
        frames.images, frames.labels, frames.clips, frames.numbers, strict=True
    ):
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=95)
        images.append(
            NewImage(
                data=buffer.getvalue(),
                extension="jpg",
                group=str(clip),
                label=CLASSES[int(label)],
                sequence=int(number) - 1,
                source_name=f"{clip}/{int(number):03d}.jpg",
            )
        )
    manifest = write_dataset(
        make_s3_client(settings),
        settings.datasets_bucket,
        name=name,
        images=images,
        source="import",
        description="UCSD Ped2 frames labeled from the frame-level ground truth",
    )
    return manifest.version


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--to-s3", metavar="NAME", help="also write a Vigil dataset NAME to S3")
    args = parser.parse_args()
    try:
        frames = load_ped2(size=args.size)
    except Ped2MissingError as exc:
        raise SystemExit(str(exc)) from exc
    print(json.dumps({"frames": len(frames), "split": describe(frames)}, indent=2))
    if args.to_s3:
        print(f"dataset {args.to_s3} version {write_to_s3(frames, name=args.to_s3)}")


if __name__ == "__main__":
    main()
