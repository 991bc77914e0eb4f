"""A real one_class model of a generated scene, fitted in seconds, for replay tests and the fault
drill (``bench/fault_drill.py``).

The scene: a textured wall with sensor grain, a walker pacing along it at 1 px a frame (normal),
and now and then a cyclist crossing below it at 5 px a frame (anomalous: bigger, and faster than
anyone walks). The model is fitted the way the trainer fits one (an appearance bank of normal
patches, each stream normalised by held-out normal frames, a threshold above the normal scores)
and stored as a registry artifact, so inference loads it through its real path. Its motion
stream (flow against the previous frame, a persistence window) and its smoothing window make
each score depend on the camera's previous frames: what a replay must rebuild.
"""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import torch
from minio import Minio
from PIL import Image, ImageDraw
from safetensors.torch import save as save_safetensors

from vigil_shared.datasets import DatasetRef
from vigil_shared.kafka import make_producer
from vigil_shared.schemas.frames import FrameHeaders
from vigil_shared.schemas.manifests import ModelManifest
from vigil_shared.schemas.one_class import AppearanceSpec, MotionSpec, OneClassSpec
from vigil_shared.settings import KafkaSettings
from vigil_shared.storage import put_bytes, sha256_hex
from vigil_shared.vision.backbones import LITE0_PREPROCESSING, load_efficientnet_lite0
from vigil_shared.vision.efficientnet_lite import fused_for_inference
from vigil_shared.vision.one_class_model import (
    APPEARANCE_BANK,
    APPEARANCE_NORM,
    MOTION_NORM,
    OneClassScorer,
)
from vigil_shared.vision.patches import PatchFeatureExtractor
from vigil_shared.vision.preprocess import decode, to_batch

WIDTH, HEIGHT = 128, 96  # the flow size: no resize before the flow
SPEC = OneClassSpec(
    name="replay-scene",
    dataset=DatasetRef(name="replay-scene", version="0" * 64),
    image_size=96,
    fusion="weighted",  # ``fit`` below normalises the streams by mean and std, as weighted needs
    appearance=AppearanceSpec(weight=0.3, whiten_dim=0),
    motion=MotionSpec(
        weight=0.7,
        flow_height=96,
        flow_width=128,
        grid_rows=6,
        grid_cols=8,
        top_k=2,
        persistence=3,
    ),
    smoothing_window=3,
    scene=None,
)
PREPROCESSING = LITE0_PREPROCESSING.model_copy(update={"image_size": SPEC.image_size})


@dataclass(frozen=True)
class Scene:
    """One camera's view; ``seed`` sets its wall and where its walker starts."""

    seed: int
    first: int = 30
    period: int = 60
    duration: int = 24

    def anomalous(self, step: int) -> bool:
        return step >= self.first and (step - self.first) % self.period < self.duration

    def jpeg(self, step: int) -> bytes:
        grain = np.random.default_rng([self.seed, step]).normal(0, 8, (HEIGHT, WIDTH))
        wall = (_wall(self.seed) + grain).clip(0, 255).astype(np.uint8)
        image = Image.fromarray(wall).convert("RGB")
        draw = ImageDraw.Draw(image)
        x = _bounce(7 * self.seed + step, WIDTH - 30) + 10
        draw.rectangle((x, 10, x + 10, 34), fill=(30, 30, 30))
        if self.anomalous(step):
            fast = 5 * ((step - self.first) % self.period) - 10
            draw.rectangle((fast, 52, fast + 22, 80), fill=(20, 20, 20))
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=90)
        return buffer.getvalue()


def _wall(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.random((HEIGHT // 4, WIDTH // 4)) * 80 + 80
    return np.kron(noise, np.ones((4, 4)))


def _bounce(position: int, span: int) -> int:
    position %= 2 * span
    return position if position < span else 2 * span - position


def _norm(values: torch.Tensor) -> torch.Tensor:
    present = values[~torch.isnan(values)]
    return torch.tensor([float(present.mean()), max(float(present.std()), 1e-6)])


def fit(seeds: tuple[int, ...] = (0, 1), frames: int = 60) -> tuple[dict[str, torch.Tensor], float]:
    """Fit on ``frames`` normal frames of each camera ``seeds`` names (the site's cameras);
    normalise each stream and set the threshold on the next ``frames`` of each."""
    backbone = fused_for_inference(load_efficientnet_lite0().module)
    extractor = PatchFeatureExtractor(backbone, SPEC.appearance.stages).eval()

    def footage(seed: int, start: int) -> list[torch.Tensor]:
        scene = Scene(seed, first=10**9)
        return [decode(scene.jpeg(step)) for step in range(start, start + frames)]

    with torch.inference_mode():
        bank_frames = [image for seed in seeds for image in footage(seed, 0)[::3]]
        features = extractor(to_batch(bank_frames, PREPROCESSING))
    patches = features.permute(0, 2, 3, 1).reshape(-1, features.shape[1])
    keep = torch.randperm(patches.shape[0], generator=torch.Generator().manual_seed(0))[:2048]
    tensors = {
        APPEARANCE_BANK: patches[keep].contiguous(),
        APPEARANCE_NORM: torch.tensor([0.0, 1.0]),
        MOTION_NORM: torch.tensor([0.0, 1.0]),
    }
    scorer = _scorer(tensors, extractor)
    held_out = {seed: footage(seed, frames) for seed in seeds}
    raw = [scorer.stream_scores([str(s)] * frames, images) for s, images in held_out.items()]
    tensors[APPEARANCE_NORM] = _norm(torch.cat([r.appearance for r in raw]))
    tensors[MOTION_NORM] = _norm(torch.cat([r.motion for r in raw]))
    scorer = _scorer(tensors, extractor)
    normal = [
        s.score
        for seed, images in held_out.items()
        for s in scorer.score_frames([str(seed)] * frames, images)
    ]
    return tensors, max(normal) + 1.0


def _scorer(tensors: dict[str, torch.Tensor], extractor: PatchFeatureExtractor) -> OneClassScorer:
    return OneClassScorer(
        spec=SPEC,
        preprocessing=PREPROCESSING,
        threshold=0.0,
        extractor=extractor,
        tensors=tensors,
        device="cpu",
    )


def store_scene_model(s3: Minio, bucket: str) -> str:
    """Fit the scene's model and store it in the registry bucket; its id."""
    [model_id] = store_scene_models(s3, bucket, count=1)
    return model_id


def store_scene_models(
    s3: Minio, bucket: str, *, count: int, metrics: dict[str, float] | None = None
) -> list[str]:
    """Fit the scene's model once and store it ``count`` times under different ids (a
    production model and a shadow copy keep their per-camera state apart), with these fit
    ``metrics`` (none by default); their ids."""
    tensors, threshold = fit()
    artifact = save_safetensors({name: t.contiguous() for name, t in tensors.items()})
    return [_store(s3, bucket, artifact, threshold, metrics or {}) for _ in range(count)]


def _store(
    s3: Minio, bucket: str, artifact: bytes, threshold: float, metrics: dict[str, float]
) -> str:
    model_id = f"m-scene-{uuid.uuid4().hex[:12]}"
    manifest = ModelManifest(
        model_id=model_id,
        name=SPEC.name,
        task="one_class",
        architecture="efficientnet_lite0+patch-knn+flow",
        backbone_weights=load_efficientnet_lite0().provenance,
        preprocessing=PREPROCESSING,
        threshold=threshold,
        k=SPEC.k,
        artifact_key=ModelManifest.artifact_key_for(model_id),
        artifact_sha256=sha256_hex(artifact),
        dataset_sha256=SPEC.dataset.version or "",
        n_images=160,
        spec=SPEC,
        metrics=metrics,
        code_version="test",
        created_at=datetime.now(UTC),
    )
    put_bytes(s3, bucket, manifest.artifact_key, artifact, "application/octet-stream")
    body = manifest.model_dump_json(by_alias=True).encode()
    put_bytes(s3, bucket, ModelManifest.manifest_key(model_id), body, "application/json")
    return model_id


def publish_scenes(
    kafka: KafkaSettings,
    topic: str,
    cameras: dict[str, Scene],
    *,
    steps: int,
    start: datetime,
    first: int = 0,
) -> None:
    """The cameras' frames ``first`` to ``steps`` (excluded) interleaved on partition 0, 10 frames
    a second of capture time from ``start`` (step 0); a later call carries a stream on."""
    producer = make_producer(kafka)
    for step in range(first, steps):
        for camera_id, scene in cameras.items():
            headers = FrameHeaders(
                camera_id=camera_id,
                seq=step,
                captured_at=start + timedelta(seconds=step / 10),
                width=WIDTH,
                height=HEIGHT,
            )
            producer.send(
                topic,
                key=camera_id.encode(),
                value=scene.jpeg(step),
                headers=headers.to_kafka_headers(),
                partition=0,
            )
    producer.flush()
    producer.close()
