"""What happens to every frame before it is buffered, whatever its source: mask, gate, cap."""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

from vigil_ingest.masks import MaskSet
from vigil_ingest.motion import MotionGate
from vigil_ingest.publisher import cap_resolution


@dataclass
class FrameShaper:
    """Masks first (a masked area must neither leave ingest nor wake the motion gate), then the
    motion gate, then the resolution cap, so frames the gate skips are never resized."""

    masks: MaskSet
    max_size: tuple[int, int]
    gate: MotionGate | None = None

    def shape(self, image: Image.Image) -> Image.Image | None:
        """The frame ready to buffer, or None when the motion gate skips it."""
        image = self.masks.apply(image)
        if self.gate is not None and not self.gate.passes(image):
            return None
        return cap_resolution(image, max_size=self.max_size)
