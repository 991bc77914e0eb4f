"""The hand-written metrics (``score_metrics`` and the classify evaluation) give scikit-learn's
figures, on random scores and on heavily tied ones (a saturating model), so a figure in a
manifest means what a reader who computes it with the usual library gets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import (
    average_precision_score,
    f1_score,
    precision_recall_curve,
    precision_recall_fscore_support,
    roc_auc_score,
)

from vigil_shared.vision.score_metrics import auroc, average_precision, best_f1_threshold
from vigil_trainer.classify.evaluate import classification_metrics

SEEDS = range(6)
CLASSES = ("bike", "car", "normal")


def scores_and_labels(kind: str, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """200 scores with both classes present: continuous, or on 5 levels (most scores tied)."""
    g = torch.Generator().manual_seed(seed)
    positives = torch.rand(200, generator=g) < 0.3
    positives[:2] = torch.tensor([True, False])
    noise = torch.rand(200, generator=g)
    scores = noise + 0.5 * positives.float()
    if kind == "tied":
        scores = (scores * 4 / 1.5).round() / 4
    return scores, positives


@pytest.mark.parametrize("kind", ["random", "tied"])
@pytest.mark.parametrize("seed", SEEDS)
def test_auroc_and_average_precision_equal_sklearns(kind: str, seed: int) -> None:
    scores, positives = scores_and_labels(kind, seed)
    y, s = positives.numpy(), scores.double().numpy()
    assert auroc(scores, positives) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert average_precision(scores, positives) == pytest.approx(
        average_precision_score(y, s), abs=1e-12
    )


@pytest.mark.parametrize("kind", ["random", "tied"])
@pytest.mark.parametrize("seed", SEEDS)
def test_best_f1_is_the_best_on_sklearns_curve_and_its_cut_gives_it(kind: str, seed: int) -> None:
    scores, positives = scores_and_labels(kind, seed)
    y, s = positives.numpy(), scores.double().numpy()
    precision, recall, _ = precision_recall_curve(y, s)
    with np.errstate(invalid="ignore", divide="ignore"):
        curve_f1 = np.nan_to_num(2 * precision * recall / (precision + recall))
    threshold, f1 = best_f1_threshold(scores, positives)
    assert f1 == pytest.approx(float(curve_f1.max()), abs=1e-12)
    assert f1 == pytest.approx(f1_score(y, s > threshold), abs=1e-12)


def probabilities_and_labels(kind: str, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Class probabilities for 150 frames of three classes; ``tied`` draws logits from three
    values, so scores and arg-maxes tie often."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, len(CLASSES), (150,), generator=g)
    logits = torch.randn(150, len(CLASSES), generator=g)
    logits[torch.arange(150), labels] += 1.0
    if kind == "tied":
        logits = logits.round().clamp(-1, 1)
    return torch.softmax(logits, dim=1), labels


@pytest.mark.parametrize("kind", ["random", "tied"])
@pytest.mark.parametrize("seed", SEEDS)
def test_classification_metrics_equal_sklearns(kind: str, seed: int) -> None:
    probs, labels = probabilities_and_labels(kind, seed)
    metrics = classification_metrics(probs, labels, CLASSES, normal_classes=("normal",))
    y, predicted = labels.numpy(), probs.numpy().argmax(axis=1)
    anomaly = (1.0 - probs[:, 2]).numpy()  # as the evaluation computes it, in float32
    abnormal = y != 2
    assert metrics["accuracy"] == pytest.approx(float((predicted == y).mean()), abs=1e-12)
    macro = f1_score(y, predicted, labels=sorted(set(y)), average="macro", zero_division=0)
    assert metrics["macro_f1"] == pytest.approx(macro, abs=1e-12)
    assert metrics["auroc"] == pytest.approx(roc_auc_score(abnormal, anomaly), abs=1e-12)
    assert metrics["aupr"] == pytest.approx(average_precision_score(abnormal, anomaly), abs=1e-12)
    p, r, f, _ = precision_recall_fscore_support(
        y, predicted, labels=range(len(CLASSES)), zero_division=0
    )
    for i, name in enumerate(CLASSES):
        assert metrics[f"precision/{name}"] == pytest.approx(p[i], abs=1e-12)
        assert metrics[f"recall/{name}"] == pytest.approx(r[i], abs=1e-12)
        assert metrics[f"f1/{name}"] == pytest.approx(f[i], abs=1e-12)
