"""Held-out metrics: accuracy, macro-F1, per-class precision/recall, the confusion matrix, and
AUROC/AUPR of the anomaly score (1 - P(normal classes)) with non-normal labels as positives.

Metrics are looked up by name (``METRICS``); a deployment adds ``custom:<name>`` ones with
``register_metric``. ``loss`` is the one metric where lower is better.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from vigil_shared.schemas.manifests import ClassMetrics, Evaluation
from vigil_shared.vision.score_metrics import auroc, average_precision
from vigil_trainer.errors import JobInputError

MetricFn = Callable[[torch.Tensor, torch.Tensor, Sequence[str], Sequence[str]], float]
METRICS: dict[str, MetricFn] = {}
LOWER_IS_BETTER = frozenset({"loss"})


class UnknownMetricError(JobInputError, KeyError):
    def __str__(self) -> str:
        known = sorted({*METRICS, "loss"})
        return f"unknown metric {self.args[0]!r}; registered: {', '.join(known)}"


def register_metric(name: str) -> Callable[[MetricFn], MetricFn]:
    def add(fn: MetricFn) -> MetricFn:
        METRICS[name] = fn
        return fn

    return add


def check_metric(name: str) -> None:
    if name != "loss" and name not in METRICS:
        raise UnknownMetricError(name)


def confusion_matrix(predicted: torch.Tensor, labels: torch.Tensor, n: int) -> torch.Tensor:
    """(n, n) counts; row = true class, column = predicted class."""
    flat = labels.long() * n + predicted.long()
    return torch.bincount(flat, minlength=n * n).reshape(n, n)


def anomaly_scores(
    probabilities: torch.Tensor, classes: Sequence[str], normal_classes: Sequence[str]
) -> torch.Tensor:
    normal = torch.tensor([c in normal_classes for c in classes], dtype=torch.bool)
    return 1.0 - probabilities[:, normal].sum(dim=1)


def per_class(confusion: torch.Tensor, classes: Sequence[str]) -> dict[str, ClassMetrics]:
    cm = confusion.double()
    tp = cm.diag()
    precision = tp / cm.sum(0).clamp(min=1)
    recall = tp / cm.sum(1).clamp(min=1)
    f1 = 2 * precision * recall / (precision + recall).clamp(min=1e-12)
    return {
        c: ClassMetrics(
            precision=float(precision[i]),
            recall=float(recall[i]),
            f1=float(f1[i]),
            support=int(cm[i].sum()),
        )
        for i, c in enumerate(classes)
    }


@register_metric("accuracy")
def _accuracy(p: torch.Tensor, y: torch.Tensor, c: Sequence[str], n: Sequence[str]) -> float:
    return float((p.argmax(1) == y).double().mean()) if len(y) else float("nan")


@register_metric("macro_f1")
def _macro_f1(p: torch.Tensor, y: torch.Tensor, c: Sequence[str], n: Sequence[str]) -> float:
    """Mean F1 over the classes present in the labels (an absent class has no F1)."""
    cm = confusion_matrix(p.argmax(1), y, len(c))
    present = [i for i in range(len(c)) if cm[i].sum() > 0]
    stats = per_class(cm, c)
    return sum(stats[c[i]].f1 for i in present) / max(1, len(present))


@register_metric("balanced_accuracy")
def _balanced(p: torch.Tensor, y: torch.Tensor, c: Sequence[str], n: Sequence[str]) -> float:
    cm = confusion_matrix(p.argmax(1), y, len(c))
    present = [i for i in range(len(c)) if cm[i].sum() > 0]
    return sum(float(cm[i, i] / cm[i].sum()) for i in present) / max(1, len(present))


@register_metric("auroc")
def _auroc(p: torch.Tensor, y: torch.Tensor, c: Sequence[str], n: Sequence[str]) -> float:
    positives = torch.tensor([c[int(i)] not in n for i in y], dtype=torch.bool)
    return auroc(anomaly_scores(p, c, n), positives)


@register_metric("aupr")
def _aupr(p: torch.Tensor, y: torch.Tensor, c: Sequence[str], n: Sequence[str]) -> float:
    positives = torch.tensor([c[int(i)] not in n for i in y], dtype=torch.bool)
    return average_precision(anomaly_scores(p, c, n), positives)


def classification_metrics(
    probabilities: torch.Tensor,
    labels: torch.Tensor,
    classes: Sequence[str],
    *,
    normal_classes: Sequence[str],
) -> dict[str, float]:
    """Every registered metric plus ``precision/<class>``, ``recall/<class>``, ``f1/<class>``."""
    probs, y = probabilities.float().cpu(), labels.long().cpu()
    out = {name: fn(probs, y, classes, normal_classes) for name, fn in METRICS.items()}
    cm = confusion_matrix(probs.argmax(1), y, len(classes))
    for name, stats in per_class(cm, classes).items():
        out[f"precision/{name}"] = stats.precision
        out[f"recall/{name}"] = stats.recall
        out[f"f1/{name}"] = stats.f1
    return out


def evaluation(
    probabilities: torch.Tensor,
    labels: torch.Tensor,
    classes: Sequence[str],
    *,
    val_groups: Sequence[str],
) -> Evaluation:
    cm = confusion_matrix(probabilities.argmax(1).cpu(), labels.cpu(), len(classes))
    return Evaluation(
        validation_groups=tuple(val_groups),
        n_validation=len(labels),
        classes=tuple(classes),
        confusion_matrix=tuple(tuple(int(v) for v in row) for row in cm.tolist()),
        per_class=per_class(cm, classes),
    )
