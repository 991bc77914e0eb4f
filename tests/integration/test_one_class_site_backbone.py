"""A one_class model on a backbone fine-tuned on the site: a registry classify model's body
gives the patch features, travels in the one_class artifact (the model scores after its parent
is gone), and a missing, wrong or tampered parent is refused with the reason."""

from __future__ import annotations

import pytest
import torch
from fastapi.testclient import TestClient
from minio import Minio
from sqlalchemy.orm import Session, sessionmaker

from tests.factories import add_job, registered_classifier, scene_dataset
from vigil_shared.datasets import DatasetManifest, DatasetRef
from vigil_shared.schemas.jobs import JobStatus
from vigil_shared.schemas.manifests import ModelManifest
from vigil_shared.schemas.one_class import OneClassSpec
from vigil_shared.settings import CommonSettings
from vigil_shared.storage import put_bytes
from vigil_shared.vision.backbones import WeightsError
from vigil_shared.vision.inferencer import load_frame_model, read_artifact, read_manifest
from vigil_shared.vision.one_class_model import APPEARANCE_BANK
from vigil_shared.vision.site_backbone import BACKBONE_PREFIX
from vigil_trainer.one_class import fit_one_class
from vigil_trainer.one_class.backbone import one_class_backbone
from vigil_trainer.one_class.fit import OneClassFit
from vigil_trainer.registry import Candidate, register


def spec_for(dataset: DatasetManifest, backbone_model_id: str | None) -> OneClassSpec:
    return OneClassSpec.model_validate(
        {
            "name": "site",
            "dataset": DatasetRef(name=dataset.name, version=dataset.version),
            "image_size": 64,
            "appearance": {"weight": 1.0, "whiten_dim": 0, "bank_size": 64, "frame_stride": 1},
            "motion": None,
            "backbone_model_id": backbone_model_id,
        }
    )


def fit(
    s3: Minio, settings: CommonSettings, spec: OneClassSpec, dataset: DatasetManifest
) -> OneClassFit:
    backbone = one_class_backbone(spec, s3=s3, models_bucket=settings.s3.models_bucket)
    return fit_one_class(
        s3=s3,
        bucket=settings.s3.datasets_bucket,
        spec=spec,
        dataset=dataset,
        device="cpu",
        batch_size=8,
        progress=lambda _: None,
        should_stop=lambda: False,
        backbone=backbone,
    )


def test_the_fine_tuned_body_gives_the_features_and_travels_with_the_model(
    s3: Minio, settings: CommonSettings, sessions: sessionmaker[Session]
) -> None:
    bucket = settings.s3.models_bucket
    parent_id = registered_classifier(s3, settings, sessions).model_id
    parent = read_manifest(s3, bucket=bucket, model_id=parent_id)
    body = {
        k.removeprefix("body."): v
        for k, v in read_artifact(s3, bucket=bucket, manifest=parent).items()
        if k.startswith("body.")
    }
    dataset = scene_dataset(s3, settings.s3.datasets_bucket)
    spec = spec_for(dataset, parent_id)
    site = fit(s3, settings, spec, dataset)
    imagenet = fit(s3, settings, spec_for(dataset, None), dataset)

    stored = {
        k.removeprefix(BACKBONE_PREFIX): v
        for k, v in site.tensors.items()
        if k.startswith(BACKBONE_PREFIX)
    }
    assert stored and stored.keys() == {k for k in body if not k.startswith("_fc.")}
    assert all(torch.equal(stored[k], body[k]) for k in stored)
    assert site.provenance.sha256 == parent.artifact_sha256 and parent_id in site.provenance.name
    assert not any(k.startswith(BACKBONE_PREFIX) for k in imagenet.tensors)
    assert not torch.equal(site.tensors[APPEARANCE_BANK], imagenet.tensors[APPEARANCE_BANK])

    job_id = add_job(sessions, name="site", task="one_class", status=JobStatus.SUCCEEDED)
    manifest = register(
        s3=s3,
        bucket=bucket,
        sessions=sessions,
        job_id=job_id,
        candidate=Candidate(
            spec=spec,
            architecture="efficientnet_lite0+patch-knn",
            tensors=site.tensors,
            threshold=site.threshold,
            provenance=site.provenance,
            preprocessing=site.preprocessing,
            dataset_sha256=site.dataset_sha256,
            n_images=site.n_images,
            metrics=site.metrics,
            k=spec.k,
            parent_model_id=parent_id,
        ),
    )
    assert manifest.parent_model_id == parent_id
    # The parent goes away; the one_class model does not need it.
    s3.remove_object(bucket, ModelManifest.manifest_key(parent_id))
    s3.remove_object(bucket, parent.artifact_key)
    model = load_frame_model(s3, bucket=bucket, model_id=manifest.model_id, device="cpu")
    frames = [torch.full((3, 120, 180), 110, dtype=torch.uint8)] * 2
    scores = model.score_frames(["cam", "cam"], frames)
    assert all(s.score == s.score and s.score >= 0 for s in scores)  # finite, never negative

    # The wrong kind of parent, a missing one and a tampered one are refused, saying why.
    with pytest.raises(WeightsError, match="is a one_class model; backbone_model_id names"):
        fit(s3, settings, spec_for(dataset, manifest.model_id), dataset)
    with pytest.raises(WeightsError, match=f"backbone model {parent_id} cannot be read"):
        fit(s3, settings, spec, dataset)
    tampered_id = registered_classifier(s3, settings, sessions).model_id
    tampered = read_manifest(s3, bucket=bucket, model_id=tampered_id)
    put_bytes(s3, bucket, tampered.artifact_key, b"not the weights", "application/octet-stream")
    with pytest.raises(WeightsError, match="does not match its recorded sha256"):
        fit(s3, settings, spec_for(dataset, tampered_id), dataset)


def test_the_api_refuses_a_backbone_that_is_not_a_lite0_classifier(
    api: TestClient, s3: Minio, settings: CommonSettings
) -> None:
    dataset = scene_dataset(s3, settings.s3.datasets_bucket)
    body = {"name": "site", "dataset": {"name": dataset.name}, "backbone_model_id": "m-nowhere"}
    response = api.post("/api/v1/jobs", json=body)
    assert response.status_code == 422, response.text
    errors = {e["field"]: e["message"] for e in response.json()["errors"]}
    assert "m-nowhere is not in the registry" in errors["body.backbone_model_id"]
