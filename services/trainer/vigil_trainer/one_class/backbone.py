"""The backbone a one_class fit extracts patch features with: ImageNet Lite0 by default, or the
body of a registry classify model fine-tuned on the site (``backbone_model_id``)."""

from __future__ import annotations

from minio import Minio
from minio.error import S3Error

from vigil_shared.schemas.manifests import WeightsProvenance
from vigil_shared.schemas.one_class import OneClassSpec
from vigil_shared.storage import StorageError
from vigil_shared.vision.backbones import Backbone, WeightsError, load_efficientnet_lite0
from vigil_shared.vision.inferencer import read_artifact, read_manifest
from vigil_shared.vision.site_backbone import SiteBackboneError, lite0_from_classifier


def one_class_backbone(spec: OneClassSpec, *, s3: Minio, models_bucket: str) -> Backbone:
    """The spec's backbone; a named model that is missing, of the wrong kind or tampered is a
    ``WeightsError`` saying which and why (the job fails with it, nothing is fitted)."""
    imagenet = load_efficientnet_lite0()
    model_id = spec.backbone_model_id
    if model_id is None:
        return imagenet
    try:
        manifest = read_manifest(s3, bucket=models_bucket, model_id=model_id)
        module = lite0_from_classifier(
            manifest, read_artifact(s3, bucket=models_bucket, manifest=manifest)
        )
    except S3Error as exc:
        raise WeightsError(
            f"backbone model {model_id} cannot be read from the registry ({exc.code}): "
            "name an existing classify model (GET /api/v1/models)"
        ) from exc
    except (StorageError, SiteBackboneError) as exc:
        raise WeightsError(f"backbone model {model_id}: {exc}") from exc
    provenance = WeightsProvenance(
        name=f"efficientnet_lite0/site:{model_id}",
        source=f"registry model {model_id} (classify, fine-tuned from "
        f"{manifest.own_weights().name})",
        sha256=manifest.artifact_sha256,
    )
    return Backbone(module=module, provenance=provenance, preprocessing=imagenet.preprocessing)
