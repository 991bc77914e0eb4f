"""``vigil models``: the registry (list, show, compare), its stages (promote, shadow,
rollback), which inference follows live, and the loop's record (evaluations, history)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any

import typer

from vigil_cli.client import CliError, ExitCode, connect
from vigil_cli.options import Reason
from vigil_cli.output import (
    Column,
    JsonOption,
    console,
    details,
    err_console,
    short_time,
    show,
    table,
    text,
)

app = typer.Typer(name="models", help="Models: the registry, promotion, shadowing, rollback.")
ModelId = Annotated[str, typer.Argument(help="The model's id.")]
Cameras = Annotated[
    list[str] | None, typer.Option("--camera", "-c", help="This camera (repeatable).")
]
Global = Annotated[
    bool, typer.Option("--global", help="The global default (cameras without their own).")
]

COLUMNS: list[Column] = [
    ("id", "id"),
    ("task", "task"),
    ("architecture", "architecture"),
    ("stage", "stage"),
    ("dataset", "dataset_name"),
    ("threshold", "threshold"),
    ("metrics", "metrics"),
    ("created", lambda m: short_time(m.get("created_at"))),
]
DETAIL: list[Column] = [
    *COLUMNS,
    ("dataset version", "dataset_version"),
    ("parent", "parent_model_id"),
    ("job", "job_id"),
    ("artifact sha256", "artifact_sha256"),
    ("members", "members"),
    ("expected false alarms", lambda m: expected_alarms(m.get("expected_false_alarms"))),
    ("production in", lambda m: _scopes(m, "production_model_id")),
    ("shadow in", lambda m: _scopes(m, "shadow_model_id")),
]
CHANGE_COLUMNS: list[Column] = [
    ("scope", "scope"),
    ("action", "action"),
    ("production", "production_model_id"),
    ("shadow", "shadow_model_id"),
    ("previous production", "previous_production_model_id"),
]


def versus(metric: str) -> Callable[[Mapping[str, Any]], str]:
    """An evaluation's figure for the candidate, production's in brackets when it had one."""

    def cell(evaluation: Mapping[str, Any]) -> str:
        ours = text((evaluation.get("metrics") or {}).get(metric))
        production = evaluation.get("production_metrics")
        return ours if production is None else f"{ours} ({text(production.get(metric))})"

    return cell


EVALUATION_COLUMNS: list[Column] = [
    ("created", lambda e: short_time(e.get("created_at"))),
    ("candidate", "model_id"),
    ("production", "production_model_id"),
    ("scope", "scope"),
    ("dataset", lambda e: f"{e['dataset_name']} {str(e['dataset_version'])[:12]}"),
    ("AUROC", versus("auroc")),
    ("event recall", versus("event_recall")),
    ("false alarms / h", versus("false_alarms_per_hour")),
]
HISTORY_COLUMNS: list[Column] = [
    ("at", lambda c: short_time(c.get("at"))),
    ("scope", "scope"),
    ("action", "action"),
    ("model", "model_id"),
    ("previous", "previous_model_id"),
    ("by", "actor"),
    ("reason", "reason"),
]


def expected_alarms(fa: Mapping[str, Any] | None) -> str | None:
    """The fit's false events per camera-hour, its interval, the footage it rests on and the
    debounce they were counted with (which inference follows), as the console's model line."""
    if not fa:
        return None
    minutes = 60 * float(fa["calibration_hours"])
    line = (
        f"{fa['per_hour']:.2g} per camera-hour (90%: {fa['low']:.2g}-{fa['high']:.2g}, from "
        f"{minutes:.2g} min of normal footage"
    )
    if fa.get("open_k"):
        line += f"; events opened on {fa['open_k']} of {fa['open_n']} hot frames"
        if fa.get("close_after"):
            line += f", closed after {fa['close_after']} quiet ones"
    return line + ")"


def _scopes(model: Mapping[str, Any], role: str) -> list[str]:
    return [a["scope"] for a in model.get("assignments", []) if a.get(role) == model["id"]]


def scope_of(camera: list[str] | None, global_: bool) -> str | list[str]:
    """The API's scope: ``"global"`` or a list of cameras; exactly one of the two options."""
    if bool(camera) == global_:
        raise CliError("name the scope: --camera ID (repeatable) or --global", ExitCode.USAGE)
    return "global" if global_ else list(camera or [])


@app.command("list")
def list_models(
    stage: Annotated[str | None, typer.Option(help="candidate, production or archived.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    as_json: JsonOption = False,
) -> None:
    """Models, newest first, with their metrics."""
    with connect() as api:
        models = api.get("/api/v1/models", stage=stage, limit=limit)
    show(models, as_json, lambda: table(models, COLUMNS, title="Models"))


@app.command("show")
def show_model(model_id: ModelId, as_json: JsonOption = False) -> None:
    """One model: lineage, manifest, where it is production or shadow."""
    with connect() as api:
        model = api.get(f"/api/v1/models/{model_id}")
    show(model, as_json, lambda: details(model, DETAIL, title=f"model {model_id}"))


@app.command("compare")
def compare(
    a: Annotated[str, typer.Argument(help="A model id (the baseline).")],
    b: Annotated[str, typer.Argument(help="Another model id.")],
    as_json: JsonOption = False,
) -> None:
    """Metrics side by side (delta = b - a); only models evaluated on the same frames."""
    with connect() as api:
        result = api.get("/api/v1/models/compare", a=a, b=b)
    rows = [{"metric": k, **v} for k, v in result["metrics"].items()]
    columns: list[Column] = [("metric", "metric"), (a, "a"), (b, "b"), ("delta", "delta")]
    title = f"{a} vs {b} on {result['dataset_name']} {str(result['dataset_version'])[:12]}"
    show(result, as_json, lambda: table(rows, columns, title=title))


def _changed(changes: Any, as_json: bool) -> None:
    rows = changes if isinstance(changes, list) else [changes]
    show(changes, as_json, lambda: table(rows, CHANGE_COLUMNS, title="Assignments changed"))


@app.command("promote")
def promote(
    model_id: ModelId,
    camera: Cameras = None,
    global_: Global = False,
    override_gate: Annotated[
        str | None,
        typer.Option(
            help="Admins: promote although the evaluation gate refuses, saying why (kept in "
            "the history)."
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Make the model production for the cameras or globally (operator); inference swaps live.

    Where a gate policy applies, the model's evaluation must pass it (`vigil gate check`).
    """
    body: dict[str, Any] = {"scope": scope_of(camera, global_)}
    if override_gate is not None:
        body["override"] = {"reason": override_gate}
    with connect() as api:
        try:
            changes = api.post(f"/api/v1/models/{model_id}/promote", body)
        except CliError as exc:
            raise gate_refusal(exc) from exc
    _changed(changes, as_json)


def gate_refusal(exc: CliError) -> CliError:
    """A gate's 409 says how to override in the API's words (a JSON body): say it in the
    command line's too."""
    if exc.problem.get("status") != 409 or "override" not in str(exc.problem.get("detail")):
        return exc
    hint = "\n  (an admin may promote it anyway: --override-gate REASON)"
    return CliError(f"{exc}{hint}", exc.code, exc.problem)


@app.command("shadow")
def shadow(
    model_id: ModelId,
    camera: Cameras = None,
    global_: Global = False,
    stop: Annotated[bool, typer.Option("--stop", help="Stop shadowing in the scope.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Score the model beside production, raising no events (operator)."""
    body = {"scope": scope_of(camera, global_), "stop": stop}
    with connect() as api:
        changes = api.post(f"/api/v1/models/{model_id}/shadow", body)
    _changed(changes, as_json)


@app.command("rollback")
def rollback(
    camera: Annotated[str | None, typer.Option("--camera", "-c", help="This camera.")] = None,
    global_: Global = False,
    as_json: JsonOption = False,
) -> None:
    """Return a scope to the production model before its latest promotion (operator)."""
    scope = scope_of([camera] if camera else None, global_)
    with connect() as api:
        change = api.post("/api/v1/models/rollback", {"scope": scope if global_ else camera})
    _changed(change, as_json)
    if not as_json:
        console().print(f"{change['scope']}: production is now {change['production_model_id']}")


@app.command("evaluations")
def evaluations(
    model: Annotated[
        str | None, typer.Option(help="As the candidate or the production it was compared with.")
    ] = None,
    camera: Annotated[str | None, typer.Option("--camera", "-c", help="This camera's.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 20,
    as_json: JsonOption = False,
) -> None:
    """Candidates against the production model they would replace, scored on the same held-out
    footage, newest first: the candidate's figures, production's in brackets."""
    with connect() as api:
        found = api.get("/api/v1/evaluations", model_id=model, camera_id=camera, limit=limit)
    show(found, as_json, lambda: table(found, EVALUATION_COLUMNS, title="Evaluations"))


@app.command("history")
def history(
    camera: Annotated[str | None, typer.Option("--camera", "-c", help="This camera's.")] = None,
    global_: Global = False,
    model: Annotated[str | None, typer.Option(help="Changes to or from this model.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    as_json: JsonOption = False,
) -> None:
    """Promotions, shadows and rollbacks, newest first, with who made them and why."""
    if camera and global_:
        raise CliError("one scope: --camera ID or --global", ExitCode.USAGE)
    scope = "global" if global_ else camera
    with connect() as api:
        changes = api.get("/api/v1/stage-changes", scope=scope, model_id=model, limit=limit)
    show(changes, as_json, lambda: table(changes, HISTORY_COLUMNS, title="Stage changes"))


@app.command("delete")
def delete_model(model_id: ModelId, reason: Reason = None) -> None:
    """Delete a model: artifact, manifest and registry row (fleet-wide operator); refused while
    it is production or shadow anywhere, or an ensemble's member."""
    with connect() as api:
        api.delete(f"/api/v1/models/{model_id}", reason=reason)
    err_console().print(f"model {model_id} deleted", markup=False)
