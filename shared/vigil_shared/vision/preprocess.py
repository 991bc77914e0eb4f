"""JPEG bytes to normalised batches, on whichever device the tensors live."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torchvision.io import ImageReadMode, decode_jpeg

from vigil_shared.schemas.manifests import Preprocessing


class UndecodableImageError(ValueError):
    """Bytes that are not a decodable JPEG image."""


def decode(data: bytes) -> torch.Tensor:
    """One JPEG to a uint8 (3, H, W) tensor; grayscale sources are expanded to RGB."""
    if not data:
        raise UndecodableImageError("empty image payload")
    try:
        image = decode_jpeg(
            torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=ImageReadMode.RGB
        )
    except RuntimeError as exc:
        raise UndecodableImageError(f"not a decodable JPEG: {exc}".splitlines()[0]) from exc
    if not isinstance(image, torch.Tensor):
        raise UndecodableImageError("decoder returned no image")
    return image


def to_batch(images: Sequence[torch.Tensor], prep: Preprocessing) -> torch.Tensor:
    """Resize each image to ``image_size`` squared and normalise; returns float (N, 3, S, S)."""
    size = (prep.image_size, prep.image_size)
    resized = [
        torch.nn.functional.interpolate(
            img.unsqueeze(0).float(),
            size=size,
            mode="bilinear",
            antialias=True,
            align_corners=False,
        )
        for img in images
    ]
    batch = torch.cat(resized).div_(255.0)
    mean = torch.tensor(prep.mean, device=batch.device).view(1, 3, 1, 1)
    std = torch.tensor(prep.std, device=batch.device).view(1, 3, 1, 1)
    return batch.sub_(mean).div_(std)
