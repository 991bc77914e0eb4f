"""Datasets and jobs: the datasets held, a job submitted from the spec's form, a job's live
progress (stage, epoch or trial, ETA, metrics) and its logs."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from vigil_api.console import job_form
from vigil_api.console.backend import ApiDep, ApiProblemError
from vigil_api.console.render import PrincipalDep, render

router = APIRouter(prefix="/console/ui", include_in_schema=False)
LOG_LINES = 200
FINISHED = {"succeeded", "failed", "cancelled"}


@router.get("/datasets", response_class=HTMLResponse)
async def datasets(request: Request, api: ApiDep, principal: PrincipalDep) -> HTMLResponse:
    listed = await api.get("/api/v1/datasets")
    return render(request, "fragments/datasets.html", principal, datasets=listed)


@router.get("/datasets/upload", response_class=HTMLResponse)
def upload_form(request: Request, principal: PrincipalDep) -> HTMLResponse:
    """The upload form, for a key that may upload (a fleet-wide operator)."""
    return render(request, "fragments/upload.html", principal)


@router.get("/jobs", response_class=HTMLResponse)
async def jobs(request: Request, api: ApiDep, principal: PrincipalDep) -> HTMLResponse:
    page = await api.get("/api/v1/jobs", limit=50)
    return render(request, "fragments/jobs.html", principal, jobs=page["items"])


@router.get("/jobs/form", response_class=HTMLResponse)
async def form(
    request: Request,
    api: ApiDep,
    principal: PrincipalDep,
    task: Annotated[str, Query()] = "one_class",
) -> HTMLResponse:
    tasks = list(job_form.task_schemas())
    task = task if task in tasks else tasks[0]
    names = [d["name"] for d in await api.get("/api/v1/datasets")]
    return render(
        request,
        "fragments/job_form.html",
        principal,
        task=task,
        tasks=tasks,
        fields=job_form.fields(task),
        datasets=names,
    )


@router.post("/jobs", response_class=HTMLResponse)
async def submit(request: Request, api: ApiDep, principal: PrincipalDep) -> HTMLResponse:
    """Queue the job the form describes; the API checks the spec and answers its problems."""
    fields = {k: str(v) for k, v in (await request.form()).items()}
    try:
        spec = job_form.spec_from_form(fields.get("task", ""), fields)
    except (KeyError, ValueError) as exc:
        raise ApiProblemError(422, "Unprocessable Entity", str(exc)) from exc
    job = await api.send("POST", "/api/v1/jobs", spec)
    response = await _job(request, api, principal, job)
    response.headers["HX-Trigger"] = "jobs-changed"
    return response


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
async def job(
    request: Request, job_id: uuid.UUID, api: ApiDep, principal: PrincipalDep
) -> HTMLResponse:
    return await _job(request, api, principal, await api.get(f"/api/v1/jobs/{job_id}"))


async def _job(
    request: Request, api: ApiDep, principal: PrincipalDep, job: dict[str, Any]
) -> HTMLResponse:
    logs = await api.get(f"/api/v1/jobs/{job['id']}/logs", limit=LOG_LINES)
    finished = job["status"] in FINISHED
    response = render(
        request,
        "fragments/job.html",
        principal,
        job=job,
        progress=job.get("progress") or {},
        logs=logs["items"],
        log_limit=LOG_LINES,
        finished=finished,
    )
    if finished:  # the view stops polling; the list shows the new status at once
        response.headers["HX-Trigger"] = "jobs-changed"
    return response
