"""Event snapshots: the peak frame, raw and with its anomaly heatmap overlaid, stored in S3.

Keys are derived from the event id, so a replay overwrites the same objects with the same bytes.
Uploads run on a small thread pool while the batch goes on; the worker waits for them before it
produces the messages that reference them, and commits offsets only after both.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import torch
from minio import Minio
from torchvision.io import encode_jpeg

from vigil_shared.event_lifecycle import Observation, Transition
from vigil_shared.schemas.events import snapshot_keys
from vigil_shared.storage import put_bytes
from vigil_shared.vision.preprocess import decode

# A blue -> cyan -> yellow -> red ramp (anchors at 0, 1/3, 2/3, 1): hot areas read at a glance.
_RAMP = torch.tensor(
    [[0.0, 0.0, 255.0], [0.0, 255.0, 255.0], [255.0, 255.0, 0.0], [255.0, 0.0, 0.0]]
)


def colorize(intensity: torch.Tensor) -> torch.Tensor:
    """(H, W) in [0, 1] to (3, H, W) float RGB along the ramp."""
    position = intensity.clamp(0, 1) * (len(_RAMP) - 1)
    low = position.floor().long().clamp(max=len(_RAMP) - 2)
    frac = (position - low).unsqueeze(-1)
    rgb = _RAMP[low] * (1 - frac) + _RAMP[low + 1] * frac
    return rgb.permute(2, 0, 1)


def overlay(image: torch.Tensor, heatmap: torch.Tensor | None, *, threshold: float) -> torch.Tensor:
    """Blend the heatmap over a uint8 (3, H, W) frame; areas under half the threshold stay clear.

    The map is scaled against the threshold rather than its own maximum, so a calm frame does
    not light up just because its highest patch is highest.
    """
    if heatmap is None:
        return image
    size = image.shape[-2:]
    resized = torch.nn.functional.interpolate(
        heatmap.float().cpu()[None, None], size=size, mode="bilinear", align_corners=False
    )[0, 0]
    scale = max(threshold, 1e-6)
    intensity = ((resized / scale) - 0.5).clamp(0, 1)
    alpha = (0.6 * intensity).unsqueeze(0)
    blended = image.float() * (1 - alpha) + colorize(intensity) * alpha
    return blended.round().clamp(0, 255).to(torch.uint8)


def render_overlay(frame: Observation, *, quality: int = 85) -> bytes:
    image = overlay(decode(frame.jpeg), frame.heatmap, threshold=frame.threshold)
    return bytes(encode_jpeg(image, quality=quality).numpy().tobytes())


class SnapshotStore:
    def __init__(self, client: Minio, *, bucket: str, workers: int = 2) -> None:
        self._client = client
        self._bucket = bucket
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="snapshot")

    def submit(self, *, event_id: uuid.UUID, frame: Observation) -> Future[str]:
        """Start storing the overlay and the raw frame; the future gives the overlay key."""
        return self._pool.submit(self._store, event_id, frame)

    def key_for(self, *, camera_id: str, event_id: uuid.UUID) -> str:
        return snapshot_keys(camera_id=camera_id, event_id=event_id)[0]

    def store_peaks(self, transitions: Sequence[Transition]) -> dict[uuid.UUID, str]:
        """Store each event's latest peak of the batch and wait for it; the key of every event's
        snapshot. One upload per event per batch, so uploads of one key never race."""
        latest = {t.event_id: t.snapshot for t in transitions if t.snapshot is not None}
        pending = {
            event_id: self.submit(event_id=event_id, frame=frame)
            for event_id, frame in latest.items()
        }
        keys = {event_id: future.result() for event_id, future in pending.items()}
        for t in transitions:
            keys.setdefault(
                t.event_id, self.key_for(camera_id=t.frame.camera_id, event_id=t.event_id)
            )
        return keys

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def _store(self, event_id: uuid.UUID, frame: Observation) -> str:
        overlay_key, raw_key = snapshot_keys(camera_id=frame.camera_id, event_id=event_id)
        put_bytes(self._client, self._bucket, raw_key, frame.jpeg, "image/jpeg")
        put_bytes(self._client, self._bucket, overlay_key, render_overlay(frame), "image/jpeg")
        return overlay_key
