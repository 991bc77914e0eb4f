"""Models: metrics and lineage, two compared, promote / shadow / roll back with the evaluation
gate's figures in view where the API has the gate (``/api/v1/gate-decisions``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse

from vigil_api.console.backend import ApiDep, ApiProblemError, ConsoleApi
from vigil_api.console.render import PrincipalDep, render

router = APIRouter(prefix="/console/ui/models", include_in_schema=False)
LINEAGE_DEPTH = 10
ACTIONS = {"promote", "shadow", "gate"}


@router.get("", response_class=HTMLResponse)
async def model_list(request: Request, api: ApiDep, principal: PrincipalDep) -> HTMLResponse:
    models = await api.get("/api/v1/models")
    assignments = await api.get("/api/v1/models/assignments")
    return render(
        request, "fragments/models.html", principal, models=models, assignments=assignments
    )


@router.get("/compare", response_class=HTMLResponse)
async def compare(
    request: Request,
    api: ApiDep,
    principal: PrincipalDep,
    a: Annotated[str, Query()],
    b: Annotated[str, Query()],
) -> HTMLResponse:
    comparison = await api.get("/api/v1/models/compare", a=a, b=b)
    return render(request, "fragments/compare.html", principal, c=comparison)


@router.get("/{model_id}", response_class=HTMLResponse)
async def model_detail(
    request: Request, model_id: str, api: ApiDep, principal: PrincipalDep, note: str = ""
) -> HTMLResponse:
    model = await api.get(f"/api/v1/models/{model_id}")
    return render(
        request,
        "fragments/model.html",
        principal,
        model=model,
        lineage=await lineage(api, model),
        gate=await gate_decisions(api, model_id),
        note=note,
    )


async def lineage(api: ConsoleApi, model: dict[str, Any]) -> list[dict[str, Any]]:
    """The model's ancestors by ``parent_model_id``, nearest first (a bounded walk)."""
    chain: list[dict[str, Any]] = []
    parent = model.get("parent_model_id")
    while parent and len(chain) < LINEAGE_DEPTH:
        try:
            ancestor = await api.get(f"/api/v1/models/{parent}")
        except ApiProblemError:  # deleted, or outside this key's scope: the chain stops there
            chain.append({"id": parent, "missing": True})
            break
        chain.append(ancestor)
        parent = ancestor.get("parent_model_id")
    return chain


async def gate_decisions(api: ConsoleApi, model_id: str) -> list[dict[str, Any]] | None:
    """The evaluation gate's decisions on the model; None where this API has no gate."""
    try:
        answer = await api.get("/api/v1/gate-decisions", model_id=model_id)
    except ApiProblemError as exc:
        if exc.status in (404, 405):
            return None
        raise
    items = answer.get("items", answer) if isinstance(answer, dict) else answer
    # Kept to the decisions that name this model, whatever the field (the list may ignore the
    # filter): a decision is about a candidate, and perhaps the production model it faced.
    return [d for d in items if isinstance(d, dict) and model_id in d.values()]


def _scope(cameras: str) -> str | list[str]:
    names = [c.strip() for c in cameras.replace(",", " ").split() if c.strip()]
    return names or "global"


@router.post("/{model_id}/{action}", response_class=HTMLResponse)
async def change_stage(
    request: Request,
    model_id: str,
    action: str,
    api: ApiDep,
    principal: PrincipalDep,
    cameras: Annotated[str, Form()] = "",
    stop: Annotated[bool, Form()] = False,
    override_reason: Annotated[str, Form()] = "",
) -> HTMLResponse:
    """Promote, shadow or run the gate in the scope given (cameras, or global when empty); the
    API decides who may and answers the gate's refusal as a problem shown in place. An admin's
    override reason goes with a promotion as the API's ``override`` (kept in the history)."""
    if action not in ACTIONS:
        raise ApiProblemError(404, "Not Found", f"no model action {action!r}")
    scope = _scope(cameras)
    body: dict[str, Any] = {"scope": scope}
    if action == "shadow":
        body["stop"] = stop
    if action == "gate" and isinstance(scope, list):  # the gate judges one scope at a time
        body["scope"] = scope[0] if len(scope) == 1 else "global"
    if action == "promote" and override_reason.strip():
        body["override"] = {"reason": override_reason.strip()}
    await api.send("POST", f"/api/v1/models/{model_id}/{action}", body)
    response = await model_detail(request, model_id, api, principal, note=f"{action}: done")
    response.headers["HX-Trigger"] = "models-changed"
    return response


@router.post("/rollback", response_class=HTMLResponse)
async def rollback(
    request: Request,
    api: ApiDep,
    principal: PrincipalDep,
    camera: Annotated[str, Form()] = "",
    model_id: Annotated[str, Form()] = "",
) -> HTMLResponse:
    scope = camera.strip() or "global"
    await api.send("POST", "/api/v1/models/rollback", {"scope": scope})
    response = await model_detail(request, model_id, api, principal, note=f"rolled back in {scope}")
    response.headers["HX-Trigger"] = "models-changed"
    return response
