"""A classify job's training step with its options: a plain fit, a search, and fusion.

The job runner calls ``fit_tuned`` where it would call the engine once; what comes back is what
the registry stores either way (the tensors, the ensemble size, the validation probabilities
the evaluation is computed from, and the study record when there was a search).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from vigil_shared.schemas.jobs import ClassifySpec
from vigil_shared.schemas.manifests import StudySummary
from vigil_shared.vision.catalog import architecture
from vigil_trainer.classify.data import ClassifyData
from vigil_trainer.classify.engine import ClassifierFit, FitHooks, fit_classifier
from vigil_trainer.classify.evaluate import classification_metrics
from vigil_trainer.classify.fusion import (
    FusedClassifier,
    FusionError,
    Trial,
    ensemble_trials,
    predict_probabilities,
    soup_trials,
)
from vigil_trainer.classify.search import SearchResult, TrialRun, run_search
from vigil_trainer.weights import PretrainedWeights


@dataclass(frozen=True)
class TunedModel:
    spec: ClassifySpec
    """The configuration trained: the job's spec, or the best trial's."""
    fit: ClassifierFit
    """The single network (the best trial's when there was a search)."""
    tensors: dict[str, torch.Tensor]
    ensemble_size: int
    val_probabilities: torch.Tensor
    metrics: dict[str, float]
    study: StudySummary | None = None
    fusion: str | None = None
    """``ensemble``, ``greedy_ensemble``, ``uniform_soup`` or ``greedy_soup`` for a fusion."""


def _single(spec: ClassifySpec, fit: ClassifierFit, study: StudySummary | None) -> TunedModel:
    return TunedModel(
        spec=spec,
        fit=fit,
        tensors=fit.state_dict,
        ensemble_size=1,
        val_probabilities=fit.val_probabilities,
        metrics=fit.metrics,
        study=study,
    )


def fit_tuned(
    *,
    spec: ClassifySpec,
    data: ClassifyData,
    device: str,
    hooks: FitHooks,
    weights: PretrainedWeights | None = None,
) -> TunedModel:
    """One fit, or the study of ``spec.search`` then ``spec.fusion`` of its best trials.

    Trials run without the job's checkpoint store: a checkpoint belongs to one configuration,
    and a redelivered job replays the seeded study instead."""
    if spec.fusion is not None and spec.fusion.kind == "registry_models":
        raise FusionError(
            "fusion.kind registry_models trains nothing: the job runner fuses the named models "
            "with vigil_trainer.classify.registry_fusion, not fit_tuned"
        )
    if spec.search is None:
        if spec.fusion is not None:
            raise FusionError(f"fusion.kind {spec.fusion.kind} fuses a search's trials: set search")
        fit = fit_classifier(spec=spec, data=data, device=device, hooks=hooks, weights=weights)
        return _single(spec, fit, None)
    result = _search(spec=spec, data=data, device=device, hooks=hooks, weights=weights)
    best = _single(result.best.spec, result.best.fit, result.study)
    if spec.fusion is None:
        return best
    fused = _fuse(spec, result, data=data, device=device)
    hooks.log(
        "info",
        f"fusion {fused.kind} of trials {list(fused.members)}: validation "
        f"{spec.search.metric} {fused.metrics[spec.search.metric]:.4f} "
        f"(best trial {result.best.value:.4f})",
    )
    return replace(
        best,
        tensors=fused.state_dict,
        ensemble_size=fused.ensemble_size,
        val_probabilities=fused.val_probabilities,
        metrics=fused.metrics,
        fusion=fused.kind,
    )


def _search(
    *,
    spec: ClassifySpec,
    data: ClassifyData,
    device: str,
    hooks: FitHooks,
    weights: PretrainedWeights | None,
) -> SearchResult[ClassifierFit]:
    assert spec.search is not None
    total = spec.search.trials

    def fit(trial_spec: ClassifySpec, run: TrialRun) -> ClassifierFit:
        def progress(update: dict[str, object]) -> None:
            hooks.progress({**update, "trial": run.number, "trials": total})

        hooks.log("info", f"trial {run.number + 1}/{total}")
        trial_hooks = replace(
            hooks, progress=progress, on_epoch_end=run.on_epoch_end, checkpoint=None
        )
        return fit_classifier(
            spec=trial_spec, data=data, device=device, hooks=trial_hooks, weights=weights
        )

    k = spec.fusion.k if spec.fusion is not None else 1
    result = run_search(
        spec=spec, fit=fit, keep_top=k, progress=hooks.progress, should_stop=hooks.should_stop
    )
    pruned = sum(t.state == "pruned" for t in result.study.trials)
    hooks.log(
        "info",
        f"search: {len(result.study.trials)} trials ({pruned} pruned), best trial "
        f"{result.best.number} with {spec.search.metric} {result.best.value:.4f}",
    )
    return result


def _fuse(
    spec: ClassifySpec, result: SearchResult[ClassifierFit], *, data: ClassifyData, device: str
) -> FusedClassifier:
    assert spec.search is not None and spec.fusion is not None
    trials = [Trial(t.number, t.value, t.fit) for t in result.top]
    val_labels = data.labels[data.val_index]

    def metrics(probabilities: torch.Tensor) -> dict[str, float]:
        return classification_metrics(
            probabilities, val_labels, data.classes, normal_classes=spec.normal_classes
        )

    if spec.fusion.kind == "top_k_trials":
        return ensemble_trials(
            trials,
            k=spec.fusion.k,
            metric=spec.search.metric,
            direction=spec.search.direction,
            metrics=metrics,
        )
    prep = architecture(result.best.spec.architecture).preprocessing
    val_images = data.images[data.val_index]

    def predict(network: nn.Module) -> torch.Tensor:
        return predict_probabilities(
            network, val_images, mean=prep.mean, std=prep.std, device=device
        )

    return soup_trials(
        trials,
        k=spec.fusion.k,
        metric=spec.search.metric,
        direction=spec.search.direction,
        metrics=metrics,
        predict=predict,
    )
