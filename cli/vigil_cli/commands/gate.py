"""``vigil gate``: the evaluation gate a promotion must pass: its policies (how far a candidate
may fall behind production), a check of a model in a scope, and the decisions kept."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from vigil_cli.client import CliError, ExitCode, connect
from vigil_cli.output import Column, JsonOption, console, details, short_time, show, table

app = typer.Typer(name="gate", help="The evaluation gate: policies, checks, decisions.")
Scope = Annotated[str, typer.Argument(help="'global' or a camera id.")]

POLICY_COLUMNS: list[Column] = [
    ("scope", "scope"),
    ("AUROC below production by at most", "auroc_tolerance"),
    ("recall below by at most", "recall_tolerance"),
    ("false alarms / h above by at most", "false_alarms_per_hour_tolerance"),
    ("by", "updated_by"),
    ("updated", lambda p: short_time(p.get("updated_at"))),
]
DECISION_COLUMNS: list[Column] = [
    ("at", lambda d: short_time(d.get("created_at"))),
    ("model", "model_id"),
    ("scope", "scope"),
    ("passed", "passed"),
    ("production", "production_model_id"),
    ("why", "summary"),
    ("by", "actor"),
]


@app.command("policies")
def policies(as_json: JsonOption = False) -> None:
    """The policies this key's scopes are gated by (a camera's overrides the global one)."""
    with connect() as api:
        found = api.get("/api/v1/gate-policies")
    show(found, as_json, lambda: table(found, POLICY_COLUMNS, title="Gate policies"))


@app.command("set")
def set_policy(
    scope: Scope,
    auroc: Annotated[
        float | None, typer.Option("--auroc-tolerance", min=0, help="AUROC below production's.")
    ] = None,
    recall: Annotated[
        float | None,
        typer.Option("--recall-tolerance", min=0, help="Event recall below production's."),
    ] = None,
    false_alarms: Annotated[
        float | None,
        typer.Option(
            "--false-alarms-tolerance", min=0, help="False alarms per hour above production's."
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Set a scope's policy whole (admin): each rule given is checked, the others are not."""
    if auroc is None and recall is None and false_alarms is None:
        raise CliError(
            "give at least one rule (--auroc-tolerance, --recall-tolerance, "
            "--false-alarms-tolerance); `vigil gate clear` removes a policy",
            ExitCode.USAGE,
        )
    body = {
        "auroc_tolerance": auroc,
        "recall_tolerance": recall,
        "false_alarms_per_hour_tolerance": false_alarms,
    }
    with connect() as api:
        policy = api.call("PUT", f"/api/v1/gate-policies/{scope}", json=body)
    show(policy, as_json, lambda: details(policy, POLICY_COLUMNS, title=f"gate of {scope}"))


@app.command("clear")
def clear_policy(scope: Scope) -> None:
    """Remove a scope's policy (admin): a camera falls back to the global one, global to none."""
    with connect() as api:
        api.delete(f"/api/v1/gate-policies/{scope}")
    console().print(f"gate policy of {scope} removed")


@app.command("check")
def check(
    model_id: Annotated[str, typer.Argument(help="The candidate model's id.")],
    scope: Annotated[str, typer.Option(help="'global' or a camera id.")],
    as_json: JsonOption = False,
) -> None:
    """Whether the model may be promoted in the scope, rule by rule (operator).

    The decision is kept (`vigil gate decisions`); exit 1 when it would be refused.
    """
    with connect() as api:
        decision: dict[str, Any] = api.post(f"/api/v1/models/{model_id}/gate", {"scope": scope})
    show(decision, as_json, lambda: _decision(decision))
    if not decision["passed"]:
        raise typer.Exit(int(ExitCode.ERROR))


def _decision(decision: dict[str, Any]) -> None:
    verdict = "passes" if decision["passed"] else "is refused"
    console().print(
        f"{decision['model_id']} {verdict} in {decision['scope']}: {decision['summary']}"
    )
    checks: list[Column] = [
        ("rule", "rule"),
        ("passed", "passed"),
        ("candidate", "candidate"),
        ("production", "production"),
        ("limit", "limit"),
        ("why", "why"),
    ]
    if decision.get("checks"):
        table(decision["checks"], checks, title="Rules")


@app.command("decisions")
def decisions(
    model: Annotated[str | None, typer.Option(help="This model's.")] = None,
    scope: Annotated[str | None, typer.Option(help="'global' or a camera id.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    as_json: JsonOption = False,
) -> None:
    """Gate decisions, newest first: checks and the promotions they allowed or refused."""
    with connect() as api:
        found = api.get("/api/v1/gate-decisions", model_id=model, scope=scope, limit=limit)
    show(found, as_json, lambda: table(found, DECISION_COLUMNS, title="Gate decisions"))
