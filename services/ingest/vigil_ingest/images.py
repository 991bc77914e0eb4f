"""Frames out of a directory of images, taken in file-name order as one clip.

The images carry no timestamps, so image ``i`` is given offset ``i / image_fps`` and sampled to
the target rate like any video. Images are read one at a time, so a directory of any size costs
the memory of one image; the listing is taken again on every pass, so files added meanwhile are
picked up when the directory loops.
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from pathlib import Path

from PIL import Image

from vigil_ingest.sources import Sampler, SourceError, SourceFrame

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
log = logging.getLogger(__name__)


def list_images(directory: Path) -> list[Path]:
    try:
        paths = [p for p in directory.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
    except OSError as exc:
        raise SourceError(f"cannot list image directory {str(directory)!r}: {exc}") from exc
    if not paths:
        suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
        raise SourceError(f"image directory {str(directory)!r} holds no images ({suffixes})")
    return sorted(paths, key=lambda p: p.name)


def _load(path: Path) -> Image.Image | None:
    try:
        with Image.open(path) as image:
            image.load()
            return image
    except (OSError, Image.DecompressionBombError) as exc:  # UnidentifiedImageError is an OSError
        # One bad file must not stop a camera that is otherwise fine; the log names it.
        log.warning("skipping unreadable image", extra={"path": str(path), "error": str(exc)})
        return None


def iter_images(
    directory: Path, *, fps: float, image_fps: float | None = None, loop: bool = False
) -> Generator[SourceFrame, None, None]:
    """Yield the directory's images on a ``1/fps`` grid, taking them as shot at ``image_fps``
    (default: ``fps``, so every image is published)."""
    period = 1.0 / (image_fps or fps)
    sampler = Sampler(fps)
    base = 0.0
    while True:
        paths = list_images(directory)
        for index, path in enumerate(paths):
            offset = base + index * period
            if sampler.keep(offset) and (image := _load(path)) is not None:
                yield SourceFrame(image=image, offset_s=offset)
        if not loop:
            return
        base += len(paths) * period
