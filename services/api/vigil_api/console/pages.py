"""The console's page shells (no data, no key needed) and who is signed in."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import HTMLResponse

from vigil_api.console.render import PrincipalDep, render

# name in the URL -> title; the first is the home page.
PAGES = {
    "live": "Live",
    "cameras": "Cameras",
    "events": "Events",
    "datasets": "Datasets",
    "jobs": "Jobs",
    "models": "Models",
}

shells = APIRouter(prefix="/console", include_in_schema=False)
router = APIRouter(prefix="/console/ui", include_in_schema=False)


def _shell(request: Request, page: str) -> HTMLResponse:
    return render(request, f"{page}.html", page=page, pages=PAGES)


@shells.get("", response_class=HTMLResponse)
def home(request: Request) -> HTMLResponse:
    return _shell(request, "live")


@shells.get("/{page}", response_class=HTMLResponse)
def page(request: Request, page: str) -> HTMLResponse:
    if page not in PAGES:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"the console has no page {page!r}")
    return _shell(request, page)


@router.get("/me", response_class=HTMLResponse)
def me(request: Request, principal: PrincipalDep) -> HTMLResponse:
    """The signed-in key's name, role and cameras (the header shows them)."""
    return render(request, "fragments/me.html", principal)
