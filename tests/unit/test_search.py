"""Hyperparameter search: trial specs, pruning, the study record, with a fit that needs no
training (its metric is a known function of the sampled values)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import optuna
import pytest
from pydantic import ValidationError

from vigil_shared.datasets import DatasetRef
from vigil_shared.schemas.jobs import ClassifySpec, SearchSpec
from vigil_trainer.classify import search as search_module
from vigil_trainer.classify.search import (
    SearchError,
    TrialRun,
    apply_params,
    current_values,
    run_search,
)


@dataclass(frozen=True)
class FakeFit:
    metrics: Mapping[str, float]
    spec: ClassifySpec
    epochs_run: int = 0


def classify_spec(**overrides: object) -> ClassifySpec:
    data: dict[str, object] = {"name": "t", "task": "classify", "dataset": DatasetRef(name="d")}
    data.update(overrides)
    return ClassifySpec.model_validate(data)


def lr_space(trials: int, pruner: str = "none") -> dict[str, object]:
    return {
        "trials": trials,
        "pruner": pruner,
        "space": {"hyper.lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True}},
    }


def test_sampled_values_land_at_their_dotted_paths() -> None:
    spec = classify_spec(search=lr_space(3))
    trial = apply_params(
        spec,
        {"hyper.lr": 0.02, "structure.head.kind": "mlp", "augment.rotation.degrees": 15.0},
    )
    assert trial.hyper.lr == 0.02
    assert trial.structure.head.kind == "mlp"
    assert trial.augment.rotation is not None and trial.augment.rotation.degrees == 15.0
    assert trial.search is None and trial.fusion is None
    assert trial.hyper.epochs == spec.hyper.epochs


def test_unknown_paths_and_bad_values_are_refused() -> None:
    spec = classify_spec()
    with pytest.raises(KeyError, match="has no field 'lrate'"):
        apply_params(spec, {"hyper.lrate": 0.1})
    with pytest.raises(ValidationError):
        apply_params(spec, {"hyper.lr": 5.0})
    with pytest.raises(ValidationError, match=r"hyper\.lrate"):
        classify_spec(search={"space": {"hyper.lrate": {"type": "float", "low": 0.1, "high": 1}}})


def test_the_default_configuration_is_trial_zero_when_the_space_holds_it() -> None:
    spec = classify_spec(search=lr_space(3))
    assert spec.search is not None
    assert current_values(spec, spec.search) == {"hyper.lr": 1e-3}
    outside = classify_spec(hyper={"lr": 0.5}, search=lr_space(3))
    assert outside.search is not None and current_values(outside, outside.search) is None

    seen: list[float] = []

    def fit(trial_spec: ClassifySpec, run: TrialRun) -> FakeFit:
        seen.append(trial_spec.hyper.lr)
        return FakeFit({"macro_f1": 0.5}, trial_spec)

    run_search(spec=spec, fit=fit)
    assert seen[0] == 1e-3 and len(seen) == 3


def lr_quality(lr: float) -> float:
    """A validation metric that peaks at lr = 0.01."""
    return 1.0 - abs(math.log10(lr) + 2.0) / 3.0


def test_search_finds_a_better_configuration_and_records_every_trial() -> None:
    spec = classify_spec(hyper={"lr": 1e-4, "epochs": 2}, search=lr_space(8))
    progress: list[dict[str, object]] = []

    def fit(trial_spec: ClassifySpec, run: TrialRun) -> FakeFit:
        value = lr_quality(trial_spec.hyper.lr)
        for epoch in range(trial_spec.hyper.epochs):
            run.on_epoch_end(epoch, {"macro_f1": value})
        return FakeFit({"macro_f1": value}, trial_spec)

    result = run_search(spec=spec, fit=fit, keep_top=3, progress=progress.append)
    default_value = lr_quality(1e-4)
    assert result.best.value > default_value
    assert result.best.fit.spec.hyper.lr == result.best.spec.hyper.lr
    assert [t.value for t in result.top] == sorted((t.value for t in result.top), reverse=True)
    assert len(result.top) == 3
    study = result.study
    assert len(study.trials) == 8 and study.best_trial == result.best.number
    assert all(t.state == "complete" and "hyper.lr" in t.params for t in study.trials)
    assert [p["trial"] for p in progress] == list(range(8))


@pytest.mark.parametrize("pruner", ["median", "successive_halving"])
def test_a_trial_with_bad_epoch_metrics_is_pruned(
    pruner: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = classify_spec(
        hyper={"epochs": 6},
        search={
            "trials": 4,
            "pruner": pruner,
            "space": {"hyper.batch_size": {"type": "categorical", "choices": [16, 32, 64]}},
        },
    )
    epochs_run: dict[int, int] = {}
    quality = {32: 0.9, 16: 0.8, 64: 0.1}

    def fit(trial_spec: ClassifySpec, run: TrialRun) -> FakeFit:
        value = quality[trial_spec.hyper.batch_size]
        for epoch in range(trial_spec.hyper.epochs):
            epochs_run[run.number] = epoch + 1
            run.on_epoch_end(epoch, {"macro_f1": value})
        return FakeFit({"macro_f1": value}, trial_spec)

    original = search_module.make_study

    def make_study(search: SearchSpec, *, seed: int) -> optuna.Study:
        """Two finished trials (16, 64), then a bad one (64); the default (32) comes last."""
        study = original(search, seed=seed)
        for size in (16, 64, 64):
            study.enqueue_trial({"hyper.batch_size": size})
        return study

    monkeypatch.setattr(search_module, "make_study", make_study)
    result = run_search(spec=spec, fit=fit)
    states = [t.state for t in result.study.trials]
    # The median pruner waits for two finished trials; successive halving already cuts the
    # first bad one (trial 1) at its first rung.
    assert states[0] == states[3] == "complete" and states[2] == "pruned"
    assert states[1] == ("complete" if pruner == "median" else "pruned")
    assert epochs_run[2] < 6 and result.study.trials[2].value is None
    assert result.best.number == 3 and result.best.spec.hyper.batch_size == 32


def test_a_study_where_no_trial_completes_fails_clearly() -> None:
    spec = classify_spec(search=lr_space(2))

    def fit(trial_spec: ClassifySpec, run: TrialRun) -> FakeFit:
        return FakeFit({"accuracy": 0.5}, trial_spec)  # not the searched metric

    with pytest.raises(SearchError, match="no trial of 2 completed"):
        run_search(spec=spec, fit=fit)
