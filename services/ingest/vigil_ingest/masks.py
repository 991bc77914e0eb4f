"""Privacy and ignore zones: polygons of a camera's picture blacked out before anything else.

Masking comes first, before motion gating, resizing and JPEG encoding, so a masked area never
leaves ingest and movement inside it cannot wake the motion gate. Coordinates are fractions of
the picture's width and height, so one definition fits every resolution a camera sends; their
shape is the camera contract's (``vigil_shared.cameras.fields.Polygon``).
"""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image, ImageDraw


class MaskSet:
    """Blacks out a camera's polygons; the drawn mask is kept per picture size, so a camera
    pays for drawing it once, not per frame."""

    def __init__(self, polygons: Sequence[Sequence[tuple[float, float]]]) -> None:
        for polygon in polygons:
            if len(polygon) < 3 or not all(0 <= c <= 1 for point in polygon for c in point):
                raise ValueError(
                    f"a mask is at least 3 points with coordinates in [0, 1], got {polygon}"
                )
        self._polygons = [list(polygon) for polygon in polygons]
        self._masks: dict[tuple[int, int], Image.Image] = {}

    def __bool__(self) -> bool:
        return bool(self._polygons)

    def _mask(self, size: tuple[int, int]) -> Image.Image:
        mask = self._masks.get(size)
        if mask is None:
            width, height = size
            mask = Image.new("1", size, 0)
            draw = ImageDraw.Draw(mask)
            for polygon in self._polygons:
                # Scaled to the last pixel, so a polygon reaching 1.0 covers the picture's edge.
                draw.polygon([(x * (width - 1), y * (height - 1)) for x, y in polygon], fill=1)
            self._masks = {size: mask}  # a camera changes resolution rarely; keep only the last
        return mask

    def apply(self, image: Image.Image) -> Image.Image:
        """The picture with every polygon black, in a mode JPEG can hold (RGB or L).

        Paints in place when the picture already has such a mode: frames belong to the capture
        loop that decoded them, and a copy per frame would double the memory a frame costs.
        """
        if image.mode not in {"RGB", "L"}:
            image = image.convert("RGB")
        if self._polygons:
            image.paste(0 if image.mode == "L" else (0, 0, 0), mask=self._mask(image.size))
        return image
