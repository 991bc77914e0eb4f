"""Hyperparameter search: an Optuna study over dotted paths of a classify spec.

Each trial is the job's spec with the sampled values written at their paths (``hyper.lr``,
``structure.freeze.last_n_stages``) and parsed again, so a trial can only run a spec the API
would have accepted. The spec's own values are enqueued as trial 0 when the space can express
them, so the study always measures the default configuration and never returns worse on
validation.

Choices, and why:
- The sampler is TPE seeded with ``hyper.seed``: a redelivered job samples the same trials.
- The pruner reads the validation metric after every epoch (``on_epoch_end``) and stops a trial
  that falls below the median (or the successive-halving rung) of the earlier trials there.
- The study is kept in memory. It lives inside one job on one worker, its trials run one after
  another, and its record (every trial: params, value, state, duration) goes into the model
  manifest. Optuna's RDB storage would add tables to PostgreSQL outside our Alembic migrations
  only to resume a study that the seeded sampler replays anyway.
- The best trial's checkpoint is kept, not retrained: a completed trial trained the full spec
  (pruning only cuts bad trials short), so retraining with the same seed would spend one more
  full training to reproduce it. The top ``keep_top`` trials' fits are kept for fusion.
"""

from __future__ import annotations

import heapq
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, Protocol, TypeVar

import optuna
from pydantic import ValidationError

from vigil_shared.schemas.jobs import ClassifySpec, SearchSpec
from vigil_shared.schemas.manifests import StudySummary, TrialSummary
from vigil_shared.schemas.search_space import (
    CategoricalDistribution,
    Choice,
    FloatDistribution,
    IntDistribution,
    resolve_field,
)
from vigil_trainer.errors import JobInputError

log = logging.getLogger("vigil_trainer")

EpochCallback = Callable[[int, Mapping[str, float]], None]
Progress = Callable[[dict[str, Any]], None]


class HasMetrics(Protocol):
    @property
    def metrics(self) -> Mapping[str, float]: ...


FitT = TypeVar("FitT", bound=HasMetrics)


class SearchError(JobInputError, RuntimeError):
    """The study produced no usable trial."""


@dataclass(frozen=True)
class TrialRun:
    """What a trial's fit needs from the study: its number (for progress and logs) and the
    epoch callback that reports to the pruner (it raises ``optuna.TrialPruned``)."""

    number: int
    on_epoch_end: EpochCallback


FitFn = Callable[[ClassifySpec, TrialRun], FitT]


@dataclass(frozen=True)
class TrialOutcome(Generic[FitT]):
    number: int
    spec: ClassifySpec
    value: float
    fit: FitT


@dataclass(frozen=True)
class SearchResult(Generic[FitT]):
    study: StudySummary
    best: TrialOutcome[FitT]
    top: tuple[TrialOutcome[FitT], ...]
    """The best completed trials, best first (``best`` is ``top[0]``)."""


def apply_params(spec: ClassifySpec, params: Mapping[str, Choice]) -> ClassifySpec:
    """The trial's spec: ``params`` written at their dotted paths, without search or fusion,
    validated again. An unknown path raises ``KeyError``; a bad value ``ValidationError``."""
    data = spec.model_dump()
    data["search"] = None
    data["fusion"] = None
    for path, value in params.items():
        resolve_field(ClassifySpec, path)
        *sections, leaf = path.split(".")
        node = data
        for name in sections:
            if node.get(name) is None:  # an optional section that is off: turn it on
                node[name] = {}
            node = node[name]
        node[leaf] = value
    return ClassifySpec.model_validate(data)


def current_values(spec: ClassifySpec, search: SearchSpec) -> dict[str, Choice] | None:
    """The spec's own value at every searched path, or None when one is outside the space
    (an optional section that is off, or a value the distribution cannot produce)."""
    values: dict[str, Choice] = {}
    for path, distribution in search.space.items():
        node: Any = spec
        for name in path.split("."):
            node = getattr(node, name, None)
            if node is None:
                return None
        if not _within(distribution, node):
            return None
        values[path] = node
    return values


def _within(distribution: Any, value: Any) -> bool:
    if isinstance(distribution, CategoricalDistribution):
        return value in distribution.choices
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if isinstance(distribution, IntDistribution):
        on_step = (int(value) - distribution.low) % distribution.step == 0
        return value == int(value) and distribution.low <= value <= distribution.high and on_step
    return bool(distribution.low <= value <= distribution.high)


def _suggest(trial: optuna.Trial, path: str, distribution: Any) -> Choice:
    if isinstance(distribution, FloatDistribution):
        return trial.suggest_float(path, distribution.low, distribution.high, log=distribution.log)
    if isinstance(distribution, IntDistribution):
        return trial.suggest_int(
            path,
            distribution.low,
            distribution.high,
            step=distribution.step,
            log=distribution.log,
        )
    choice: Choice = trial.suggest_categorical(path, list(distribution.choices))
    return choice


def make_pruner(search: SearchSpec) -> optuna.pruners.BasePruner:
    if search.pruner == "median":
        # Two finished trials before anything is compared: with 8 trials a longer warm-up
        # would leave little to prune.
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)
    if search.pruner == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    return optuna.pruners.NopPruner()


def make_study(search: SearchSpec, *, seed: int) -> optuna.Study:
    # TPE's default of 10 random start-up trials would make a typical 8-trial study random.
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(2, search.trials // 3))
    return optuna.create_study(
        direction=search.direction, sampler=sampler, pruner=make_pruner(search)
    )


def _metric(metrics: Mapping[str, float], name: str) -> float:
    if name not in metrics:
        raise SearchError(
            f"the fit reported no {name!r} metric (it has: {', '.join(sorted(metrics))})"
        )
    return float(metrics[name])


@dataclass
class _Objective(Generic[FitT]):
    spec: ClassifySpec
    search: SearchSpec
    fit: FitFn[FitT]
    keep_top: int
    progress: Progress | None
    durations: dict[int, float] = field(default_factory=dict)
    # min-heap of (signed value, -number, outcome): the worst kept trial is popped first
    kept: list[tuple[float, int, TrialOutcome[FitT]]] = field(default_factory=list)

    def __call__(self, trial: optuna.Trial) -> float:
        started = time.monotonic()
        try:
            return self._run(trial)
        finally:
            self.durations[trial.number] = time.monotonic() - started

    def _run(self, trial: optuna.Trial) -> float:
        params = {p: _suggest(trial, p, d) for p, d in self.search.space.items()}
        trial_spec = apply_params(self.spec, params)
        if self.progress is not None:
            self.progress({"stage": "search", "trial": trial.number, "trials": self.search.trials})

        def on_epoch_end(epoch: int, metrics: Mapping[str, float]) -> None:
            trial.report(_metric(metrics, self.search.metric), step=epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"trial {trial.number} pruned after epoch {epoch}")

        fitted = self.fit(trial_spec, TrialRun(number=trial.number, on_epoch_end=on_epoch_end))
        value = _metric(fitted.metrics, self.search.metric)
        if math.isnan(value):
            raise SearchError(f"trial {trial.number}: {self.search.metric} is NaN")
        self._keep(TrialOutcome(trial.number, trial_spec, value, fitted))
        return value

    def _keep(self, outcome: TrialOutcome[FitT]) -> None:
        sign = 1.0 if self.search.direction == "maximize" else -1.0
        entry = (sign * outcome.value, -outcome.number, outcome)
        if len(self.kept) < self.keep_top:
            heapq.heappush(self.kept, entry)
        elif entry[:2] > self.kept[0][:2]:
            heapq.heapreplace(self.kept, entry)

    def top(self) -> tuple[TrialOutcome[FitT], ...]:
        return tuple(e[2] for e in sorted(self.kept, key=lambda e: e[:2], reverse=True))


TrialState = Literal["complete", "pruned", "failed"]
_STATES: dict[optuna.trial.TrialState, TrialState] = {
    optuna.trial.TrialState.COMPLETE: "complete",
    optuna.trial.TrialState.PRUNED: "pruned",
    optuna.trial.TrialState.FAIL: "failed",
}


def summarize(
    study: optuna.Study, search: SearchSpec, durations: Mapping[int, float], best: int
) -> StudySummary:
    trials = tuple(
        TrialSummary(
            number=t.number,
            state=_STATES.get(t.state, "failed"),
            value=t.value if t.state == optuna.trial.TrialState.COMPLETE else None,
            params=dict(t.params),
            duration_s=round(durations.get(t.number, 0.0), 3),
        )
        for t in study.trials
    )
    return StudySummary(
        metric=search.metric, direction=search.direction, best_trial=best, trials=trials
    )


def run_search(
    *,
    spec: ClassifySpec,
    fit: FitFn[FitT],
    keep_top: int = 1,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> SearchResult[FitT]:
    """Run ``spec.search``; ``fit`` trains one trial's spec and calls ``run.on_epoch_end``
    after each epoch with the validation metrics. A trial that fails (diverges, NaN) is
    recorded as failed and the study goes on; the study fails when no trial completes."""
    search = spec.search
    if search is None:
        raise ValueError("run_search needs a spec with search set")
    study = make_study(search, seed=spec.hyper.seed)
    default = current_values(spec, search)
    if default is not None:
        study.enqueue_trial(dict(default))
    objective = _Objective(spec, search, fit, max(1, keep_top), progress)

    def stop_when_asked(study: optuna.Study, _: optuna.trial.FrozenTrial) -> None:
        if should_stop is not None and should_stop():
            study.stop()

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study.optimize(
        objective,
        n_trials=search.trials,
        timeout=search.timeout_s,
        catch=(SearchError, FloatingPointError, ValidationError),
        callbacks=[stop_when_asked],
    )
    top = objective.top()
    if not top:
        raise SearchError(f"no trial of {len(study.trials)} completed (all pruned or failed)")
    summary = summarize(study, search, objective.durations, top[0].number)
    log.info(
        "search finished",
        extra={"best_trial": top[0].number, "value": top[0].value, "trials": len(study.trials)},
    )
    return SearchResult(study=summary, best=top[0], top=top)
