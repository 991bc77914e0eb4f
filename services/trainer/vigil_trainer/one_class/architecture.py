"""The ``architecture`` a one_class model's manifest and registry row carry: what scores its
frames, read from its spec, so the registry, the console and ``vigil models`` tell an
appearance-only model from one with motion or the scene stream, and which fusion decides.

``efficientnet_lite0 patch-knn+farneback+scene|calibrated_max`` is the backbone, the streams in
use joined by ``+`` (appearance: ``patch-knn``; motion: its flow, ``farneback``, ``lk-flow`` for
Lucas-Kanade or ``dis-flow``; scene: ``scene``, or ``scene(emb)`` / ``scene(act)`` with one of
its two parts in use), then ``|`` and the fusion. A stream is in use as the fit decides it:
weight above 0, motion not null, a scene part only on the stream it rides on. The knobs (stages,
whitening, persistence, ...) stay in the manifest's ``spec``: models that score the same way
share one name, which the registry can be filtered by, and the longest name fits its column (64
characters, ``tests/unit/test_one_class_architecture.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from vigil_shared.schemas.one_class import OneClassSpec

APPEARANCE: Final = "patch-knn"
MOTION: Final[Mapping[str, str]] = {
    "farneback": "farneback",
    "lucas_kanade": "lk-flow",
    "dis": "dis-flow",
}
SCENE: Final[Mapping[tuple[bool, bool], str]] = {
    (True, True): "scene",
    (True, False): "scene(emb)",
    (False, True): "scene(act)",
}
"""The scene stream's name by which of its parts are in use (embedding, activity)."""


def one_class_architecture(spec: OneClassSpec) -> str:
    """The model's streams and fusion, e.g. ``efficientnet_lite0 patch-knn+farneback|weighted``."""
    streams: list[str] = []
    if spec.appearance.weight > 0:
        streams.append(APPEARANCE)
    if spec.motion is not None and spec.motion.weight > 0:
        streams.append(MOTION[spec.motion.method])
    scene = SCENE.get((spec.scene_embedding, spec.scene_activity))
    if scene is not None:
        streams.append(scene)
    return f"{spec.backbone} {'+'.join(streams)}|{spec.fusion}"
