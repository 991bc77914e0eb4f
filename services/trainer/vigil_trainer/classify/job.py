"""A classify job from dataset to registry candidate: load, resolve weights, fit (or search),
evaluate on held-out groups, compare with production, register.

``run`` is the classify kind's entry (its ``trainer`` in ``vigil_shared.vision.model_kinds``).
A spec whose ``fusion.kind`` is ``registry_models`` trains nothing: it fits an ensemble of
registry models on the same held-out groups (``registry_fusion``), which is how the
``ensemble`` kind is made.
"""

from __future__ import annotations

from typing import Any

import torch

from vigil_shared.datasets import DatasetManifest
from vigil_shared.schemas.jobs import ClassifySpec
from vigil_shared.schemas.manifests import ModelManifest
from vigil_shared.vision.backbones import WeightsError
from vigil_shared.vision.catalog import architecture
from vigil_shared.vision.inferencer import read_artifact, read_manifest
from vigil_shared.vision.score_metrics import best_f1_threshold
from vigil_trainer.classify.checkpoint import S3CheckpointStore
from vigil_trainer.classify.compare import COMPARED, compare_with_production
from vigil_trainer.classify.data import ClassifyData, load_classify_data
from vigil_trainer.classify.engine import FitHooks
from vigil_trainer.classify.evaluate import anomaly_scores, evaluation
from vigil_trainer.classify.registry_fusion import run_registry_fusion
from vigil_trainer.classify.tuning import TunedModel, fit_tuned
from vigil_trainer.context import JobContext
from vigil_trainer.production import Compared, Production, store_evaluation
from vigil_trainer.registry import Candidate
from vigil_trainer.weights import PretrainedWeights, resolve_weights

DEFAULT_THRESHOLD = 0.5
"""Anomaly score 1 - P(normal) above one half: the abnormal classes are the more probable.
Used only when the held-out frames cannot calibrate (they lack a normal or an abnormal frame)."""


def calibrated_threshold(scores: torch.Tensor, positives: torch.Tensor) -> tuple[float, str]:
    """The anomaly-score cut with the best F1 on the labeled held-out frames, and its source.

    Class probabilities of a fine-tuned net are rarely calibrated (label smoothing and class
    weights both move them), so one half is a poor cut for events; the held-out groups are the
    site's own labeled footage the weights never saw.
    """
    n_pos = int(positives.sum())
    if n_pos == 0 or n_pos == positives.numel():
        return DEFAULT_THRESHOLD, "default"
    threshold, _ = best_f1_threshold(scores, positives)
    # 1 - P(normal) lies in [0, 1] up to rounding; so does a cut between two of its values.
    return min(max(threshold, 0.0), 1.0), "validation_f1"


def starting_weights(ctx: JobContext, spec: ClassifySpec) -> PretrainedWeights:
    """The parent model's weights when the spec names one, else ImageNet weights."""
    bucket = ctx.s3_settings.models_bucket
    if spec.parent_model_id is None:
        return resolve_weights(
            spec.architecture,
            s3=ctx.s3,
            bucket=bucket,
            sha256=spec.weights_sha256,
            allow_download=ctx.allow_weight_download,
        )
    parent = read_manifest(ctx.s3, bucket=bucket, model_id=spec.parent_model_id)
    if parent.task != "classify" or parent.architecture != spec.architecture:
        raise WeightsError(
            f"parent model {parent.model_id} is a {parent.task} {parent.architecture} model; "
            f"a {spec.architecture} classify job can only continue a {spec.architecture} "
            "classify model"
        )
    if parent.ensemble_size != 1:
        raise WeightsError(f"parent model {parent.model_id} is an ensemble; name one member")
    return PretrainedWeights(
        state_dict=read_artifact(ctx.s3, bucket=bucket, manifest=parent),
        provenance=parent.own_weights(),
        kind="parent",
    )


def fit(
    ctx: JobContext, *, spec: ClassifySpec, data: ClassifyData, weights: PretrainedWeights
) -> TunedModel:
    """One fit, or a search (and fusion of its best trials) when the spec asks for one."""
    reporter = ctx.reporter
    store = S3CheckpointStore(ctx.s3, bucket=ctx.s3_settings.models_bucket, job_id=str(ctx.job_id))
    hooks = FitHooks(
        progress=reporter.progress,
        should_stop=reporter.should_stop,
        checkpoint=store,
        log=reporter.log,
    )
    result = fit_tuned(spec=spec, data=data, device=ctx.device, hooks=hooks, weights=weights)
    store.delete()
    return result


def candidate(
    ctx: JobContext,
    *,
    spec: ClassifySpec,
    dataset: DatasetManifest,
    data: ClassifyData,
    result: TunedModel,
    weights: PretrainedWeights,
) -> Candidate:
    """The registry entry; ``result.spec`` is the configuration trained (a search's best)."""
    trained = result.spec
    classes = result.fit.classes
    scores = anomaly_scores(result.val_probabilities, classes, spec.normal_classes)
    positives = torch.tensor(
        [classes[int(y)] not in spec.normal_classes for y in result.fit.val_labels]
    )
    threshold, source = calibrated_threshold(scores, positives)
    metrics = {**result.metrics, "threshold_calibrated": 1.0 if source != "default" else 0.0}
    comparison = compare_with_production(
        s3=ctx.s3,
        bucket=ctx.s3_settings.models_bucket,
        sessions=ctx.sessions,
        data=data,
        camera_ids=dataset.camera_ids,
        own_scores=scores,
        normal_classes=spec.normal_classes,
        device=ctx.device,
    )
    prep = architecture(spec.architecture).preprocessing
    return Candidate(
        spec=spec,
        architecture=spec.architecture,
        tensors=result.tensors,
        ensemble_size=result.ensemble_size,
        study=result.study,
        threshold=threshold,
        provenance=weights.provenance,
        preprocessing=prep.model_copy(update={"image_size": trained.image_size}),
        dataset_sha256=dataset.version,
        dataset_name=dataset.name,
        dataset_version=dataset.version,
        n_images=len(dataset.items),
        metrics=metrics,
        classes=classes,
        normal_classes=spec.normal_classes,
        head=trained.structure.head.kind,
        head_hidden=trained.structure.head.hidden,
        parent_model_id=spec.parent_model_id,
        evaluation=evaluation(
            result.val_probabilities, result.fit.val_labels, classes, val_groups=data.val_groups
        ),
        comparison=comparison,
    )


def run(*, ctx: JobContext, spec: ClassifySpec) -> ModelManifest:
    if spec.fusion is not None and spec.fusion.kind == "registry_models":
        return run_registry_fusion(ctx=ctx, spec=spec)
    reporter = ctx.reporter
    dataset = ctx.load_dataset(spec.dataset)
    weights = starting_weights(ctx, spec)
    reporter.log("info", f"weights: {weights.provenance.name} from {weights.provenance.source}")
    data = load_classify_data(
        s3=ctx.s3,
        bucket=ctx.s3_settings.datasets_bucket,
        manifest=dataset,
        spec=spec,
        cache_dir=ctx.cache_dir,
        progress=reporter.progress,
    )
    reporter.log(
        "info",
        f"{len(data.train_index)} training and {len(data.val_index)} validation frames; "
        f"held-out groups: {', '.join(data.val_groups)}",
    )
    result = fit(ctx, spec=spec, data=data, weights=weights)
    reporter.progress({"stage": "registering"}, force=True)
    chosen = candidate(ctx, spec=spec, dataset=dataset, data=data, result=result, weights=weights)
    manifest = ctx.register(chosen)
    record_comparison(ctx, model_id=manifest.model_id, dataset=dataset, chosen=chosen, data=data)
    return manifest


def record_comparison(
    ctx: JobContext,
    *,
    model_id: str,
    dataset: DatasetManifest,
    chosen: Candidate,
    data: ClassifyData,
) -> None:
    """The manifest's production comparison as an ``evaluations`` row (AUROC and AUPR of the
    anomaly score on the held-out groups; a classifier has no event figures here)."""
    comparison = chosen.comparison
    ours = {k: chosen.metrics[k] for k in COMPARED if k in chosen.metrics}
    theirs = None
    if comparison is not None and comparison.unavailable is None:
        theirs = dict(comparison.metrics)
    production = None
    if comparison is not None:
        production = Production(scope=comparison.scope, model_id=comparison.model_id, model=None)
    detail: dict[str, Any] = {"frames": len(data.val_index)}
    if comparison is not None and comparison.unavailable is not None:
        detail["production"] = comparison.unavailable
    compared = Compared(
        groups=data.val_groups,
        metrics=ours,
        production=production,
        production_metrics=theirs,
        detail=detail,
    )
    store_evaluation(
        sessions=ctx.sessions,
        job_id=ctx.job_id,
        model_id=model_id,
        dataset=dataset,
        compared=compared,
    )
