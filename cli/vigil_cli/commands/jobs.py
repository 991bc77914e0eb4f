"""``vigil jobs``: submit, watch (a live bar), logs, list, show, cancel."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

from vigil_cli.client import ApiClient, CliError, ExitCode, connect
from vigil_cli.output import (
    Column,
    JsonOption,
    console,
    details,
    emit_json_line,
    err_console,
    short_time,
    show,
    table,
)
from vigil_cli.progress import FINISHED, describe, eta_text, metrics_text

app = typer.Typer(name="jobs", help="Fine-tuning jobs: submit, watch, read logs.")
JobId = Annotated[str, typer.Argument(help="The job's id.")]
Interval = Annotated[float, typer.Option(min=0.2, help="Seconds between polls.")]

COLUMNS: list[Column] = [
    ("id", "id"),
    ("name", "name"),
    ("task", "task"),
    ("status", "status"),
    ("stage", lambda j: describe(j).label),
    ("created", lambda j: short_time(j.get("created_at"))),
    ("model", "model_id"),
]
DETAIL: list[Column] = [
    *COLUMNS,
    ("dataset", lambda j: f"{j['spec']['dataset']['name']} {j['spec']['dataset']['version'][:12]}"),
    ("metrics", lambda j: metrics_text((j.get("progress") or {}).get("metrics"))),
    ("error", "error"),
    ("started", lambda j: short_time(j.get("started_at"))),
    ("finished", lambda j: short_time(j.get("finished_at"))),
]


def read_spec(path: Path) -> dict[str, Any]:
    text = sys.stdin.read() if str(path) == "-" else path.read_text()
    try:
        spec = json.loads(text)
    except ValueError as exc:
        raise CliError(f"{path}: not JSON ({exc})", ExitCode.USAGE) from exc
    if not isinstance(spec, dict):
        raise CliError(f"{path}: a job spec is a JSON object", ExitCode.USAGE)
    return spec


@app.command("submit")
def submit(
    spec_file: Annotated[
        Path | None,
        typer.Option("--spec", help="A JSON job spec ('-': stdin); see docs/training.md."),
    ] = None,
    name: Annotated[str | None, typer.Option(help="Job name (without --spec).")] = None,
    dataset: Annotated[str | None, typer.Option(help="Dataset name (latest version).")] = None,
    task: Annotated[str, typer.Option(help="one_class or classify.")] = "one_class",
    architecture: Annotated[str | None, typer.Option(help="classify: the backbone.")] = None,
    watch_it: Annotated[bool, typer.Option("--watch", help="Then watch it to the end.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the job's id.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Queue a job (operator): a full spec with --spec, or --name and --dataset for defaults."""
    if spec_file is not None:
        spec = read_spec(spec_file)
    elif name and dataset:
        spec = {"name": name, "task": task, "dataset": {"name": dataset}}
        if architecture:
            spec["architecture"] = architecture
    else:
        raise CliError("give --spec FILE, or --name and --dataset", ExitCode.USAGE)
    with connect() as api:
        job = api.post("/api/v1/jobs", spec)
        if watch_it:
            watch_job(api, str(job["id"]), interval_s=1.0, as_json=as_json, quiet=quiet)
            return
    if quiet:
        typer.echo(job["id"])
        return
    show(job, as_json, lambda: details(job, DETAIL, title=f"job {job['id']} queued"))


def watch_job(
    api: ApiClient, job_id: str, *, interval_s: float, as_json: bool, quiet: bool = False
) -> None:
    """Poll the job until it ends, drawing its progress on stderr; exit 8 unless it succeeded.
    ``quiet``: stdout gets only the model's id (the bar is still drawn, on stderr)."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[eta]}  {task.fields[metrics]}"),
    )
    with Progress(*columns, console=err_console(), disable=as_json) as bar:
        task = bar.add_task(job_id, total=None, eta="", metrics="")
        while True:
            job: dict[str, Any] = api.get(f"/api/v1/jobs/{job_id}")
            now = describe(job)
            bar.update(
                task,
                description=now.label,
                completed=now.completed,
                total=now.total,
                eta=eta_text(now.eta_s),
                metrics=now.metrics,
            )
            if job["status"] in FINISHED:
                break
            time.sleep(interval_s)
    if quiet and job["status"] == "succeeded":
        typer.echo(job["model_id"])
    else:
        show(job, as_json, lambda: _outcome(job))
    if job["status"] != "succeeded":
        raise typer.Exit(int(ExitCode.JOB_FAILED))


def _outcome(job: dict[str, Any]) -> None:
    if job["status"] == "succeeded":
        console().print(f"job {job['id']} succeeded: model {job['model_id']}")
    else:
        err_console().print(f"job {job['id']} {job['status']}: {job.get('error') or '-'}")


@app.command("watch")
def watch(
    job_id: JobId,
    interval: Interval = 1.0,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print only the model's id at the end.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """A live bar (stage, trial, epoch, ETA, metrics) until the job ends.

    Exit 8 if it did not succeed. --json: no bar, the finished job.
    """
    with connect() as api:
        watch_job(api, job_id, interval_s=interval, as_json=as_json, quiet=quiet)


@app.command("logs")
def logs(
    job_id: JobId,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Until the job ends.")] = False,
    interval: Interval = 1.0,
    as_json: JsonOption = False,
) -> None:
    """The trainer's log lines, oldest first (--json: one JSON object per line)."""
    after: int | None = None
    with connect() as api:
        while True:
            page = api.get(f"/api/v1/jobs/{job_id}/logs", after=after, limit=1000)
            for line in page["items"]:
                if as_json:
                    emit_json_line(line)
                else:
                    console().print(
                        f"{short_time(line['at'])} {line['level']:<7} {line['message']}"
                    )
            after = page["next_after"]
            if page["items"]:
                continue  # more may be waiting: read on before sleeping
            if not follow or api.get(f"/api/v1/jobs/{job_id}")["status"] in FINISHED:
                return
            time.sleep(interval)


@app.command("list")
def list_jobs(
    status: Annotated[str | None, typer.Option(help="queued, running, succeeded, ...")] = None,
    name: Annotated[str | None, typer.Option(help="Exact job name.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 20,
    as_json: JsonOption = False,
) -> None:
    """Jobs, newest first (--json: the page, with next_cursor)."""
    with connect() as api:
        page = api.get("/api/v1/jobs", status=status, name=name, limit=limit)
    show(page, as_json, lambda: table(page["items"], COLUMNS, title="Jobs"))


@app.command("show")
def show_job(job_id: JobId, as_json: JsonOption = False) -> None:
    """One job: spec, status, progress, error, model."""
    with connect() as api:
        job = api.get(f"/api/v1/jobs/{job_id}")
    show(job, as_json, lambda: details(job, DETAIL, title=f"job {job_id}"))


@app.command("cancel")
def cancel(job_id: JobId, as_json: JsonOption = False) -> None:
    """Cancel a job (operator): queued ones at once, running ones at their next step."""
    with connect() as api:
        job = api.post(f"/api/v1/jobs/{job_id}/cancel")
    show(job, as_json, lambda: details(job, DETAIL, title=f"job {job_id}"))
