"""Templates, the key's abilities shown to them, and problems rendered as HTML fragments."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from vigil_api.console.backend import ApiProblemError
from vigil_api.core.auth import authenticated
from vigil_api.core.security import Principal, Role

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=HERE / "templates")

PrincipalDep = Annotated[Principal, Depends(authenticated)]


def abilities(principal: Principal) -> dict[str, Any]:
    """What the page may offer: a viewer gets no button it could not use."""
    return {
        "me": principal,
        "can_operate": principal.role.includes(Role.OPERATOR),
        "can_admin": principal.role.includes(Role.ADMIN),
        "fleet_wide": not principal.scoped,
    }


def render(
    request: Request, name: str, principal: Principal | None = None, **context: Any
) -> HTMLResponse:
    if principal is not None:
        context |= abilities(principal)
    return templates.TemplateResponse(request, name, context)


async def problem_fragment(request: Request, exc: Exception) -> HTMLResponse:
    """A refused or failed API call, shown where its result would have been."""
    assert isinstance(exc, ApiProblemError)
    return templates.TemplateResponse(
        request, "fragments/problem.html", {"problem": exc}, status_code=exc.status
    )
