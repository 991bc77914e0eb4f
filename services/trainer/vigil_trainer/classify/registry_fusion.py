"""A ``registry_models`` fusion job: existing registry models averaged into one candidate.

Nothing trains. The members are loaded as inference loads them, score the dataset's held-out
frames (with the production model, for the comparison), the fusion is fitted on those scores
(normalisations on the normal frames; threshold on the labels), and the ensemble is registered
with its members pinned by the sha256 of their manifest and artifact, and with each member's
figures on the same frames, so a reviewer sees whether the ensemble beats its best member.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from minio import Minio
from minio.error import S3Error
from pydantic import ValidationError

from vigil_shared.datasets import DatasetManifest, load_manifest
from vigil_shared.schemas.jobs import ClassifySpec, FusionSpec
from vigil_shared.schemas.manifests import (
    EnsembleMember,
    EnsembleOf,
    Evaluation,
    ModelManifest,
    ProductionComparison,
    ensemble_problem,
)
from vigil_shared.storage import StorageError
from vigil_shared.vision.backbones import WeightsError
from vigil_shared.vision.inferencer import model_from_manifest, read_pinned_manifest
from vigil_shared.vision.score_ensemble import norm_tensors
from vigil_shared.vision.scoring import FrameModel
from vigil_trainer.classify.compare import comparison, score_metrics
from vigil_trainer.classify.evaluate import confusion_matrix, per_class
from vigil_trainer.classify.fusion import FusionError
from vigil_trainer.classify.held_out import HeldOut, held_out, score_held_out
from vigil_trainer.classify.score_fusion import (
    FusionMethod,
    ScoreFusion,
    calibrate_threshold,
    fit_score_fusion,
    scores_at,
)
from vigil_trainer.context import JobContext
from vigil_trainer.registry import Candidate
from vigil_trainer.reporting import JobReporter

PRODUCTION = "<production>"
"""The production model's key among the scored models (no model id contains ``<``)."""


@dataclass(frozen=True)
class Member:
    manifest: ModelManifest
    manifest_sha256: str
    model: FrameModel


def _manifest(s3: Minio, bucket: str, model_id: str) -> tuple[ModelManifest, str]:
    try:
        return read_pinned_manifest(s3, bucket=bucket, model_id=model_id)
    except S3Error as exc:
        if exc.code == "NoSuchKey":
            raise FusionError(
                f"fusion.model_ids: model {model_id} is not in the registry "
                "(GET /api/v1/models lists the models)"
            ) from exc
        raise
    except ValidationError as exc:
        raise FusionError(f"model {model_id}: its manifest is not valid: {exc}") from exc


def load_members(s3: Minio, *, bucket: str, fusion: FusionSpec, device: str) -> list[Member]:
    """Each named model as inference would load it; ``FusionError`` (the job's input is wrong)
    when one is missing, broken, an ensemble, or not averageable with ``fusion.method``."""
    manifests = [_manifest(s3, bucket, model_id) for model_id in fusion.model_ids]
    problem = ensemble_problem(fusion.method, [m for m, _ in manifests])
    if problem is not None:
        raise FusionError(problem)
    members = []
    for manifest, sha256 in manifests:
        try:
            model = model_from_manifest(s3, bucket=bucket, manifest=manifest, device=device)
        except (S3Error, StorageError, WeightsError, ValueError) as exc:
            raise FusionError(f"model {manifest.model_id} cannot be loaded: {exc}") from exc
        members.append(Member(manifest=manifest, manifest_sha256=sha256, model=model))
    return members


@dataclass(frozen=True)
class FittedEnsemble:
    """The fusion fitted on the held-out frames, and how it and each member did there."""

    fusion: ScoreFusion
    threshold: float
    metrics: dict[str, float]
    member_metrics: tuple[dict[str, float], ...]
    evaluation: Evaluation


def fit_ensemble(
    member_scores: list[torch.Tensor], held: HeldOut, *, method: FusionMethod
) -> FittedEnsemble:
    """Normalisations (score method) on the normal frames, the threshold on the labels, and
    figures: the ensemble's at its threshold, each member's AUROC/AUPR, the best member's."""
    positives = held.positives
    fused = fit_score_fusion(scores=member_scores, normal=~positives, method=method)
    threshold, source = calibrate_threshold(fused.val_scores, positives)
    metrics = scores_at(fused.val_scores, positives, threshold)
    member_metrics = tuple(score_metrics(s, positives) for s in member_scores)
    for name in ("auroc", "aupr"):
        values = [m[name] for m in member_metrics if m[name] == m[name]]
        if values:
            metrics[f"best_member_{name}"] = max(values)
    metrics["threshold_calibrated"] = 1.0 if source == "validation_f1" else 0.0
    return FittedEnsemble(
        fusion=fused,
        threshold=threshold,
        metrics=metrics,
        member_metrics=member_metrics,
        evaluation=binary_evaluation(held, fused.val_scores, threshold),
    )


def binary_evaluation(held: HeldOut, scores: torch.Tensor, threshold: float) -> Evaluation:
    """Normal vs abnormal frames against the frames the threshold flags."""
    cm = confusion_matrix((scores > threshold).long(), held.positives.long(), 2)
    classes = ("normal", "abnormal")
    return Evaluation(
        validation_groups=held.groups,
        n_validation=len(held.items),
        classes=classes,
        confusion_matrix=tuple(tuple(int(v) for v in row) for row in cm.tolist()),
        per_class=per_class(cm, classes),
    )


def ensemble_of(fusion: FusionSpec, members: list[Member], fitted: FittedEnsemble) -> EnsembleOf:
    figures = fitted.member_metrics
    return EnsembleOf(
        method=fusion.method,
        members=tuple(
            EnsembleMember(
                model_id=m.manifest.model_id,
                task="classify" if m.manifest.task == "classify" else "one_class",
                manifest_sha256=m.manifest_sha256,
                artifact_sha256=m.manifest.artifact_sha256,
                score_center=norm.center,
                score_scale=norm.scale,
                metrics={k: v for k, v in f.items() if v == v},
            )
            for m, norm, f in zip(members, fitted.fusion.norms, figures, strict=True)
        ),
    )


def candidate_of(
    spec: ClassifySpec,
    *,
    fusion: FusionSpec,
    dataset: DatasetManifest,
    members: list[Member],
    fitted: FittedEnsemble,
    comparison: ProductionComparison | None,
) -> Candidate:
    """The registry entry: no weights or preprocessing of its own (its members have theirs);
    a probability ensemble labels frames with its members' classes, a score one does not."""
    first = members[0].manifest
    probability = fusion.method == "probability"
    return Candidate(
        spec=spec,
        architecture=f"{fusion.method}_ensemble",
        tensors=norm_tensors(fitted.fusion.norms),
        threshold=fitted.threshold,
        provenance=None,
        preprocessing=None,
        dataset_sha256=dataset.version,
        dataset_name=dataset.name,
        dataset_version=dataset.version,
        n_images=len(dataset.items),
        metrics=fitted.metrics,
        classes=first.classes if probability else (),
        normal_classes=first.normal_classes if probability else (),
        evaluation=fitted.evaluation,
        comparison=comparison,
        ensemble=ensemble_of(fusion, members, fitted),
    )


def run_registry_fusion(*, ctx: JobContext, spec: ClassifySpec) -> ModelManifest:
    """The classify run of a spec whose ``fusion.kind`` is ``registry_models``."""
    reporter = ctx.reporter
    fusion = spec.fusion
    if fusion is None or fusion.kind != "registry_models":
        raise FusionError("run_registry_fusion runs fusion.kind registry_models only")
    dataset = load_manifest(ctx.s3, ctx.s3_settings.datasets_bucket, spec.dataset)
    held = held_out(dataset, spec)
    reporter.log(
        "info",
        f"dataset {dataset.name} version {dataset.version[:12]}: {len(held.items)} held-out "
        f"frames ({int(held.positives.sum())} abnormal) in {', '.join(held.groups)}",
    )
    bucket = ctx.s3_settings.models_bucket
    members = load_members(ctx.s3, bucket=bucket, fusion=fusion, device=ctx.device)
    reporter.log("info", f"{fusion.method} averaging of {', '.join(fusion.model_ids)}")
    production = ctx.production(dataset.camera_ids)
    models = {m.manifest.model_id: m.model for m in members}
    if production is not None and production.model is not None:
        models[PRODUCTION] = production.model
    scores = score_held_out(
        models,
        held,
        s3=ctx.s3,
        bucket=ctx.s3_settings.datasets_bucket,
        progress=reporter.progress,
        should_stop=reporter.should_stop,
    )
    member_scores = [scores[m.manifest.model_id] for m in members]
    fitted = fit_ensemble(member_scores, held, method=fusion.method)
    _log_figures(reporter, fitted, members)
    reporter.progress({"stage": "registering"}, force=True)
    compared = None
    if production is not None:
        theirs = scores.get(PRODUCTION)
        ours = fitted.fusion.val_scores
        compared = comparison(production, theirs=theirs, ours=ours, positives=held.positives)
    candidate = candidate_of(
        spec, fusion=fusion, dataset=dataset, members=members, fitted=fitted, comparison=compared
    )
    return ctx.register(candidate)


def _log_figures(reporter: JobReporter, fitted: FittedEnsemble, members: list[Member]) -> None:
    each = ", ".join(
        f"{m.manifest.model_id} {f['auroc']:.4f}"
        for m, f in zip(members, fitted.member_metrics, strict=True)
    )
    reporter.log("info", f"held-out AUROC: ensemble {fitted.metrics['auroc']:.4f}; members {each}")
