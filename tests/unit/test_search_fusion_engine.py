"""Search and fusion on the real classify engine, on a few synthetic frames (seconds on a CPU)."""

from __future__ import annotations

import pytest
import torch

from vigil_shared.datasets import DatasetRef
from vigil_shared.schemas.jobs import ClassifySpec, ValidationSplit
from vigil_shared.vision.catalog import architecture
from vigil_trainer.classify.data import ClassifyData
from vigil_trainer.classify.engine import ClassifierFit, FitHooks, fit_classifier
from vigil_trainer.classify.evaluate import classification_metrics
from vigil_trainer.classify.fusion import (
    FusionError,
    Trial,
    ensemble_trials,
    predict_probabilities,
    soup_trials,
)
from vigil_trainer.classify.search import TrialRun, run_search
from vigil_trainer.classify.tuning import fit_tuned

pytestmark = pytest.mark.slow
CLASSES = ("normal", "abnormal")


def tiny_data() -> ClassifyData:
    """Dark frames are normal, frames with a bright square abnormal; four clips."""
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(20, 60, (32, 3, 32, 32), dtype=torch.uint8, generator=generator)
    labels = torch.tensor([i % 2 for i in range(32)])
    images[labels == 1, :, 8:24, 8:24] = 230
    groups = [f"clip{i // 8}" for i in range(32)]
    return ClassifyData.from_tensors(
        images=images,
        labels=labels,
        groups=groups,
        classes=CLASSES,
        validation=ValidationSplit(groups=("clip3",)),
    )


def test_a_quick_search_then_fusion_runs_end_to_end() -> None:
    data = tiny_data()
    spec = ClassifySpec.model_validate(
        {
            "name": "tiny",
            "task": "classify",
            "dataset": DatasetRef(name="tiny"),
            "image_size": 32,
            "validation": {"groups": ["clip3"]},
            "hyper": {"epochs": 2, "batch_size": 8, "metric": "auroc"},
            "search": {
                "trials": 3,
                "metric": "auroc",
                "space": {"hyper.lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}},
            },
            "fusion": {"kind": "top_k_trials", "k": 2},
        }
    )
    epochs_seen: list[int] = []

    def fit(trial_spec: ClassifySpec, run: TrialRun) -> ClassifierFit:
        def on_epoch_end(epoch: int, metrics: dict[str, float]) -> None:
            epochs_seen.append(epoch)
            run.on_epoch_end(epoch, metrics)

        hooks = FitHooks(on_epoch_end=on_epoch_end)
        return fit_classifier(spec=trial_spec, data=data, device="cpu", hooks=hooks)

    result = run_search(spec=spec, fit=fit, keep_top=2)
    assert len(result.study.trials) == 3 and epochs_seen
    assert result.best.value == max(t.value for t in result.top)

    val_labels = data.labels[data.val_index]

    def metrics(probabilities: torch.Tensor) -> dict[str, float]:
        return classification_metrics(
            probabilities, val_labels, CLASSES, normal_classes=("normal",)
        )

    trials = [Trial(t.number, t.value, t.fit) for t in result.top]
    ensemble = ensemble_trials(trials, k=2, metric="auroc", direction="maximize", metrics=metrics)
    assert ensemble.metrics["auroc"] >= result.best.value - 1e-9
    if ensemble.ensemble_size == 2:
        assert any(k.startswith("member1.") for k in ensemble.state_dict)
    else:
        assert ensemble.state_dict.keys() == result.best.fit.state_dict.keys()
    prep = architecture("efficientnet_lite0").preprocessing
    val_images = data.images[data.val_index]
    fused = ensemble.predict(val_images, mean=prep.mean, std=prep.std, device="cpu")
    torch.testing.assert_close(fused, ensemble.val_probabilities, atol=1e-4, rtol=1e-4)

    def predict(network: torch.nn.Module) -> torch.Tensor:
        return predict_probabilities(network, val_images, mean=prep.mean, std=prep.std)

    soup = soup_trials(
        trials, k=2, metric="auroc", direction="maximize", metrics=metrics, predict=predict
    )
    assert soup.metrics["auroc"] >= result.best.value - 1e-9
    assert soup.state_dict.keys() == result.best.fit.state_dict.keys()


def tiny_spec(**overrides: object) -> ClassifySpec:
    data: dict[str, object] = {
        "name": "tiny",
        "task": "classify",
        "dataset": DatasetRef(name="tiny"),
        "image_size": 32,
        "validation": {"groups": ["clip3"]},
        "hyper": {"epochs": 1, "batch_size": 8, "metric": "auroc"},
    }
    data.update(overrides)
    return ClassifySpec.model_validate(data)


def test_a_job_with_search_and_weight_averaging_yields_one_registrable_network() -> None:
    space = {"hyper.lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}}
    spec = tiny_spec(
        search={"trials": 2, "metric": "auroc", "pruner": "none", "space": space},
        fusion={"kind": "weight_average", "k": 2},
    )
    lines: list[str] = []
    progress: list[dict[str, object]] = []
    hooks = FitHooks(log=lambda level, line: lines.append(line), progress=progress.append)
    tuned = fit_tuned(spec=spec, data=tiny_data(), device="cpu", hooks=hooks)
    assert tuned.study is not None and len(tuned.study.trials) == 2
    assert tuned.fusion in {"uniform_soup", "greedy_soup"} and tuned.ensemble_size == 1
    assert tuned.tensors.keys() == tuned.fit.state_dict.keys()
    assert tuned.metrics["auroc"] >= max(t.value or 0.0 for t in tuned.study.trials) - 1e-9
    assert tuned.spec.search is None and tuned.spec.hyper.lr in {
        t.params["hyper.lr"] for t in tuned.study.trials
    }
    assert any(line.startswith("search: 2 trials") for line in lines)
    assert {p.get("trial") for p in progress if p.get("stage") == "train"} == {0, 1}


def test_fusions_that_cannot_run_are_refused_before_training() -> None:
    spec = tiny_spec(fusion={"kind": "weight_average", "k": 2})
    with pytest.raises(FusionError, match="set search"):
        fit_tuned(spec=spec, data=tiny_data(), device="cpu", hooks=FitHooks())
    registry = tiny_spec(fusion={"kind": "registry_models", "model_ids": ["m-a", "m-b"]})
    with pytest.raises(FusionError, match="registry_models trains nothing"):
        fit_tuned(spec=registry, data=tiny_data(), device="cpu", hooks=FitHooks())
