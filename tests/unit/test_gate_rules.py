"""The gate's rules: tolerances against production, missing evidence never passes."""

from __future__ import annotations

from vigil_api.domain.gate_rules import Rules, checks

PRODUCTION = {"auroc": 0.9, "event_recall": 0.5, "false_alarms_per_hour": 2.0}
ALL = Rules(auroc_tolerance=0.01, recall_tolerance=0.0, false_alarms_per_hour_tolerance=0.5)


def outcome(
    rules: Rules, candidate: dict[str, float], production: dict[str, float] | None
) -> dict[str, bool]:
    return {c.rule: c.passed for c in checks(rules, candidate=candidate, production=production)}


def test_within_tolerance_passes_and_past_it_fails() -> None:
    within = {"auroc": 0.891, "event_recall": 0.5, "false_alarms_per_hour": 2.5}
    assert all(outcome(ALL, within, PRODUCTION).values())
    past = {"auroc": 0.889, "event_recall": 0.49, "false_alarms_per_hour": 2.51}
    assert outcome(ALL, past, PRODUCTION) == dict.fromkeys(PRODUCTION, False)


def test_a_rule_without_tolerance_is_not_checked() -> None:
    assert checks(Rules(), candidate={}, production=PRODUCTION) == []
    only = outcome(Rules(auroc_tolerance=0.0), {"auroc": 0.95}, PRODUCTION)
    assert only == {"auroc": True}


def test_the_figures_and_limit_are_kept() -> None:
    (check,) = checks(Rules(auroc_tolerance=0.05), candidate={"auroc": 0.8}, production=PRODUCTION)
    assert (check.candidate, check.production) == (0.8, 0.9)
    assert check.limit is not None and abs(check.limit - 0.85) < 1e-9
    assert "below production's 0.9000" in check.why


def test_without_production_nothing_to_fall_behind_but_missing_figures_fail() -> None:
    candidate = {"auroc": 0.6, "event_recall": 0.0, "false_alarms_per_hour": 9.0}
    assert all(outcome(ALL, candidate, None).values())
    missing = checks(ALL, candidate={"auroc": float("nan")}, production=PRODUCTION)
    assert not any(c.passed for c in missing)
    assert "needs a confirmed event" in missing[0].why


def test_production_without_a_figure_does_not_block() -> None:
    candidate = {"auroc": 0.6, "event_recall": 0.1, "false_alarms_per_hour": 1.0}
    assert all(outcome(ALL, candidate, {}).values())
