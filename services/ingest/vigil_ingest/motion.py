"""Motion gating: skip frames that show no change, so static scenes cost no GPU time."""

from __future__ import annotations

import numpy as np
from PIL import Image

# Small enough to make the comparison cheap and to ignore sensor noise in single pixels.
THUMBNAIL = (64, 48)


class MotionGate:
    """Lets a frame through when it differs from the last frame let through.

    The difference is the mean absolute difference of two 64x48 grayscale thumbnails, as a
    fraction of full scale (0: identical, 1: black against white). Comparing with the last frame
    let through, not the previous one, means slow changes add up and are published eventually.
    """

    def __init__(self, threshold: float) -> None:
        if not 0 < threshold < 1:
            raise ValueError(f"motion threshold is a fraction between 0 and 1, got {threshold}")
        self._threshold = threshold
        self._reference: np.ndarray | None = None

    def passes(self, image: Image.Image) -> bool:
        thumbnail = np.asarray(
            image.convert("L").resize(THUMBNAIL, Image.Resampling.BILINEAR), dtype=np.int16
        )
        if self._reference is not None:
            change = float(np.abs(thumbnail - self._reference).mean()) / 255.0
            if change < self._threshold:
                return False
        self._reference = thumbnail
        return True
