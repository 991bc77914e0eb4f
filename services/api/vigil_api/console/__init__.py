"""The operator console at ``/console``: server-rendered pages (Jinja2) made live with htmx.

The HTML shells need no key; everything they show comes from fragments under ``/console/ui``,
which do (docs/console.md). ``install`` adds both, the vendored static files and ``/``.
"""

from __future__ import annotations

from fastapi import Depends, FastAPI, Request
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from vigil_api.console import cameras, events, models, pages, training
from vigil_api.console.backend import ApiProblemError
from vigil_api.console.render import HERE, problem_fragment
from vigil_api.core.auth import authenticated

STATIC_URL = "/console/static"


def install(app: FastAPI) -> None:
    app.mount(STATIC_URL, StaticFiles(directory=HERE / "static"), name="console-static")
    app.add_exception_handler(ApiProblemError, problem_fragment)

    async def home(_: Request) -> RedirectResponse:
        return RedirectResponse("/console", status_code=307)

    app.add_route("/", home, include_in_schema=False)
    app.include_router(pages.shells)
    for module in (pages, cameras, events, training, models):
        # Data needs a key, as on the JSON API (which the fragments call with the same key).
        app.include_router(module.router, dependencies=[Depends(authenticated)])
