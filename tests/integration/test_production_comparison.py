"""A candidate's manifest compares it with the production model of the same cameras."""

from __future__ import annotations

import uuid

import torch
from minio import Minio
from sqlalchemy.orm import Session, sessionmaker

from tests import factories
from tests.unit.classify_support import two_class_frames
from vigil_shared.db.models import ModelAssignmentRow
from vigil_shared.schemas.manifests import ModelManifest
from vigil_shared.settings import CommonSettings
from vigil_trainer.classify.compare import compare_with_production
from vigil_trainer.production import production_model


def registered_classifier(
    s3: Minio, settings: CommonSettings, sessions: sessionmaker[Session]
) -> str:
    metrics = {"macro_f1": 0.5, "auroc": float("nan")}
    manifest = factories.registered_classifier(s3, settings, sessions, metrics=metrics)
    assert "auroc" not in manifest.metrics  # NaN is left out, never stored
    return manifest.model_id


def test_the_production_model_of_the_camera_scores_the_same_held_out_frames(
    s3: Minio, settings: CommonSettings, sessions: sessionmaker[Session]
) -> None:
    camera = f"cam-{uuid.uuid4().hex[:6]}"
    assert production_model(sessions, [camera]) in (None, production_model(sessions, []))
    model_id = registered_classifier(s3, settings, sessions)
    with sessions.begin() as session:
        session.add(
            ModelAssignmentRow(scope=camera, production_model_id=model_id, updated_by="test")
        )
    assert production_model(sessions, [camera]) == (camera, model_id)
    data = two_class_frames()
    own = torch.linspace(0, 1, len(data.val_index))
    comparison = compare_with_production(
        s3=s3,
        bucket=settings.s3.models_bucket,
        sessions=sessions,
        data=data,
        camera_ids=[camera],
        own_scores=own,
        normal_classes=("normal",),
        device="cpu",
    )
    assert comparison is not None
    assert (comparison.model_id, comparison.scope) == (model_id, camera)
    assert 0.0 <= comparison.metrics["auroc"] <= 1.0
    assert set(comparison.delta) == {"auroc", "aupr"}


def test_a_production_model_whose_artifact_is_gone_is_reported_not_fatal(
    s3: Minio, settings: CommonSettings, sessions: sessionmaker[Session]
) -> None:
    camera = f"cam-{uuid.uuid4().hex[:6]}"
    model_id = registered_classifier(s3, settings, sessions)
    s3.remove_object(settings.s3.models_bucket, ModelManifest.manifest_key(model_id))
    with sessions.begin() as session:
        session.add(
            ModelAssignmentRow(scope=camera, production_model_id=model_id, updated_by="test")
        )
    comparison = compare_with_production(
        s3=s3,
        bucket=settings.s3.models_bucket,
        sessions=sessions,
        data=two_class_frames(),
        camera_ids=[camera],
        own_scores=torch.linspace(0, 1, len(two_class_frames().val_index)),
        normal_classes=("normal",),
        device="cpu",
    )
    assert comparison is not None
    assert comparison.model_id == model_id
    assert comparison.unavailable is not None and "NoSuchKey" in comparison.unavailable
    assert comparison.metrics == {} and comparison.delta == {}
