"""``/docs`` and ``/redoc`` load nothing from outside the API: every script, stylesheet and icon
their HTML names is served by the API itself, and the vendored files are the ones recorded."""

from __future__ import annotations

import hashlib
import re
from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient

from vigil_api.core.settings import ApiSettings
from vigil_api.main import create_app
from vigil_api.routes.api_docs import ASSETS_DIR

CONTENT_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png"}


class References(HTMLParser):
    """Every URL a page makes the browser load: src, href and ReDoc's spec-url."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in {"src", "href", "spec-url"} and value:
                self.urls.append(value)


def references(html: str) -> list[str]:
    parser = References()
    parser.feed(html)
    # Swagger UI's document URL is in its script, not in an attribute.
    parser.urls += re.findall(r"url: '([^']+)'", html)
    return parser.urls


@pytest.fixture(scope="module")
def client() -> TestClient:
    # Without entering the client the lifespan does not run: the pages need no server.
    return TestClient(create_app(ApiSettings(admin_key=None)))


@pytest.mark.parametrize(("page", "script"), [("/docs", "swagger-ui"), ("/redoc", "redoc")])
def test_page_loads_only_what_the_api_serves(client: TestClient, page: str, script: str) -> None:
    response = client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    urls = references(response.text)
    assert any(f"/docs/assets/{script}/" in u and u.endswith(".js") for u in urls), urls
    assert "/openapi.json" in urls
    assert not re.search(r"(https?:)?//[a-z]", response.text), "the page names another host"
    for url in urls:
        assert url.startswith("/"), f"{page} loads {url} from elsewhere"
        asset = client.get(url)
        assert asset.status_code == 200, (
            f"{page} references {url}, which answers {asset.status_code}"
        )
        suffix = "." + url.rsplit(".", 1)[-1]
        if suffix in CONTENT_TYPES:
            assert CONTENT_TYPES[suffix] in asset.headers["content-type"], url


def test_swagger_ui_sends_the_document_to_no_validator(client: TestClient) -> None:
    assert '"validatorUrl": null' in client.get("/docs").text


def test_the_pages_are_not_operations_of_the_document(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if p.startswith(("/docs", "/redoc"))]


def test_vendored_files_match_their_recorded_sha256() -> None:
    """The README beside the assets records where each came from; a changed file must change it."""
    readme = (ASSETS_DIR / "README.md").read_text()
    recorded = dict(
        re.findall(r"\| `([\w/.-]+)` \| `[\w@.-]+` \| `[\w/.-]+` \| `([0-9a-f]{64})`", readme)
    )
    assert len(recorded) == 4, recorded
    for name, sha256 in recorded.items():
        assert hashlib.sha256((ASSETS_DIR / name).read_bytes()).hexdigest() == sha256, name
