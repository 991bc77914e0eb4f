"""The training loop: deterministic with a seed, resumable from a checkpoint, cancellable."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from tests.unit.classify_support import random_weights, tiny_spec, two_class_frames
from vigil_shared.schemas.jobs import HyperSpec
from vigil_trainer.cancel import JobCancelled
from vigil_trainer.classify.checkpoint import MemoryCheckpointStore
from vigil_trainer.classify.engine import (
    ClassifierFit,
    FitHooks,
    build_network,
    fit_classifier,
)
from vigil_trainer.classify.job import calibrated_threshold
from vigil_trainer.classify.optim import lr_factor
from vigil_trainer.weights import PretrainedWeights

# Whole fits, tiny as they are, take seconds each on a loaded 2-core CPU.
pytestmark = pytest.mark.slow
WEIGHTS = random_weights()


class WorkerKilledError(Exception):
    """Stands in for a worker dying after an epoch's checkpoint was written."""


def fit(hooks: FitHooks | None = None, **overrides: Any) -> ClassifierFit:
    return fit_classifier(
        spec=tiny_spec(**overrides),
        data=two_class_frames(),
        device="cpu",
        hooks=hooks or FitHooks(),
        weights=WEIGHTS,
    )


def same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_same_seed_same_model_and_metrics() -> None:
    first, second = fit(), fit()
    assert same_weights(first.state_dict, second.state_dict)
    assert first.history == second.history
    assert first.val_probabilities.shape == (len(first.val_labels), 2)
    assert {"accuracy", "macro_f1", "auroc", "best_epoch"} <= set(first.metrics)
    assert not first.model.training


def test_a_killed_fit_resumes_at_the_next_epoch_and_ends_where_an_unbroken_one_does() -> None:
    hyper = {"epochs": 3, "batch_size": 8, "lr": 1e-3, "metric": "loss"}
    unbroken = fit(hyper=hyper)
    store = MemoryCheckpointStore()

    def die_after_second(epoch: int, _: dict[str, float]) -> None:
        if epoch == 1:
            raise WorkerKilledError

    with pytest.raises(WorkerKilledError):
        fit(FitHooks(checkpoint=store, on_epoch_end=die_after_second), hyper=hyper)
    assert store.latest is not None and store.latest.epoch == 1
    lines: list[str] = []
    epochs_run: list[int] = []
    resumed = fit(
        FitHooks(
            checkpoint=store,
            log=lambda _, line: lines.append(line),
            on_epoch_end=lambda e, _: epochs_run.append(e),
        ),
        hyper=hyper,
    )
    assert epochs_run == [2]  # epochs 0 and 1 are not repeated
    assert "resumed from epoch 2 (checkpoint in S3)" in lines
    assert resumed.resumed_from_epoch == 2
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3]
    assert same_weights(resumed.state_dict, unbroken.state_dict)


def test_a_checkpoint_of_another_spec_is_not_resumed() -> None:
    store = MemoryCheckpointStore()
    fit(FitHooks(checkpoint=store), hyper={"epochs": 1, "batch_size": 8})
    lines: list[str] = []
    fit(
        FitHooks(checkpoint=store, log=lambda _, m: lines.append(m)),
        hyper={"epochs": 1, "lr": 0.01},
    )
    assert any("starting over" in line for line in lines)


def test_cancellation_stops_between_steps() -> None:
    asked = iter([False, False, True])
    progress: list[dict[str, Any]] = []
    with pytest.raises(JobCancelled):
        fit(FitHooks(should_stop=lambda: next(asked), progress=progress.append))
    assert len(progress) == 2
    assert {"stage", "epoch", "epochs", "step", "total", "eta_s", "metrics"} <= set(progress[0])


def test_early_stopping_ends_when_the_metric_stalls() -> None:
    hyper = {"epochs": 6, "batch_size": 8, "lr": 1e-12, "early_stopping": {"patience": 1}}
    result = fit(hyper=hyper)  # a learning rate this small never improves macro-F1
    assert result.metrics["epochs_run"] == 2
    assert result.metrics["best_epoch"] == 1


def test_learning_rate_schedule() -> None:
    cosine = HyperSpec(epochs=4, schedule="cosine", warmup_epochs=1)
    assert [round(lr_factor(cosine, e), 3) for e in range(4)] == [0.5, 1.0, 0.75, 0.25]
    step = HyperSpec(epochs=6, schedule="step")
    assert [lr_factor(step, e) for e in (0, 2, 4)] == [1.0, pytest.approx(0.1), pytest.approx(0.01)]


def test_frames_are_trained_at_the_spec_size_and_a_parent_model_is_continued() -> None:
    first = fit(hyper={"epochs": 1, "batch_size": 8}, image_size=64)  # frames are 32 px
    assert first.val_probabilities.shape[1] == 2
    parent = PretrainedWeights(
        state_dict=first.state_dict, provenance=WEIGHTS.provenance, kind="parent"
    )
    net = build_network(tiny_spec(), ("abnormal", "normal"), parent)
    assert same_weights(net.state_dict(), first.state_dict)
    three = build_network(tiny_spec(), ("a", "b", "c"), parent)  # a new class set: new head
    assert torch.equal(
        three.state_dict()["body._conv_stem.weight"], first.state_dict["body._conv_stem.weight"]
    )
    assert three.state_dict()["head.1.weight"].shape[0] == 3


def test_the_classify_threshold_is_calibrated_on_labeled_held_out_frames() -> None:
    scores = torch.tensor([0.05, 0.1, 0.2, 0.3, 0.35, 0.9])
    positives = torch.tensor([False, False, False, True, True, True])
    threshold, source = calibrated_threshold(scores, positives)
    assert source == "validation_f1" and 0.2 < threshold < 0.3  # not one half
    assert calibrated_threshold(scores, torch.zeros(6, dtype=torch.bool)) == (0.5, "default")
    assert calibrated_threshold(scores, torch.ones(6, dtype=torch.bool)) == (0.5, "default")
    everything = torch.tensor([0.0, 0.1, 0.9])  # flagging all is best: the cut stays in [0, 1]
    threshold, _ = calibrated_threshold(everything, torch.tensor([True, False, True]))
    assert 0.0 <= threshold <= 1.0
