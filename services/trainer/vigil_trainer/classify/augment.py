"""Training-time augmentation from the spec (torchvision transforms v2), one image at a time.

Only training frames are augmented; validation frames go through ``to_float`` alone, so the
held-out metrics describe the frames inference will see. Each image gets its own random draw.
"""

from __future__ import annotations

import torch
from torchvision.transforms import v2

from vigil_shared.schemas.jobs import AugmentSpec


def _blur_kernel(sigma: float) -> int:
    """An odd kernel wide enough for ``sigma`` (±2 sigma), at least 3."""
    return max(3, 2 * int(2 * sigma + 0.5) + 1)


def build_train_transform(spec: AugmentSpec, *, image_size: int) -> v2.Compose:
    """uint8 (3, S, S) to float (3, S, S) in [0, 1], augmented as the spec says."""
    steps: list[v2.Transform] = []
    if spec.crop is not None:
        steps.append(
            v2.RandomResizedCrop(image_size, scale=(spec.crop.min_area, 1.0), antialias=True)
        )
    if spec.scale is not None:
        steps.append(v2.RandomAffine(degrees=0.0, scale=(spec.scale.min, spec.scale.max)))
    if spec.rotation is not None:
        steps.append(v2.RandomRotation(spec.rotation.degrees))
    if spec.flip is not None:
        if spec.flip.horizontal > 0:
            steps.append(v2.RandomHorizontalFlip(spec.flip.horizontal))
        if spec.flip.vertical > 0:
            steps.append(v2.RandomVerticalFlip(spec.flip.vertical))
    if spec.color_jitter is not None:
        jitter = spec.color_jitter
        steps.append(
            v2.ColorJitter(jitter.brightness, jitter.contrast, jitter.saturation, jitter.hue)
        )
    if spec.blur is not None:
        blur = v2.GaussianBlur(_blur_kernel(spec.blur.sigma), sigma=(0.1, spec.blur.sigma))
        steps.append(v2.RandomApply([blur], p=spec.blur.p))
    steps.append(v2.ToDtype(torch.float32, scale=True))
    if spec.noise is not None:
        steps.append(v2.RandomApply([v2.GaussianNoise(sigma=spec.noise.std)], p=spec.noise.p))
    return v2.Compose(steps)


def to_float(images: torch.Tensor) -> torch.Tensor:
    """The validation path: uint8 to float in [0, 1], nothing else."""
    return images.float().div_(255.0)


def augment_batch(transform: v2.Compose, images: torch.Tensor) -> torch.Tensor:
    """Apply ``transform`` to each image of a uint8 (N, 3, S, S) batch separately."""
    return torch.stack([transform(image) for image in images])
