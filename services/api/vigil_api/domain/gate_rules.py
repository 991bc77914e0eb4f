"""The rules of the evaluation gate, as pure functions of the figures: a candidate against the
production model it would replace, measured on the same held-out evidence (``evaluations``).

Each rule compares one figure with a tolerance: AUROC and event recall may be lower than
production's by at most their tolerance, false alarms per hour higher by at most its tolerance.
A rule without a tolerance is not checked. Without a production model there is nothing to fall
behind: every rule passes and says so. A figure the evaluation could not measure (no confirmed
event held out, so no AUROC or recall) fails its rule: the gate never passes on missing
evidence, and the reason says how to get it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

AUROC = "auroc"
RECALL = "event_recall"
FALSE_ALARMS = "false_alarms_per_hour"
_NEEDS = {
    AUROC: "a confirmed event and normal frames held out",
    RECALL: "a confirmed event held out",
    FALSE_ALARMS: "normal footage held out",
}


@dataclass(frozen=True)
class Rules:
    """Tolerances per figure; None turns a rule off."""

    auroc_tolerance: float | None = None
    recall_tolerance: float | None = None
    false_alarms_per_hour_tolerance: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Check:
    """One rule's outcome with the figures it compared."""

    rule: str
    passed: bool
    candidate: float | None
    production: float | None
    limit: float | None
    why: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def checks(
    rules: Rules,
    *,
    candidate: Mapping[str, Any],
    production: Mapping[str, Any] | None,
) -> list[Check]:
    """Every rule that has a tolerance, applied to the candidate's and production's figures."""
    out = []
    figures = (candidate, production)
    if rules.auroc_tolerance is not None:
        out.append(_compare(AUROC, rules.auroc_tolerance, *figures, higher_is_better=True))
    if rules.recall_tolerance is not None:
        out.append(_compare(RECALL, rules.recall_tolerance, *figures, higher_is_better=True))
    if rules.false_alarms_per_hour_tolerance is not None:
        tolerance = rules.false_alarms_per_hour_tolerance
        out.append(_compare(FALSE_ALARMS, tolerance, *figures, higher_is_better=False))
    return out


def _figure(metrics: Mapping[str, Any] | None, name: str) -> float | None:
    value = metrics.get(name) if metrics is not None else None
    return float(value) if isinstance(value, int | float) and value == value else None


def _missing(rule: str, ours: float | None, production: Mapping[str, Any] | None) -> Check | None:
    theirs = _figure(production, rule)
    if ours is None:
        why = (
            f"the evaluation has no {rule} for the candidate (it needs {_NEEDS[rule]}): review "
            "more events or retrain on a longer range, or turn this rule off"
        )
        return Check(rule, False, None, theirs, None, why)
    if production is None:
        why = "no production model to compare with: nothing to fall behind"
        return Check(rule, True, ours, None, None, why)
    if theirs is None:
        return Check(rule, True, ours, None, None, f"production has no {rule} on this evidence")
    return None


def _compare(
    rule: str,
    tolerance: float,
    candidate: Mapping[str, Any],
    production: Mapping[str, Any] | None,
    *,
    higher_is_better: bool,
) -> Check:
    ours = _figure(candidate, rule)
    missing = _missing(rule, ours, production)
    if missing is not None:
        return missing
    theirs = _figure(production, rule)
    assert ours is not None and theirs is not None  # _missing returned for any None
    if higher_is_better:
        limit, passed, sign = theirs - tolerance, ours >= theirs - tolerance, "-"
        relation = "at least" if passed else "below"
    else:
        limit, passed, sign = theirs + tolerance, ours <= theirs + tolerance, "+"
        relation = "at most" if passed else "above"
    why = f"{rule} {ours:.4f} is {relation} production's {theirs:.4f} {sign} {tolerance:g}"
    return Check(rule, passed, ours, theirs, limit, why)
