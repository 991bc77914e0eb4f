"""Test data, made on the spot, in one place: frames, cameras, jobs, models, events, datasets
and dataset archives.

``make_*`` builds an unsaved ORM row with every required column filled (any column overridden
by keyword); ``add_*`` stores rows (and returns their ids); ``*_body`` is a request body for the
API.
Ids are random, so the objects of one test never meet another's in S3 or on Kafka (the database
is emptied before every integration test anyway).
"""

from __future__ import annotations

import io
import json
import tarfile
import uuid
import zipfile
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import torch
from celery import Celery
from fastapi.testclient import TestClient
from kafka import KafkaProducer
from kafka.consumer.fetcher import ConsumerRecord
from minio import Minio
from PIL import Image, ImageDraw
from safetensors.torch import save as save_safetensors
from sqlalchemy.orm import Session, sessionmaker
from torchvision.io import encode_jpeg

from tests.unit.classify_support import random_weights, tiny_spec
from vigil_inference.frames import Frame
from vigil_shared.datasets import DatasetManifest, DatasetRef, NewImage, write_dataset
from vigil_shared.db.models import Base, Camera, Dataset, Event, Job, Model
from vigil_shared.kafka import make_producer
from vigil_shared.queues import RUN_JOB_TASK, TASK_QUEUE
from vigil_shared.schemas.events import (
    EventMessage,
    EventPhase,
    ModelRef,
    event_id_for,
    message_id_for,
)
from vigil_shared.schemas.frames import FrameHeaders
from vigil_shared.schemas.jobs import JobStatus
from vigil_shared.schemas.manifests import ModelManifest, Preprocessing, WeightsProvenance
from vigil_shared.schemas.one_class import OneClassSpec
from vigil_shared.settings import CommonSettings, KafkaSettings
from vigil_shared.storage import put_bytes, sha256_hex
from vigil_shared.vision.backbones import (
    LITE0_PREPROCESSING,
    FrameEmbedder,
    load_efficientnet_lite0,
)
from vigil_shared.vision.catalog import build_classifier
from vigil_shared.vision.knn import BANK_TENSOR
from vigil_shared.vision.preprocess import decode, to_batch
from vigil_trainer.registry import Candidate, register

T0 = datetime(2026, 11, 28, 12, tzinfo=UTC)
SHA = "0" * 64
MODEL_ARTIFACT = b"model weights " * 64  # what ``add_stored_model`` stores as the artifact


def new_id(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:8]}"


def add_rows(sessions: sessionmaker[Session], rows: Sequence[Base]) -> None:
    """Store ``rows`` in one transaction."""
    with sessions.begin() as session:
        session.add_all(rows)


# --- frames -------------------------------------------------------------------------------


def scene_jpeg(step: int, *, size: tuple[int, int] = (180, 120)) -> bytes:
    """A grey walkway with a small figure that moves one step to the right per frame."""
    image = Image.new("L", size, 110)
    draw = ImageDraw.Draw(image)
    x = 10 + 4 * step
    draw.rectangle((x, 50, x + 8, 80), fill=40)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def send_frame(
    producer: KafkaProducer,
    topic: str,
    *,
    camera_id: str,
    seq: int,
    payload: bytes,
    headers: list[tuple[str, bytes]] | None = None,
) -> Any:
    """Send one frame captured at ``T0 + seq / 10`` s; returns the send's future."""
    meta = FrameHeaders(
        camera_id=camera_id,
        seq=seq,
        captured_at=T0 + timedelta(seconds=seq / 10),
        width=180,
        height=120,
    )
    return producer.send(
        topic,
        key=camera_id.encode(),
        value=payload,
        headers=meta.to_kafka_headers() if headers is None else headers,
    )


def consumed_frame(
    camera_id: str, offset: int, payload: bytes = b"", *, partition: int = 0
) -> Frame:
    """A 180x120 frame as the inference worker holds it after a poll: the Kafka record at
    ``offset`` and its parsed headers (seq ``offset``, captured ``offset`` seconds after T0)."""
    record = ConsumerRecord(
        "frames", partition, 0, offset, 0, 0, camera_id.encode(), payload, [], None, 0, 0, 0
    )
    headers = FrameHeaders(
        camera_id=camera_id,
        seq=offset,
        captured_at=T0 + timedelta(seconds=offset),
        width=180,
        height=120,
    )
    return Frame(record, headers)


# --- cameras ------------------------------------------------------------------------------


def camera_body(camera_id: str | None = None, **fields: Any) -> dict[str, Any]:
    """A camera as the API takes it (an id, a name, an RTSP source); ``fields`` add or override."""
    camera_id = camera_id or new_id("cam")
    body = {"id": camera_id, "name": f"camera {camera_id}", "source": "rtsp://10.0.0.7/main"}
    return body | fields


def create_camera(api: TestClient, **fields: Any) -> str:
    """A camera registered through the API (``camera_body`` with ``fields``); its id."""
    body = camera_body(**fields)
    response = api.post("/api/v1/cameras", json=body)
    assert response.status_code == 201, response.text
    return str(body["id"])


def make_camera(camera_id: str | None = None, **fields: Any) -> Camera:
    values: dict[str, Any] = {
        "id": camera_id or new_id("cam"),
        "name": "camera",
        "source": "rtsp://10.0.0.9/main",
        "target_fps": 5.0,
        "max_width": 640,
        "max_height": 480,
        "jpeg_quality": 85,
    }
    return Camera(**(values | fields))


# --- jobs ---------------------------------------------------------------------------------


def add_job(
    sessions: sessionmaker[Session],
    *,
    spec: dict[str, Any] | None = None,
    name: str | None = None,
    task: str | None = None,
    status: JobStatus = JobStatus.QUEUED,
    **fields: Any,
) -> uuid.UUID:
    """A job row (name and task from ``spec`` unless given; ``fields``: any other column); its
    id."""
    spec = spec if spec is not None else {}
    job = Job(
        name=name or spec.get("name", "job"),
        task=task or spec.get("task", "classify"),
        spec=spec,
        status=status,
        **fields,
    )
    with sessions.begin() as session:
        session.add(job)
        session.flush()
        return job.id


def send_job(job_id: uuid.UUID) -> None:
    """Send a job's task to the training queue by name, as the API does when it queues a job."""
    with Celery(broker=CommonSettings().redis.url) as app:
        app.send_task(
            RUN_JOB_TASK, kwargs={"job_id": str(job_id)}, queue=TASK_QUEUE, task_id=str(job_id)
        )


def quick_one_class_spec(dataset: DatasetManifest) -> dict[str, Any]:
    """A one_class job spec that trains in seconds on a CPU (small frames, a small appearance
    bank, no motion), for ``scene_dataset``'s frames."""
    return {
        "name": "quick",
        "task": "one_class",
        "dataset": {"name": dataset.name, "version": dataset.version},
        "image_size": 64,
        "appearance": {"bank_size": 64, "whiten_dim": 0, "frame_stride": 1},
        "motion": None,
    }


# --- models -------------------------------------------------------------------------------


def make_model(model_id: str | None = None, **fields: Any) -> Model:
    """A registry row with no artifact behind it."""
    model_id = model_id or new_id("model")
    values: dict[str, Any] = {
        "id": model_id,
        "name": "walkway",
        "task": "one_class",
        "architecture": "efficientnet_lite0",
        "artifact_key": f"{model_id}/model.safetensors",
        "artifact_sha256": "0" * 64,
        "manifest_key": f"{model_id}/manifest.json",
        "dataset_sha256": "1" * 64,
        "threshold": 0.5,
    }
    return Model(**(values | fields))


def add_model(sessions: sessionmaker[Session], **fields: Any) -> str:
    """A registry row (``make_model``) stored; its id."""
    row = make_model(**fields)
    add_rows(sessions, [row])
    return row.id


def add_stored_model(
    sessions: sessionmaker[Session],
    s3: Minio,
    *,
    dataset_version: str = "a" * 64,
    metrics: dict[str, float] | None = None,
    groups: list[str] | None = None,
    parent: str | None = None,
) -> str:
    """A classify registry row with its artifact (``MODEL_ARTIFACT``) and a manifest naming its
    validation groups stored, as the trainer leaves them; its id."""
    model_id = new_id("model")
    bucket = CommonSettings().s3.models_bucket
    artifact_key, manifest_key = f"{model_id}/model.safetensors", f"{model_id}/manifest.json"
    put_bytes(s3, bucket, artifact_key, MODEL_ARTIFACT, "application/octet-stream")
    manifest = {"model_id": model_id, "evaluation": {"validation_groups": groups or ["clip-1"]}}
    put_bytes(s3, bucket, manifest_key, json.dumps(manifest).encode(), "x/json")
    return add_model(
        sessions,
        model_id=model_id,
        task="classify",
        artifact_sha256=sha256_hex(MODEL_ARTIFACT),
        dataset_sha256=dataset_version,
        dataset_name="walkway",
        dataset_version=dataset_version,
        parent_model_id=parent,
        metrics=metrics or {"auroc": 0.9},
    )


def model_manifest(
    model_id: str,
    task: str = "classify",
    classes: tuple[str, ...] = ("abnormal", "normal"),
    **extra: object,
) -> ModelManifest:
    """A manifest that validates, with nothing stored behind it."""
    fields: dict[str, object] = {
        "model_id": model_id,
        "name": "t",
        "task": task,
        "architecture": "efficientnet_lite0",
        "threshold": 0.5,
        "classes": classes,
        "normal_classes": ("normal",),
        "artifact_key": f"models/{model_id}/model.safetensors",
        "artifact_sha256": SHA,
        "dataset_sha256": SHA,
        "n_images": 1,
        "spec": tiny_spec(),
        "metrics": {},
        "code_version": "test",
        "created_at": datetime.now(UTC),
    }
    if task != "ensemble":
        fields["backbone_weights"] = WeightsProvenance(name="w", source="test", sha256=SHA)
        fields["preprocessing"] = LITE0_PREPROCESSING
    return ModelManifest.model_validate(fields | extra)


def registered_classifier(
    s3: Minio,
    settings: CommonSettings,
    sessions: sessionmaker[Session],
    *,
    seed: int = 1,
    classes: tuple[str, str] = ("abnormal", "normal"),
    metrics: dict[str, float] | None = None,
) -> ModelManifest:
    """A tiny random-weight Lite0 classifier registered as a training job would (its job row,
    artifact, manifest and registry row); its manifest."""
    job_id = add_job(sessions, name="member", status=JobStatus.SUCCEEDED)
    weights = random_weights()
    torch.manual_seed(seed)
    net = build_classifier("efficientnet_lite0", n_classes=2, pretrained=weights.state_dict)
    candidate = Candidate(
        spec=tiny_spec(),
        architecture="efficientnet_lite0",
        tensors=net.state_dict(),
        threshold=0.5,
        provenance=weights.provenance,
        preprocessing=Preprocessing(image_size=32, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)),
        dataset_sha256="a" * 64,
        n_images=32,
        metrics=metrics or {},
        classes=classes,
        normal_classes=("normal",),
        head="linear",
    )
    bucket = settings.s3.models_bucket
    return register(s3=s3, bucket=bucket, sessions=sessions, job_id=job_id, candidate=candidate)


SCENE_BANK_SIZE = 96  # the image size of ``scene_bank``'s model


def scene_bank(frames: int = 12) -> tuple[bytes, ModelManifest]:
    """A kNN bank of the test scene's frames (``scene_jpeg``) as a one_class artifact, and a
    manifest template for it, written the way ``vigil_shared.vision.inferencer`` reads them."""
    backbone = load_efficientnet_lite0()
    prep = backbone.preprocessing.model_copy(update={"image_size": SCENE_BANK_SIZE})
    with torch.inference_mode():
        images = [decode(scene_jpeg(step)) for step in range(frames)]
        bank = FrameEmbedder(backbone.module)(to_batch(images, prep)).contiguous()
    artifact = save_safetensors({BANK_TENSOR: bank})
    spec = OneClassSpec(name="inference-test", dataset=DatasetRef(name="scene"))
    template = ModelManifest(
        model_id="template",
        name=spec.name,
        task="one_class",
        architecture="efficientnet_lite0+knn",
        backbone_weights=backbone.provenance,
        preprocessing=prep,
        threshold=1.0,
        k=1,
        artifact_key="",
        artifact_sha256=sha256_hex(artifact),
        dataset_sha256=sha256_hex(b"scene"),
        n_images=frames,
        spec=spec,
        metrics={},
        code_version="test",
        created_at=datetime.now(UTC),
    )
    return artifact, template


def registry_models(s3: Minio, bucket: str, *, count: int = 1) -> list[str]:
    """``count`` models (the same ``scene_bank`` under different ids) stored in ``bucket``, with
    no registry row; their ids. Inference tests load them through the real loading path."""
    artifact, template = scene_bank()
    ids = []
    for _ in range(count):
        model_id = f"m-test-{uuid.uuid4().hex[:12]}"
        key = ModelManifest.artifact_key_for(model_id)
        put_bytes(s3, bucket, key, artifact, "application/octet-stream")
        manifest = template.model_copy(update={"model_id": model_id, "artifact_key": key})
        body = manifest.model_dump_json(by_alias=True).encode()
        put_bytes(s3, bucket, ModelManifest.manifest_key(model_id), body, "application/json")
        ids.append(model_id)
    return ids


# --- events -------------------------------------------------------------------------------


def make_event(camera_id: str, minute: int = 0, **values: Any) -> Event:
    """An ended event of ``camera_id`` that started ``minute`` minutes after ``T0``; scores rise
    by 0.01 a minute."""
    at = T0 + timedelta(minutes=minute)
    row: dict[str, Any] = {
        "event_id": uuid.uuid4(),
        "camera_id": camera_id,
        "frame_seq": minute * 10,
        "captured_at": at + timedelta(seconds=2),
        "detected_at": at + timedelta(seconds=2, milliseconds=80),
        "score": 1.0 + minute / 100,
        "threshold": 0.9,
        "model_id": "model-a",
        "model_kind": "registry",
        "started_at": at,
        "ended_at": at + timedelta(seconds=5),
        "status": "ended",
    }
    return Event(**(row | values))


def add_events(sessions: sessionmaker[Session], rows: Sequence[Event]) -> list[str]:
    """Store ``rows`` in one transaction; their event ids as strings, in order."""
    add_rows(sessions, rows)
    return [str(r.event_id) for r in rows]


def event_lifecycle(camera_id: str, first_seq: int) -> list[EventMessage]:
    """An event's messages: start at first+2 (peak 2.0), update at first+6 (peak 3.5 at
    first+5), end at first+12."""

    def at(seq: int) -> datetime:
        return T0 + timedelta(seconds=seq / 10)

    event_id = event_id_for(
        camera_id=camera_id, frame_seq=first_seq, captured_at=at(first_seq), model_id="m-test"
    )
    steps = [
        (EventPhase.START, first_seq + 2, 2.0, first_seq + 1, 2.0),
        (EventPhase.UPDATE, first_seq + 6, 1.5, first_seq + 5, 3.5),
        (EventPhase.END, first_seq + 12, 0.2, first_seq + 5, 3.5),
    ]
    return [
        EventMessage(
            message_id=message_id_for(event_id=event_id, phase=phase, frame_seq=seq),
            event_id=event_id,
            phase=phase,
            camera_id=camera_id,
            frame_seq=seq,
            captured_at=at(seq),
            started_at=at(first_seq),
            ended_at=at(first_seq + 7) if phase is EventPhase.END else None,
            detected_at=at(seq) + timedelta(milliseconds=80),
            score=score,
            peak_score=peak,
            peak_frame_seq=peak_seq,
            peak_captured_at=at(peak_seq),
            threshold=1.0,
            model=ModelRef(id="m-test", kind="registry"),
            snapshot_key=f"events/{camera_id}/{event_id}/overlay.jpg",
        )
        for phase, seq, score, peak_seq, peak in steps
    ]


def send_current_frames(kafka: KafkaSettings, camera_id: str, count: int = 1) -> None:
    """``count`` frames of the scene (seq 0..count-1) captured now, as ingest sends them."""
    producer = make_producer(kafka)
    for seq in range(count):
        meta = FrameHeaders(
            camera_id=camera_id, seq=seq, captured_at=datetime.now(UTC), width=180, height=120
        )
        producer.send(
            kafka.topics.frames, key=camera_id.encode(), value=scene_jpeg(seq),
            headers=meta.to_kafka_headers(),
        )  # fmt: skip
    producer.flush()
    producer.close()


def send_events(kafka: KafkaSettings, topic: str, messages: list[EventMessage]) -> None:
    producer = make_producer(kafka)
    for message in messages:
        producer.send(topic, key=message.camera_id.encode(), value=message.to_json_bytes())
    producer.flush()
    producer.close()


# --- datasets -----------------------------------------------------------------------------


def add_dataset(
    sessions: sessionmaker[Session], camera_ids: list[str], *, name: str = "walkway", **fields: Any
) -> str:
    """A recorded version of dataset ``name`` made of these cameras' frames (a row only, no
    manifest in S3); its version."""
    version = uuid.uuid4().hex * 2
    values: dict[str, Any] = {
        "name": name,
        "version": version,
        "source": "camera",
        "manifest_key": f"datasets/{name}/{version}/manifest.json",
        "n_items": 1,
        "label_counts": {"normal": 1},
        "camera_ids": camera_ids,
        "owner_scope": camera_ids,
        "created_by": "test",
    }
    add_rows(sessions, [Dataset(**(values | fields))])
    return version


def labeled_dataset(
    s3: Minio,
    bucket: str,
    *,
    n: int = 24,
    seed: int = 3,
    abnormal: str = "abnormal",
    every: int = 3,
    run: int = 6,
    camera: str = "gate-1",
) -> DatasetManifest:
    """``n`` random 64x48 frames of ``camera`` in four clips, stored: every ``every``-th frame is
    ``abnormal`` (it carries a bright square), the others ``normal``; consecutive frames go to
    one clip in runs of ``run`` (clip ``(i // run) % 4``)."""
    g = torch.Generator().manual_seed(seed)
    images = []
    for i in range(n):
        image = torch.randint(0, 120, (3, 48, 64), dtype=torch.uint8, generator=g)
        label = abnormal if i % every == 0 else "normal"
        if label == abnormal:
            image[:, 12:36, 16:48] = 250
        images.append(
            NewImage(
                data=encode_jpeg(image).numpy().tobytes(),
                extension=".jpg",
                group=f"clip{(i // run) % 4}",
                label=label,
                sequence=i,
                camera_id=camera,
            )
        )
    name = new_id("labeled")
    return write_dataset(s3, bucket, name=name, images=images, source="upload")


def scene_dataset(s3: Minio, bucket: str) -> DatasetManifest:
    """Five unlabelled (normal) clips of six ``scene_jpeg`` frames, stored."""
    images = [
        NewImage(data=scene_jpeg(step), extension=".jpg", group=f"clip{clip}", sequence=step)
        for clip in range(5)
        for step in range(6)
    ]
    return write_dataset(s3, bucket, name=new_id("scene"), images=images, source="import")


def camera_dataset(
    sessions: sessionmaker[Session],
    s3: Minio,
    bucket: str,
    *,
    camera_id: str | None,
    captured_at: datetime,
) -> Dataset:
    """Three frames of ``camera_id`` captured from ``captured_at`` on, stored in S3 and recorded
    (``camera_id=None``: an upload, no camera's frames); the row."""
    images = [
        NewImage(
            data=scene_jpeg(step),
            extension=".jpg",
            group=camera_id or "upload",
            label="normal",
            sequence=step,
            camera_id=camera_id,
            captured_at=captured_at + timedelta(seconds=step),
        )
        for step in range(3)
    ]
    name = new_id("ds")
    manifest = write_dataset(
        s3, bucket, name=name, images=images, source="camera" if camera_id else "upload"
    )
    row = Dataset(
        name=name,
        version=manifest.version,
        source=manifest.source,
        manifest_key=f"datasets/{name}/{manifest.version}/manifest.json",
        n_items=len(manifest.items),
        label_counts=manifest.label_counts,
        camera_ids=manifest.camera_ids,
        created_by="test",
    )
    add_rows(sessions, [row])
    return row


# --- dataset archives, good and hostile, built in memory ----------------------------------

Entries = dict[str, bytes]


def zip_bytes(entries: Entries, *, symlinks: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o120777 << 16) | 0x20
            archive.writestr(info, target)
    return buffer.getvalue()


def tar_bytes(
    entries: Entries, *, compress: bool = True, symlinks: dict[str, str] | None = None
) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz" if compress else "w") as archive:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for name, target in (symlinks or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            archive.addfile(info)
    return buffer.getvalue()


def good_entries(normal: int = 3, abnormal: int = 2) -> Entries:
    entries = {f"normal/clip01_{n:04d}.jpg": scene_jpeg(n) for n in range(normal)}
    entries |= {f"abnormal/clip02/{n:03d}.jpg": scene_jpeg(20 + n) for n in range(abnormal)}
    return entries


def truncated_jpeg() -> bytes:
    data = scene_jpeg(5)
    return data[: len(data) // 2]


def bomb_entry(megabytes: int = 8) -> bytes:
    return b"\0" * (megabytes * 1024 * 1024)
