"""Model fusion of a search's trials: ensembles of several networks, or one network with
averaged weights (``fusion.kind`` ``top_k_trials`` and ``weight_average``; ``tuning`` calls it).

- **Probability averaging** (classifiers with one class list): the ensemble's probabilities are
  the mean of its members' softmax outputs.
- **Weight averaging** ("model soups", Wortsman et al. 2022) of fine-tuned checkpoints of one
  architecture fine-tuned from the same pretrained start: the uniform soup is the elementwise
  mean; the greedy soup adds checkpoints best first and keeps each only if validation does not
  get worse. The uniform soup is used when it is at least as good as the best single on
  validation, the greedy soup otherwise, so a soup never scores below its best ingredient there.

An ensemble is served as one artifact: the members' state dicts with keys prefixed
``member<i>.`` and ``ensemble_size`` in the manifest. A soup is an ordinary state dict.
Ensembles of registry models average scores instead (``score_fusion``).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import torch
from torch import nn

from vigil_trainer.errors import JobInputError

StateDict = dict[str, torch.Tensor]
Direction = Literal["maximize", "minimize"]


class FusionError(JobInputError, ValueError):
    """The models cannot be fused as asked (different classes, architectures, too few)."""


# --- ensembles of outputs ----------------------------------------------------------------------


def average_probabilities(probabilities: Sequence[torch.Tensor]) -> torch.Tensor:
    """Mean of (N, C) probability matrices over the same frames and classes."""
    if not probabilities:
        raise FusionError("an ensemble needs at least one member")
    shapes = {tuple(p.shape) for p in probabilities}
    if len(shapes) != 1:
        raise FusionError(f"members disagree on frames or classes: shapes {sorted(shapes)}")
    return torch.stack([p.double() for p in probabilities]).mean(0).float()


class ProbabilityEnsemble(nn.Module):
    """Networks over the same classes; ``forward`` returns averaged probabilities, not logits."""

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        if not members:
            raise FusionError("an ensemble needs at least one member")
        self.members = nn.ModuleList(members)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.stack([torch.softmax(m(images), dim=1) for m in self.members]).mean(0)


def ensemble_state_dict(members: Sequence[StateDict]) -> StateDict:
    """The ensemble artifact: member ``i``'s tensors under ``member<i>.``."""
    return {f"member{i}.{k}": v for i, state in enumerate(members) for k, v in state.items()}


def split_ensemble_state_dict(state: StateDict) -> list[StateDict]:
    members: dict[int, StateDict] = {}
    for key, value in state.items():
        head, _, rest = key.partition(".")
        if not head.startswith("member") or not head[6:].isdigit():
            raise FusionError(f"{key!r} is not an ensemble key (member<i>.<name>)")
        members.setdefault(int(head[6:]), {})[rest] = value
    return [members[i] for i in sorted(members)]


# --- weight averaging --------------------------------------------------------------------------


def check_same_architecture(states: Sequence[StateDict]) -> None:
    first = states[0]
    for i, state in enumerate(states[1:], start=1):
        if state.keys() != first.keys():
            diff = sorted(state.keys() ^ first.keys())[:3]
            raise FusionError(
                f"checkpoint {i} has other layers than checkpoint 0 ({', '.join(diff)}...): "
                "weight averaging needs one architecture and head"
            )
        for key, value in state.items():
            if value.shape != first[key].shape:
                raise FusionError(
                    f"checkpoint {i}: {key} is {tuple(value.shape)}, "
                    f"checkpoint 0 has {tuple(first[key].shape)}"
                )


def uniform_soup(states: Sequence[StateDict]) -> StateDict:
    """Elementwise mean of floating-point tensors; counters (BatchNorm's
    ``num_batches_tracked``) are taken from the first checkpoint."""
    if not states:
        raise FusionError("weight averaging needs at least one checkpoint")
    check_same_architecture(states)
    soup: StateDict = {}
    for key, value in states[0].items():
        if value.is_floating_point():
            stacked = torch.stack([s[key].double() for s in states])
            soup[key] = stacked.mean(0).to(value.dtype)
        else:
            soup[key] = value.clone()
    return soup


@dataclass(frozen=True)
class Candidate:
    """A checkpoint and its validation value (the study's metric)."""

    name: str
    state_dict: StateDict
    value: float


@dataclass(frozen=True)
class Soup:
    kind: Literal["uniform", "greedy"]
    state_dict: StateDict
    ingredients: tuple[str, ...]
    value: float
    uniform_value: float


def _better_or_equal(a: float, b: float, direction: Direction) -> bool:
    if math.isnan(a):
        return False
    return a >= b if direction == "maximize" else a <= b


def greedy_soup(
    ranked: Sequence[Candidate], *, evaluate: Callable[[StateDict], float], direction: Direction
) -> tuple[list[Candidate], StateDict, float]:
    """Add checkpoints best first; keep one only when validation does not get worse."""
    kept = [ranked[0]]
    state, value = ranked[0].state_dict, ranked[0].value
    for candidate in ranked[1:]:
        trial = uniform_soup([c.state_dict for c in [*kept, candidate]])
        trial_value = evaluate(trial)
        if _better_or_equal(trial_value, value, direction):
            kept.append(candidate)
            state, value = trial, trial_value
    return kept, state, value


def weight_average(
    candidates: Sequence[Candidate],
    *,
    evaluate: Callable[[StateDict], float],
    direction: Direction = "maximize",
) -> Soup:
    """The uniform soup when it is at least as good on validation as the best checkpoint,
    else the greedy soup (which starts from the best checkpoint, so it is never worse)."""
    if len(candidates) < 2:
        raise FusionError(f"weight averaging needs at least 2 checkpoints, got {len(candidates)}")
    sign = 1.0 if direction == "maximize" else -1.0
    ranked = sorted(candidates, key=lambda c: sign * c.value, reverse=True)
    uniform = uniform_soup([c.state_dict for c in ranked])
    uniform_value = evaluate(uniform)
    if _better_or_equal(uniform_value, ranked[0].value, direction):
        names = tuple(c.name for c in ranked)
        return Soup("uniform", uniform, names, uniform_value, uniform_value)
    kept, state, value = greedy_soup(ranked, evaluate=evaluate, direction=direction)
    return Soup("greedy", state, tuple(c.name for c in kept), value, uniform_value)


# --- running a network on held-out frames ------------------------------------------------------


@torch.inference_mode()
def predict_probabilities(
    model: nn.Module,
    images: torch.Tensor,
    *,
    mean: Sequence[float],
    std: Sequence[float],
    device: str = "cpu",
    batch_size: int = 64,
    softmax: bool = True,
) -> torch.Tensor:
    """Probabilities on uint8 (N, 3, S, S) frames: the softmax of a classifier's logits, or
    (``softmax=False``) what a network that already returns probabilities gives."""
    model.eval().to(device)
    m = torch.tensor(mean, device=device).view(1, 3, 1, 1)
    s = torch.tensor(std, device=device).view(1, 3, 1, 1)
    out: list[torch.Tensor] = []
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size].to(device).float().div_(255.0)
        output = model((batch - m) / s).float()
        out.append((torch.softmax(output, dim=1) if softmax else output).cpu())
    return torch.cat(out) if out else torch.empty((0, 0))


# --- fusing a search's trials (the job's fusion step) -------------------------------------------


@dataclass(frozen=True)
class FusedClassifier:
    """What the registry stores (``state_dict``, ``ensemble_size``) and what evaluation runs:
    ``network`` returns probabilities for an ensemble, logits for a soup."""

    kind: Literal["ensemble", "greedy_ensemble", "uniform_soup", "greedy_soup"]
    network: nn.Module
    state_dict: StateDict
    ensemble_size: int
    members: tuple[int, ...]
    """The trial numbers fused."""
    val_probabilities: torch.Tensor
    metrics: dict[str, float]

    def predict(
        self, images: torch.Tensor, *, mean: Sequence[float], std: Sequence[float], device: str
    ) -> torch.Tensor:
        softmax = self.kind not in ("ensemble", "greedy_ensemble")
        return predict_probabilities(
            self.network, images, mean=mean, std=std, device=device, softmax=softmax
        )


class TrialFit(Protocol):
    """What fusion needs from a trial's fit (the engine's ``ClassifierFit`` has it)."""

    @property
    def model(self) -> nn.Module: ...

    @property
    def val_probabilities(self) -> torch.Tensor: ...

    @property
    def state_dict(self) -> StateDict: ...


@dataclass(frozen=True)
class Trial:
    number: int
    value: float
    fit: TrialFit


Metrics = Callable[[torch.Tensor], dict[str, float]]
"""Validation metrics of (N, C) probabilities on the validation frames."""


def ensemble_trials(
    trials: Sequence[Trial], *, k: int, metric: str, direction: Direction, metrics: Metrics
) -> FusedClassifier:
    """Probability averaging of the best ``k`` trials (``trials`` best first) whose network has
    the best trial's layers: one manifest (architecture, head) describes every member.

    Like the soups, the uniform ensemble is kept when it is at least as good as the best trial
    on validation; otherwise members are added best first and kept only when validation does
    not get worse (greedy ensemble selection), which may leave the best trial alone. The
    members' validation probabilities are already known, so choosing costs no inference."""
    best = trials[0].fit.state_dict
    members = [t for t in trials[:k] if _compatible(best, t.fit.state_dict)]
    if len(members) < 2:
        raise FusionError(f"an ensemble of trials needs 2 completed trials, got {len(members)}")

    def value(chosen: Sequence[Trial]) -> float:
        return metrics(average_probabilities([t.fit.val_probabilities for t in chosen]))[metric]

    kind: Literal["ensemble", "greedy_ensemble"] = "ensemble"
    if not _better_or_equal(value(members), members[0].value, direction):
        kind, kept, current = "greedy_ensemble", [members[0]], members[0].value
        for candidate in members[1:]:
            candidate_value = value([*kept, candidate])
            if _better_or_equal(candidate_value, current, direction):
                kept, current = [*kept, candidate], candidate_value
        members = kept
    probabilities = average_probabilities([t.fit.val_probabilities for t in members])
    states = [t.fit.state_dict for t in members]
    return FusedClassifier(
        kind=kind,
        network=ProbabilityEnsemble([t.fit.model for t in members]),
        state_dict=ensemble_state_dict(states) if len(states) > 1 else dict(states[0]),
        ensemble_size=len(members),
        members=tuple(t.number for t in members),
        val_probabilities=probabilities,
        metrics=metrics(probabilities),
    )


def soup_trials(
    trials: Sequence[Trial],
    *,
    k: int,
    metric: str,
    direction: Direction,
    metrics: Metrics,
    predict: Callable[[nn.Module], torch.Tensor],
) -> FusedClassifier:
    """Weight averaging of the best ``k`` trials whose network has the best trial's layers
    (a trial with another head cannot be averaged and is left out). ``predict`` gives a
    network's validation probabilities."""
    best = trials[0]
    same = [t for t in trials[:k] if _compatible(best.fit.state_dict, t.fit.state_dict)]
    network = copy.deepcopy(best.fit.model)

    def evaluate(state: StateDict) -> float:
        network.load_state_dict(state)
        return metrics(predict(network))[metric]

    candidates = [Candidate(str(t.number), t.fit.state_dict, t.value) for t in same]
    soup = weight_average(candidates, evaluate=evaluate, direction=direction)
    network.load_state_dict(soup.state_dict)
    probabilities = predict(network)
    return FusedClassifier(
        kind="uniform_soup" if soup.kind == "uniform" else "greedy_soup",
        network=network,
        state_dict=soup.state_dict,
        ensemble_size=1,
        members=tuple(int(name) for name in soup.ingredients),
        val_probabilities=probabilities,
        metrics=metrics(probabilities),
    )


def _compatible(a: StateDict, b: StateDict) -> bool:
    return a.keys() == b.keys() and all(a[key].shape == b[key].shape for key in a)
