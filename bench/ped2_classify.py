"""Classify on UCSD Ped2: linear probe, default fine-tune, search, fusion, on one clip split.

Frames are labeled ``normal``/``abnormal`` from the frame-level ground truth and split by clip
(``bench/ped2_data.py``): the classify engine trains on the train clips and picks epochs,
trials and fusions on the validation clips; the figures are on the test clips, which choose
nothing. Every run has the same budget (epochs, frames, image size, batch size).

    python -m bench.ped2_classify --json bench/results/ped2-classify-cpu.json
    python -m bench.ped2_classify --quick        # CI: tiny, under a minute

Rows: (a) ``probe``: EfficientNet-Lite0 frozen, a linear head trained; (b) ``default``: the
classify spec's defaults; (c) ``search-best``: the best of ``--trials`` trials (Optuna, median
pruning; trial 0 is the default configuration), its checkpoint kept; (d) ``ensemble-top-k``:
probability averaging of the best k trials; ``soup-top-k``: their weights averaged (uniform,
or greedy when uniform hurts validation).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from bench.ped2_data import CLASSES, Ped2Frames, Ped2MissingError, load_ped2, split
from bench.train_throughput import machine
from vigil_shared.datasets import DatasetRef
from vigil_shared.schemas.jobs import ClassifySpec, ValidationSplit
from vigil_shared.vision.catalog import architecture
from vigil_shared.vision.score_metrics import average_precision
from vigil_trainer.classify.data import ClassifyData
from vigil_trainer.classify.engine import ClassifierFit, FitHooks, fit_classifier
from vigil_trainer.classify.evaluate import classification_metrics
from vigil_trainer.classify.fusion import (
    FusedClassifier,
    Trial,
    ensemble_trials,
    predict_probabilities,
    soup_trials,
)
from vigil_trainer.classify.search import SearchResult, TrialRun, run_search

REPORTED = ("auroc", "aupr", "accuracy", "macro_f1")
SPACE: dict[str, dict[str, Any]] = {
    "hyper.lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
    "structure.freeze.last_n_stages": {"type": "int", "low": 1, "high": 4},
    "augment.crop.min_area": {"type": "float", "low": 0.5, "high": 1.0},
    "structure.head.dropout": {"type": "float", "low": 0.0, "high": 0.5},
}


@dataclass(frozen=True)
class Budget:
    size: int
    epochs: int
    batch_size: int
    train_stride: int
    val_stride: int
    test_stride: int
    trials: int
    k: int


FULL = Budget(
    size=96, epochs=3, batch_size=32, train_stride=10, val_stride=5, test_stride=3, trials=8, k=3
)
QUICK = Budget(
    size=32, epochs=1, batch_size=16, train_stride=60, val_stride=40, test_stride=40, trials=2, k=2
)


@dataclass(frozen=True)
class Row:
    name: str
    validation: dict[str, float]
    test: dict[str, float]
    seconds: float
    detail: str = ""


def classify_data(frames: Ped2Frames, budget: Budget) -> tuple[ClassifyData, Ped2Frames]:
    train = split(frames, part="train", stride=budget.train_stride)
    val = split(frames, part="validation", stride=budget.val_stride)
    test = split(frames, part="test", stride=budget.test_stride)
    data = ClassifyData.from_tensors(
        images=torch.from_numpy(np.concatenate([train.rgb(), val.rgb()])),
        labels=torch.from_numpy(np.concatenate([train.labels, val.labels])),
        groups=[str(c) for c in np.concatenate([train.clips, val.clips])],
        classes=CLASSES,
        validation=ValidationSplit(groups=tuple(sorted(set(val.clips.tolist())))),
        dataset_name="ped2-frames",
    )
    return data, test


def base_spec(data: ClassifyData, budget: Budget, **overrides: Any) -> ClassifySpec:
    """The classify defaults at the benchmark's budget; AUROC (threshold-free, the headline
    figure) picks the best epoch."""
    spec: dict[str, Any] = {
        "name": "ped2-bench",
        "task": "classify",
        "dataset": DatasetRef(name="ped2-frames"),
        "image_size": budget.size,
        "validation": {"groups": data.val_groups},
        "hyper": {"epochs": budget.epochs, "batch_size": budget.batch_size, "metric": "auroc"},
    }
    for key, value in overrides.items():
        spec[key] = {**spec.get(key, {}), **value}
    return ClassifySpec.model_validate(spec)


class Bench:
    def __init__(self, data: ClassifyData, test: Ped2Frames, device: str) -> None:
        self.data, self.device = data, device
        self.test_images = torch.from_numpy(test.rgb())
        self.test_labels = torch.from_numpy(test.labels)
        self.val_images = data.images[data.val_index]
        self.val_labels = data.labels[data.val_index]

    def val_metrics(self, probabilities: torch.Tensor) -> dict[str, float]:
        return classification_metrics(
            probabilities, self.val_labels, CLASSES, normal_classes=("normal",)
        )

    def test_metrics(self, probabilities: torch.Tensor) -> dict[str, float]:
        metrics = classification_metrics(
            probabilities, self.test_labels, CLASSES, normal_classes=("normal",)
        )
        metrics["aupr"] = average_precision(1.0 - probabilities[:, 0], self.test_labels == 1)
        return {k: round(metrics[k], 4) for k in REPORTED}

    def preprocessing(self, arch: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
        prep = architecture(arch).preprocessing
        return prep.mean, prep.std

    def fit(
        self, spec: ClassifySpec, on_epoch_end: Callable[..., None] | None = None
    ) -> ClassifierFit:
        hooks = FitHooks(
            on_epoch_end=on_epoch_end or (lambda *_: None),
            log=lambda level, message: print(f"  {message}", flush=True),
        )
        return fit_classifier(spec=spec, data=self.data, device=self.device, hooks=hooks)

    def row_of_fit(self, name: str, spec: ClassifySpec, fit: ClassifierFit, seconds: float) -> Row:
        mean, std = self.preprocessing(spec.architecture)
        probs = predict_probabilities(
            fit.model, self.test_images, mean=mean, std=std, device=self.device
        )
        val = {k: round(fit.metrics[k], 4) for k in REPORTED}
        return Row(name, val, self.test_metrics(probs), round(seconds, 1))

    def row_of_fused(self, name: str, fused: FusedClassifier, arch: str, seconds: float) -> Row:
        mean, std = self.preprocessing(arch)
        probs = fused.predict(self.test_images, mean=mean, std=std, device=self.device)
        val = {k: round(fused.metrics[k], 4) for k in REPORTED}
        detail = f"{fused.kind} of trials {list(fused.members)}"
        return Row(name, val, self.test_metrics(probs), round(seconds, 1), detail)


def timed_fit(bench: Bench, name: str, spec: ClassifySpec) -> Row:
    print(f"== {name}", flush=True)
    began = time.monotonic()
    fit = bench.fit(spec)
    return bench.row_of_fit(name, spec, fit, time.monotonic() - began)


def search(
    bench: Bench, spec: ClassifySpec, budget: Budget
) -> tuple[SearchResult[ClassifierFit], float]:
    print(f"== search ({budget.trials} trials)", flush=True)
    study = {"trials": budget.trials, "space": SPACE, "metric": "auroc", "pruner": "median"}
    searched = ClassifySpec.model_validate({**spec.model_dump(), "search": study})
    began = time.monotonic()

    def fit(trial_spec: ClassifySpec, run: TrialRun) -> ClassifierFit:
        print(f" trial {run.number}", flush=True)
        return bench.fit(trial_spec, on_epoch_end=run.on_epoch_end)

    result = run_search(spec=searched, fit=fit, keep_top=budget.k)
    return result, time.monotonic() - began


def fusions(bench: Bench, result: SearchResult[ClassifierFit], budget: Budget) -> list[Row]:
    trials = [Trial(t.number, t.value, t.fit) for t in result.top]
    arch = result.best.spec.architecture
    mean, std = bench.preprocessing(arch)
    rows = []
    began = time.monotonic()
    ensemble = ensemble_trials(
        trials, k=budget.k, metric="auroc", direction="maximize", metrics=bench.val_metrics
    )
    rows.append(
        bench.row_of_fused(f"ensemble-top-{budget.k}", ensemble, arch, time.monotonic() - began)
    )

    def predict(network: nn.Module) -> torch.Tensor:
        return predict_probabilities(
            network, bench.val_images, mean=mean, std=std, device=bench.device
        )

    began = time.monotonic()
    soup = soup_trials(
        trials,
        k=budget.k,
        metric="auroc",
        direction="maximize",
        metrics=bench.val_metrics,
        predict=predict,
    )
    rows.append(bench.row_of_fused(f"soup-top-{budget.k}", soup, arch, time.monotonic() - began))
    return rows


def run(budget: Budget, *, device: str) -> dict[str, Any]:
    frames = load_ped2(size=budget.size)
    data, test = classify_data(frames, budget)
    bench = Bench(data, test, device)
    print(
        f"train {len(data.train_index)}, validation {len(data.val_index)}, test {len(test)} frames",
        flush=True,
    )
    spec = base_spec(data, budget)
    probe = base_spec(
        data, budget, structure={"freeze": {"mode": "all_but_head"}, "head": {"kind": "linear"}}
    )
    rows = [timed_fit(bench, "probe", probe), timed_fit(bench, "default", spec)]
    result, seconds = search(bench, spec, budget)
    best = result.best
    row = bench.row_of_fit("search-best", best.spec, best.fit, seconds)
    params = next(t.params for t in result.study.trials if t.number == best.number)
    rows.append(
        Row(
            row.name,
            row.validation,
            row.test,
            row.seconds,
            f"trial {best.number}: {json.dumps(params)}",
        )
    )
    rows.extend(fusions(bench, result, budget))
    return {
        "budget": asdict(budget),
        "split": {
            "train": len(data.train_index),
            "validation": len(data.val_index),
            "test": len(test),
        },
        "rows": [asdict(r) for r in rows],
        "study": result.study.model_dump(mode="json"),
    }


def print_table(report: dict[str, Any]) -> None:
    print("| run | val AUROC | test AUROC | test AUPR | test accuracy | test macro-F1 | s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for row in report["rows"]:
        t = row["test"]
        cells = [row["validation"]["auroc"], t["auroc"], t["aupr"], t["accuracy"], t["macro_f1"]]
        figures = " | ".join(f"{value:.3f}" for value in cells)
        print(f"| {row['name']} | {figures} | {row['seconds']:.0f} |")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny budget for CI (< 60 s)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--trials", type=int)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    budget = QUICK if args.quick else FULL
    if args.trials:
        budget = replace(budget, trials=args.trials)
    if args.epochs:
        budget = replace(budget, epochs=args.epochs)
    torch.manual_seed(0)
    try:
        report = {"machine": machine(args.device), **run(budget, device=args.device)}
    except Ped2MissingError as exc:
        raise SystemExit(str(exc)) from exc
    print_table(report)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
