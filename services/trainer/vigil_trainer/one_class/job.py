"""A one_class job from dataset to registry candidate: load, trim a retrain's footage with the
production model (``footage.retrain_footage``), pick the backbone, fit the banks
and calibrate (``fit.fit_one_class``), register, then score it and the production model it
would replace on the same held-out groups (``evaluate.record_evaluation``).

``run`` is the one_class kind's entry (its ``trainer`` in ``vigil_shared.vision.model_kinds``).
"""

from __future__ import annotations

from minio.error import S3Error

from vigil_shared.datasets import DatasetError
from vigil_shared.schemas.manifests import ModelManifest
from vigil_shared.schemas.one_class import OneClassSpec
from vigil_shared.storage import StorageError
from vigil_shared.vision.inferencer import read_manifest
from vigil_shared.vision.site_backbone import untouched_patch_stages
from vigil_trainer.context import JobContext
from vigil_trainer.one_class.architecture import one_class_architecture
from vigil_trainer.one_class.backbone import one_class_backbone
from vigil_trainer.one_class.evaluate import record_evaluation
from vigil_trainer.one_class.fit import fit_one_class
from vigil_trainer.one_class.footage import retrain_footage
from vigil_trainer.registry import Candidate


def run(*, ctx: JobContext, spec: OneClassSpec) -> ModelManifest:
    reporter = ctx.reporter
    dataset = ctx.load_dataset(spec.dataset)
    fit_data, trim_detail = retrain_footage(ctx, spec, dataset)
    backbone = one_class_backbone(spec, s3=ctx.s3, models_bucket=ctx.s3_settings.models_bucket)
    reporter.log("info", f"backbone: {backbone.provenance.name} from {backbone.provenance.source}")
    if spec.backbone_model_id is not None:
        parent = read_manifest(
            ctx.s3, bucket=ctx.s3_settings.models_bucket, model_id=spec.backbone_model_id
        )
        warning = untouched_patch_stages(parent, spec.appearance.stages)
        if warning is not None:
            reporter.log("warning", warning)
    fitted = fit_one_class(
        backbone=backbone,
        s3=ctx.s3,
        bucket=ctx.s3_settings.datasets_bucket,
        spec=spec,
        dataset=fit_data,
        device=ctx.device,
        batch_size=ctx.batch_size,
        progress=reporter.progress,
        should_stop=reporter.should_stop,
        lifecycle=ctx.lifecycle,
    )
    if spec.scene is not None and fitted.spec.scene is None:
        groups = int(fitted.metrics["n_holdout_clips"])
        reporter.log(
            "warning",
            f"scene stream left out: {groups} normal group(s) calibrate, fewer than "
            f"scene.min_groups ({spec.scene.min_groups}); a retrain on more footage asks again",
        )
    spec = fitted.spec
    reporter.progress({"stage": "registering"}, force=True)
    candidate = Candidate(
        spec=spec,
        architecture=one_class_architecture(spec),
        tensors=fitted.tensors,
        threshold=fitted.threshold,
        provenance=fitted.provenance,
        preprocessing=fitted.preprocessing,
        dataset_sha256=fitted.dataset_sha256,
        dataset_name=dataset.name,
        dataset_version=dataset.version,
        n_images=fitted.n_images,
        metrics=fitted.metrics,
        k=spec.k,
        parent_model_id=spec.backbone_model_id,
    )
    manifest = ctx.register(candidate)
    reporter.progress({"stage": "evaluating"}, force=True)
    try:
        record_evaluation(
            ctx=ctx, spec=spec, dataset=fit_data, model_id=manifest.model_id, detail=trim_detail
        )
    except (DatasetError, S3Error, StorageError, ValueError) as exc:
        # The model is registered: a comparison that cannot be made leaves it ungated-for, and
        # the gate then refuses it for want of evidence, which the log explains.
        reporter.log("warning", f"no evaluation recorded for {manifest.model_id}: {exc}")
    return manifest
