"""The scene stream is on by default only from ``scene.min_groups`` normal groups: a job whose
dataset holds fewer fits and registers the model without it, says so in its log and its
metrics, and a retrain of that model asks for the stream again."""

from __future__ import annotations

import pytest
from minio import Minio
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.integration.test_one_class_scene_kinds import SMALL, normal_dataset
from tests.integration.test_registry_fusion import run
from vigil_shared.db.models import JobLog
from vigil_shared.schemas.jobs import JobStatus
from vigil_shared.schemas.manifests import ModelManifest
from vigil_shared.schemas.one_class import (
    MIN_SCENE_GROUPS,
    SCENE_LEFT_OUT,
    OneClassSpec,
    as_requested,
)
from vigil_shared.settings import CommonSettings
from vigil_shared.storage import get_bytes

pytestmark = pytest.mark.slow


def test_a_dataset_of_fewer_groups_than_asked_is_fitted_without_the_scene_stream(
    s3: Minio, settings: CommonSettings, sessions: sessionmaker[Session]
) -> None:
    dataset = normal_dataset(s3, settings.s3.datasets_bucket)  # four normal clips
    assert len({item.group for item in dataset.items}) < MIN_SCENE_GROUPS
    spec = SMALL | {
        "name": "walkway",
        "task": "one_class",
        "dataset": {"name": dataset.name, "version": dataset.version},
    }
    assert OneClassSpec.model_validate(spec).scene is not None  # asked for, by default
    job = run(s3, settings, sessions, spec)
    assert job.status == JobStatus.SUCCEEDED and job.model_id is not None, job.error
    with sessions() as session:
        logs = session.scalars(select(JobLog.message).where(JobLog.job_id == job.id)).all()
    raw = get_bytes(s3, settings.s3.models_bucket, ModelManifest.manifest_key(job.model_id))
    manifest = ModelManifest.model_validate_json(raw)
    assert isinstance(manifest.spec, OneClassSpec) and manifest.spec.scene is None
    assert "scene" not in manifest.architecture
    assert manifest.metrics[SCENE_LEFT_OUT] == MIN_SCENE_GROUPS
    assert manifest.metrics["n_holdout_clips"] == 4
    assert any(
        "scene stream left out" in line and "4 normal group(s) calibrate" in line for line in logs
    )
    stored = manifest.model_dump(mode="json", by_alias=True)
    again = as_requested(stored["spec"], stored["metrics"])
    assert again["scene"] == {"min_groups": MIN_SCENE_GROUPS}  # a retrain asks again
