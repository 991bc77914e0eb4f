"""Ensembles of registry models: a ``registry_models`` job registers a candidate that names and
pins its members, inference loads and serves it, and a member that changed is refused."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

import pytest
import torch
from fastapi.testclient import TestClient
from minio import Minio
from sqlalchemy.orm import Session, sessionmaker

from tests.factories import (
    add_job,
    labeled_dataset,
    model_manifest,
    registered_classifier,
    registry_models,
)
from tests.unit.classify_support import tiny_spec
from vigil_shared.datasets import DatasetManifest, read_image
from vigil_shared.db.models import Job, Model, ModelAssignmentRow
from vigil_shared.schemas.jobs import JobStatus
from vigil_shared.schemas.manifests import ModelManifest
from vigil_shared.settings import CommonSettings
from vigil_shared.storage import (
    IntegrityError,
    StorageError,
    get_bytes,
    put_bytes,
    sha256_hex,
)
from vigil_shared.vision.classifier_model import ArtifactMismatchError
from vigil_shared.vision.inferencer import load_frame_model
from vigil_shared.vision.preprocess import decode
from vigil_shared.vision.score_ensemble import ClassProbabilityEnsemble, ScoreEnsemble
from vigil_shared.vision.score_metrics import auroc
from vigil_shared.vision.scoring import FrameScore
from vigil_trainer.cancel import JobCancelled
from vigil_trainer.classify.held_out import held_out, score_held_out
from vigil_trainer.context import TrainerContext
from vigil_trainer.jobs import run_job

HELD_OUT = ("clip2", "clip3")


def fusion_spec(dataset: DatasetManifest, model_ids: list[str], method: str) -> dict[str, Any]:
    return {
        "name": f"ensemble-{method}",
        "task": "classify",
        "dataset": {"name": dataset.name, "version": dataset.version},
        "validation": {"groups": list(HELD_OUT)},
        "fusion": {"kind": "registry_models", "model_ids": model_ids, "method": method},
    }


def run(
    s3: Minio, settings: CommonSettings, sessions: sessionmaker[Session], spec: dict[str, Any]
) -> Job:
    job_id = add_job(sessions, spec=spec)
    ctx = TrainerContext(
        s3=s3, s3_settings=settings.s3, sessions=sessions, device="cpu", batch_size=8
    )
    run_job(ctx, job_id)
    with sessions() as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job


def manifest_of(s3: Minio, settings: CommonSettings, model_id: str) -> ModelManifest:
    raw = get_bytes(s3, settings.s3.models_bucket, ModelManifest.manifest_key(model_id))
    return ModelManifest.model_validate_json(raw)


def served_auroc(
    s3: Minio, settings: CommonSettings, model_id: str, dataset: DatasetManifest
) -> tuple[float, list[Any]]:
    """The loaded model's AUROC on the job's held-out frames, and its frame scores."""
    model = load_frame_model(s3, bucket=settings.s3.models_bucket, model_id=model_id, device="cpu")
    items = [item for item in dataset.items if item.group in HELD_OUT]
    images = [decode(read_image(s3, settings.s3.datasets_bucket, item)) for item in items]
    scored = model.score_frames([item.group for item in items], images)
    positives = torch.tensor([item.label == "abnormal" for item in items])
    return auroc(torch.tensor([s.score for s in scored]), positives), scored


class Recorder:
    """A stand-in member that notes what it is asked; the score is the frame's mean."""

    def __init__(self) -> None:
        self.manifest = model_manifest("m-recorder")
        self.calls: list[tuple[str, ...]] = []
        self.forgotten: list[str] = []

    def score_frames(
        self,
        camera_ids: Sequence[str],
        images: Sequence[torch.Tensor],
        times: Sequence[float] | None = None,
    ) -> list[FrameScore]:
        self.calls.append(tuple(camera_ids))
        return [FrameScore(score=float(i.float().mean()), threshold=0.0) for i in images]

    context_frames = 0

    def forget(self, camera_id: str) -> None:
        self.forgotten.append(camera_id)


def test_held_out_frames_are_scored_clip_by_clip_from_each_clips_first_frame(
    s3: Minio, settings: CommonSettings
) -> None:
    dataset = labeled_dataset(s3, settings.s3.datasets_bucket)
    spec = tiny_spec(dataset={"name": dataset.name}, validation={"groups": list(HELD_OUT)})
    held = held_out(dataset, spec)
    assert [i.sequence for i in held.items] == list(range(12, 24))
    recorder, progress = Recorder(), list[dict[str, Any]]()
    scores = score_held_out(
        {"r": recorder},
        held,
        s3=s3,
        bucket=settings.s3.datasets_bucket,
        progress=progress.append,
        should_stop=lambda: False,
    )
    assert scores["r"].shape == (12,) and progress[-1]["step"] == 12
    assert recorder.calls == [("clip2",) * 6, ("clip3",) * 6]
    assert recorder.forgotten == ["clip2", "clip2", "clip3", "clip3"]
    with pytest.raises(JobCancelled):
        score_held_out(
            {"r": recorder},
            held,
            s3=s3,
            bucket=settings.s3.datasets_bucket,
            progress=progress.append,
            should_stop=lambda: True,
        )


def test_a_score_ensemble_of_a_classifier_and_a_one_class_model_is_registered_and_served(
    s3: Minio, settings: CommonSettings, sessions: sessionmaker[Session]
) -> None:
    bucket = settings.s3.models_bucket
    classifier = registered_classifier(s3, settings, sessions, seed=1).model_id
    [one_class] = registry_models(s3, bucket)
    dataset = labeled_dataset(s3, settings.s3.datasets_bucket)
    job = run(s3, settings, sessions, fusion_spec(dataset, [classifier, one_class], "score"))
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.model_id is not None
    with sessions() as session:
        row = session.get(Model, job.model_id)
        assert row is not None and (row.task, row.stage) == ("ensemble", "candidate")
    manifest = manifest_of(s3, settings, job.model_id)
    assert manifest.ensemble is not None and manifest.ensemble.method == "score"
    members = manifest.ensemble.members
    assert [m.model_id for m in members] == [classifier, one_class]
    assert [m.task for m in members] == ["classify", "one_class"]
    for member in members:
        raw = get_bytes(s3, bucket, ModelManifest.manifest_key(member.model_id))
        assert member.manifest_sha256 == sha256_hex(raw)
        assert member.artifact_sha256 == ModelManifest.model_validate_json(raw).artifact_sha256
        assert member.score_scale > 0 and {"auroc", "aupr"} <= set(member.metrics)
    # A non-ensemble manifest is stored without the field, as before ensembles existed.
    stored = json.loads(get_bytes(s3, bucket, ModelManifest.manifest_key(classifier)))
    assert "ensemble" not in stored and "backbone_weights" in stored
    assert {"auroc", "aupr", "f1", "best_member_auroc", "threshold_calibrated"} <= set(
        manifest.metrics
    )
    assert manifest.evaluation is not None and manifest.evaluation.n_validation == 12
    assert manifest.backbone_weights is None and manifest.threshold >= 0

    model = load_frame_model(s3, bucket=bucket, model_id=job.model_id, device="cpu")
    assert isinstance(model, ScoreEnsemble)
    value, scored = served_auroc(s3, settings, job.model_id, dataset)
    # Inference scores the held-out frames exactly as the trainer measured them.
    assert value == pytest.approx(manifest.metrics["auroc"])
    assert all(s.score >= 0 and s.threshold == manifest.threshold for s in scored)


def test_the_api_shows_an_ensembles_members_as_its_lineage(
    api: TestClient, s3: Minio, settings: CommonSettings, sessions: sessionmaker[Session]
) -> None:
    a = registered_classifier(s3, settings, sessions, seed=1).model_id
    b = registered_classifier(s3, settings, sessions, seed=2).model_id
    dataset = labeled_dataset(s3, settings.s3.datasets_bucket)
    job = run(s3, settings, sessions, fusion_spec(dataset, [a, b], "score"))
    detail = api.get(f"/api/v1/models/{job.model_id}")
    assert detail.status_code == 200, detail.text
    body = detail.json()
    assert (body["task"], body["members"]) == ("ensemble", [a, b])
    assert api.get(f"/api/v1/models/{a}").json()["members"] == []


def test_a_member_that_changed_since_the_fit_is_refused(
    s3: Minio, settings: CommonSettings, sessions: sessionmaker[Session]
) -> None:
    bucket = settings.s3.models_bucket
    a = registered_classifier(s3, settings, sessions, seed=1).model_id
    b = registered_classifier(s3, settings, sessions, seed=2).model_id
    dataset = labeled_dataset(s3, settings.s3.datasets_bucket)
    job = run(s3, settings, sessions, fusion_spec(dataset, [a, b], "score"))
    assert job.status == JobStatus.SUCCEEDED and job.model_id is not None
    # a's artifact corrupted in place (its manifest intact): the sha256 check refuses it.
    artifact_key = manifest_of(s3, settings, a).artifact_key
    artifact = get_bytes(s3, bucket, artifact_key)
    put_bytes(s3, bucket, artifact_key, artifact[:-8] + b"\0" * 8, "application/octet-stream")
    with pytest.raises(IntegrityError, match="does not match its recorded sha256"):
        load_frame_model(s3, bucket=bucket, model_id=job.model_id, device="cpu")
    put_bytes(s3, bucket, artifact_key, artifact, "application/octet-stream")
    load_frame_model(s3, bucket=bucket, model_id=job.model_id, device="cpu")
    # a removed from the registry's bucket: the ensemble says which member is gone.
    a_manifest = get_bytes(s3, bucket, ModelManifest.manifest_key(a))
    s3.remove_object(bucket, ModelManifest.manifest_key(a))
    with pytest.raises(StorageError, match=f"member {a} is no longer in the registry"):
        load_frame_model(s3, bucket=bucket, model_id=job.model_id, device="cpu")
    put_bytes(s3, bucket, ModelManifest.manifest_key(a), a_manifest, "application/json")
    # Re-registered: another threshold in b's manifest.
    edited = manifest_of(s3, settings, b).model_copy(update={"threshold": 0.25})
    key = ModelManifest.manifest_key(b)
    put_bytes(s3, bucket, key, edited.model_dump_json(by_alias=True).encode(), "application/json")
    with pytest.raises(IntegrityError, match=f"member {b} is not the model the ensemble"):
        load_frame_model(s3, bucket=bucket, model_id=job.model_id, device="cpu")
    # b itself still loads: only the ensemble that pinned the old one refuses it.
    load_frame_model(s3, bucket=bucket, model_id=b, device="cpu")
    # The ensemble's own manifest edited: its normalisations no longer match its artifact.
    ensemble = manifest_of(s3, settings, job.model_id)
    assert ensemble.ensemble is not None
    shifted = ensemble.ensemble.members[0].model_copy(update={"score_center": 9.0})
    members = (shifted, *ensemble.ensemble.members[1:])
    edited_ensemble = ensemble.model_copy(
        update={"ensemble": ensemble.ensemble.model_copy(update={"members": members})}
    )
    body = edited_ensemble.model_dump_json(by_alias=True).encode()
    put_bytes(s3, bucket, ModelManifest.manifest_key(job.model_id), body, "application/json")
    with pytest.raises(ArtifactMismatchError, match="normalisations differ"):
        load_frame_model(s3, bucket=bucket, model_id=job.model_id, device="cpu")


def test_a_probability_ensemble_labels_frames_with_the_members_classes(
    s3: Minio, settings: CommonSettings, sessions: sessionmaker[Session]
) -> None:
    a = registered_classifier(s3, settings, sessions, seed=1).model_id
    b = registered_classifier(s3, settings, sessions, seed=2).model_id
    camera = f"cam-{uuid.uuid4().hex[:6]}"
    with sessions.begin() as session:
        session.add(ModelAssignmentRow(scope=camera, production_model_id=a, updated_by="test"))
    dataset = labeled_dataset(s3, settings.s3.datasets_bucket, camera=camera)
    job = run(s3, settings, sessions, fusion_spec(dataset, [a, b], "probability"))
    assert job.status == JobStatus.SUCCEEDED and job.model_id is not None, job.error
    manifest = manifest_of(s3, settings, job.model_id)
    # Compared with the camera's production model (member a) on the same held-out frames.
    assert manifest.comparison is not None and manifest.comparison.model_id == a
    assert manifest.ensemble is not None
    member_a = manifest.ensemble.members[0].metrics
    assert manifest.comparison.metrics["auroc"] == pytest.approx(member_a["auroc"])
    assert manifest.comparison.delta["auroc"] == pytest.approx(
        manifest.metrics["auroc"] - member_a["auroc"]
    )
    assert manifest.classes == ("abnormal", "normal") and manifest.architecture.startswith("prob")
    assert manifest.ensemble is not None
    assert all((m.score_center, m.score_scale) == (0.0, 1.0) for m in manifest.ensemble.members)
    value, scored = served_auroc(s3, settings, job.model_id, dataset)
    assert value == pytest.approx(manifest.metrics["auroc"])
    assert all(0.0 <= s.score <= 1.0 and s.label in manifest.classes for s in scored)
    model = load_frame_model(
        s3, bucket=settings.s3.models_bucket, model_id=job.model_id, device="cpu"
    )
    assert isinstance(model, ClassProbabilityEnsemble)


def test_members_that_cannot_be_fused_fail_the_job_with_the_reason(
    s3: Minio, settings: CommonSettings, sessions: sessionmaker[Session]
) -> None:
    a = registered_classifier(s3, settings, sessions, seed=1).model_id
    other = registered_classifier(
        s3, settings, sessions, seed=2, classes=("intrusion", "normal")
    ).model_id
    dataset = labeled_dataset(s3, settings.s3.datasets_bucket)
    unknown = run(s3, settings, sessions, fusion_spec(dataset, [a, "m-nope"], "score"))
    assert unknown.status == JobStatus.FAILED
    assert unknown.error is not None and "m-nope is not in the registry" in unknown.error
    mixed = run(s3, settings, sessions, fusion_spec(dataset, [a, other], "probability"))
    assert mixed.status == JobStatus.FAILED
    assert mixed.error is not None and "one class list" in mixed.error


def test_the_api_refuses_a_fusion_of_unknown_or_incompatible_models_before_queueing(
    api: TestClient, s3: Minio, settings: CommonSettings, sessions: sessionmaker[Session]
) -> None:
    a = registered_classifier(s3, settings, sessions, seed=1).model_id
    other = registered_classifier(
        s3, settings, sessions, seed=2, classes=("intrusion", "normal")
    ).model_id
    dataset = labeled_dataset(s3, settings.s3.datasets_bucket)

    def refusal(model_ids: list[str], method: str) -> str:
        response = api.post("/api/v1/jobs", json=fusion_spec(dataset, model_ids, method))
        assert response.status_code == 422, response.text
        (error,) = response.json()["errors"]
        assert error["field"] == "body.fusion.model_ids"
        message: str = error["message"]
        return message

    assert "m-nope is not in the registry" in refusal([a, "m-nope"], "score")
    assert "one class list" in refusal([a, other], "probability")
    assert "more than once" in refusal([a, a], "score")
    with_search = fusion_spec(dataset, [a, other], "score") | {
        "search": {
            "trials": 2,
            "space": {"hyper.lr": {"type": "float", "low": 0.001, "high": 0.01}},
        }
    }
    response = api.post("/api/v1/jobs", json=with_search)
    assert response.status_code == 422 and "trains nothing" in response.text
