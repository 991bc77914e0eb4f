"""Losses and metrics by name, with the properties that make them what they claim."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional

from vigil_shared.schemas.jobs import HyperSpec
from vigil_shared.vision.score_metrics import auroc
from vigil_trainer.classify.evaluate import (
    classification_metrics,
    confusion_matrix,
    evaluation,
)
from vigil_trainer.classify.losses import (
    LOSSES,
    UnknownLossError,
    balanced_weights,
    build_loss,
    focal_loss,
    register_loss,
)

LOGITS = torch.tensor([[2.0, -1.0, 0.5], [0.1, 0.2, 0.3], [-1.0, 3.0, 0.0], [0.0, 0.0, 4.0]])
TARGETS = torch.tensor([0, 2, 1, 0])


def test_focal_at_gamma_zero_is_cross_entropy_and_downweights_easy_frames() -> None:
    ce = functional.cross_entropy(LOGITS, TARGETS)
    assert torch.allclose(focal_loss(LOGITS, TARGETS, gamma=0.0, weight=None), ce)
    assert focal_loss(LOGITS, TARGETS, gamma=2.0, weight=None) < ce


def test_weighted_cross_entropy_balances_rare_classes() -> None:
    counts = torch.tensor([90, 10, 0])
    weights = balanced_weights(counts)
    assert torch.allclose(weights[:2] * counts[:2].float(), torch.tensor([50.0, 50.0]))
    assert weights[2] == 0
    loss = build_loss(HyperSpec(loss="weighted_cross_entropy"), counts)
    expected = functional.cross_entropy(LOGITS, TARGETS, weight=weights)
    assert torch.allclose(loss(LOGITS, TARGETS), expected)


def test_label_smoothing_reaches_the_loss() -> None:
    plain = build_loss(HyperSpec(), torch.ones(3))(LOGITS, TARGETS)
    smooth = build_loss(HyperSpec(label_smoothing=0.2), torch.ones(3))(LOGITS, TARGETS)
    assert not torch.allclose(plain, smooth)


def test_custom_losses_plug_in_by_name_and_unknown_ones_are_listed() -> None:
    @register_loss("custom:double_ce")
    def _double(spec: HyperSpec, counts: torch.Tensor):  # type: ignore[no-untyped-def]
        return lambda logits, targets: 2 * functional.cross_entropy(logits, targets)

    try:
        loss = build_loss(HyperSpec(loss="custom:double_ce"), torch.ones(3))
        assert torch.allclose(loss(LOGITS, TARGETS), 2 * functional.cross_entropy(LOGITS, TARGETS))
        with pytest.raises(UnknownLossError, match=r"registered: .*cross_entropy"):
            build_loss(HyperSpec(loss="custom:missing"), torch.ones(3))
    finally:
        LOSSES.pop("custom:double_ce")


def test_classification_metrics_and_evaluation() -> None:
    classes = ("bike", "car", "normal")
    probs = torch.softmax(LOGITS, dim=1)  # predictions: 0, 2, 1, 2 (the last is wrong)
    metrics = classification_metrics(probs, TARGETS, classes, normal_classes=("normal",))
    assert metrics["accuracy"] == pytest.approx(0.75)
    assert metrics["recall/bike"] == pytest.approx(0.5)
    assert metrics["precision/normal"] == pytest.approx(0.5)
    assert metrics["macro_f1"] == pytest.approx((2 / 3 + 1 + 2 / 3) / 3)
    assert metrics["auroc"] == pytest.approx(auroc(1 - probs[:, 2], TARGETS != 2))
    assert confusion_matrix(probs.argmax(1), TARGETS, 3).tolist() == [
        [1, 0, 1],
        [0, 1, 0],
        [0, 0, 1],
    ]
    report = evaluation(probs, TARGETS, classes, val_groups=("clip9",))
    assert report.confusion_matrix == ((1, 0, 1), (0, 1, 0), (0, 0, 1))
    assert report.per_class["bike"].support == 2
