"""Cameras: status from ingest and inference, the current frame with its masks, the models
assigned, enable/disable."""

from __future__ import annotations

import base64
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse

from vigil_api.console.backend import ApiDep, ApiProblemError
from vigil_api.console.render import PrincipalDep, render

router = APIRouter(prefix="/console/ui/cameras", include_in_schema=False)
GLOBAL_SCOPE = "*"  # the assignment scope of the global default (routes/model_stages.py)


def models_of(camera: dict[str, Any], assignments: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The production and shadow model a camera runs: its own assignment, else the global one."""
    own = assignments.get(camera["id"])
    chosen = own or assignments.get(GLOBAL_SCOPE) or {}
    return {
        "production": chosen.get("production_model_id"),
        "shadow": chosen.get("shadow_model_id"),
        "from": "its own" if own else "global",
    }


async def _cameras(request: Request, api: ApiDep, principal: PrincipalDep) -> HTMLResponse:
    cameras = await api.get("/api/v1/cameras", limit=500)
    scopes = {a["scope"]: a for a in await api.get("/api/v1/models/assignments")}
    rows = [{"camera": c, "models": models_of(c, scopes)} for c in cameras]
    return render(request, "fragments/cameras.html", principal, rows=rows)


@router.get("", response_class=HTMLResponse)
async def camera_list(request: Request, api: ApiDep, principal: PrincipalDep) -> HTMLResponse:
    return await _cameras(request, api, principal)


@router.get("/{camera_id}/frame", response_class=HTMLResponse)
async def frame(
    request: Request, camera_id: str, api: ApiDep, principal: PrincipalDep
) -> HTMLResponse:
    """The latest frame inline (an <img> cannot send the key), the masks drawn over it."""
    camera = await api.get(f"/api/v1/cameras/{camera_id}")
    try:
        response = await api.call("GET", f"/api/v1/cameras/{camera_id}/frame")
    except ApiProblemError as exc:
        return render(request, "fragments/frame.html", principal, camera=camera, missing=exc)
    image = base64.b64encode(response.content).decode()
    return render(
        request,
        "fragments/frame.html",
        principal,
        camera=camera,
        image=image,
        captured_at=response.headers.get("x-vigil-captured-at"),
    )


@router.post("/{camera_id}/enabled", response_class=HTMLResponse)
async def set_enabled(
    request: Request,
    camera_id: str,
    api: ApiDep,
    principal: PrincipalDep,
    enabled: Annotated[bool, Form()],
) -> HTMLResponse:
    await api.send("PATCH", f"/api/v1/cameras/{camera_id}", {"enabled": enabled})
    return await _cameras(request, api, principal)
