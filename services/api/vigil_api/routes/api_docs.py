"""``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) from assets shipped in the package.

FastAPI's own pages load their scripts from a CDN, so on a site without internet they are a
white page. These are the same pages (FastAPI's templates) pointed at copies vendored under
``docs_assets/`` (versions and sources in its README), served at ``/docs/assets``. Swagger UI's
validator badge is turned off: it would send the document to validator.swagger.io. Like the
OpenAPI document, the pages need no key; trying a route from them needs one (Authorize).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_DIR = Path(__file__).resolve().parent.parent / "docs_assets"
ASSETS_URL = "/docs/assets"


def _page_urls(request: Request, app: FastAPI) -> tuple[str, str]:
    """The document's URL and the assets' base, behind any proxy prefix (``root_path``)."""
    root = str(request.scope.get("root_path", "")).rstrip("/")
    return f"{root}{app.openapi_url}", f"{root}{ASSETS_URL}"


def install(app: FastAPI) -> None:
    """Serve the assets and both pages; ``app`` must be created with ``docs_url=None`` and
    ``redoc_url=None`` so FastAPI does not add its CDN pages first."""
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS_DIR), name="docs-assets")

    async def swagger_ui(request: Request) -> HTMLResponse:
        openapi_url, assets = _page_urls(request, app)
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{assets}/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url=f"{assets}/swagger-ui/swagger-ui.css",
            swagger_favicon_url=f"{assets}/swagger-ui/favicon-32x32.png",
            swagger_ui_parameters={"validatorUrl": None, "persistAuthorization": False},
        )

    async def redoc(request: Request) -> HTMLResponse:
        openapi_url, assets = _page_urls(request, app)
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{assets}/redoc/redoc.standalone.js",
            redoc_favicon_url=f"{assets}/swagger-ui/favicon-32x32.png",
            with_google_fonts=False,
        )

    # Plain routes, as FastAPI adds its own: they are not operations of the document.
    app.add_route("/docs", swagger_ui, include_in_schema=False)
    app.add_route("/redoc", redoc, include_in_schema=False)
