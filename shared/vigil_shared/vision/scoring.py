"""What the inference service asks of any registry model: score a camera's frames in order.

Both task kinds implement it: a ``one_class`` model (patch memory bank, with motion between a
camera's consecutive frames, so it keeps a little state per camera) and a ``classify`` model
(anomaly score = 1 - probability of the normal classes). Inference depends only on this
protocol and ``load_frame_model``; it never imports training code. A model with per-camera state
says how far back it looks (``context_frames``), so a replay can rebuild that state exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch

from vigil_shared.schemas.manifests import ModelManifest


@dataclass(frozen=True)
class FrameScore:
    """``score`` is compared with ``threshold`` (larger is more anomalous); ``heatmap`` is a
    coarse (h, w) float map over the frame in the same units, for localisation overlays."""

    score: float
    threshold: float
    heatmap: torch.Tensor | None = None
    label: str | None = None


class FrameModel(Protocol):
    manifest: ModelManifest

    @property
    def context_frames(self) -> int:
        """How many previous frames of a camera a frame's score depends on: 0 for a model that
        scores each frame on its own. A camera's state rebuilt from scratch on its last
        ``context_frames`` frames gives every later frame exactly the score it would have had;
        inference replays that many frames after a crash before it trusts a score."""
        ...

    def score_frames(
        self,
        camera_ids: Sequence[str],
        images: Sequence[torch.Tensor],
        times: Sequence[float] | None = None,
    ) -> list[FrameScore]:
        """Score decoded frames (uint8 CHW, any size, on the model's device or the CPU).

        Frames of one camera arrive in capture order across calls; a model that uses motion
        keeps the previous frame of each camera and scores a camera's first frame on appearance.
        ``times`` are the frames' capture times (seconds since the epoch): a motion model
        measures each camera's frame rate from them (``motion_pace``); without them it assumes
        the rate of the footage it was fitted on.
        """
        ...

    def forget(self, camera_id: str) -> None:
        """Drop per-camera state (the camera restarted or moved to another worker)."""
        ...
