"""The console's page shells load nothing from outside the API (htmx is vendored, recorded by
its sha256); its job form turns a submitted form into the spec the schema describes; the
evaluation gate's figures appear only where the API has the gate."""

from __future__ import annotations

import asyncio
import hashlib
import re

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.unit.test_api_docs_offline import references
from vigil_api.console import job_form, models
from vigil_api.console.backend import ApiProblemError, ConsoleApi
from vigil_api.console.pages import PAGES
from vigil_api.console.render import HERE
from vigil_api.core.settings import ApiSettings
from vigil_api.main import create_app

STATIC = HERE / "static"


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(create_app(ApiSettings(admin_key=None)))  # no lifespan: no servers


@pytest.mark.parametrize("page", list(PAGES))
def test_each_page_loads_only_what_the_api_serves(client: TestClient, page: str) -> None:
    response = client.get(f"/console/{page}")
    assert response.status_code == 200
    assert not re.search(r"(https?:)?//[a-z]", response.text), "the page names another host"
    scripts = [u for u in references(response.text) if u.startswith("/console/static/")]
    assert {"/console/static/htmx.min.js", "/console/static/console.js"} <= set(scripts)
    for url in scripts:
        assert client.get(url).status_code == 200, url


def test_no_static_file_names_another_host_but_htmx_itself() -> None:
    for name in ("console.js", "console.css"):
        assert not re.search(r"https?://", (STATIC / name).read_text()), name


def test_vendored_htmx_matches_its_recorded_sha256() -> None:
    readme = (STATIC / "README.md").read_text()
    recorded = dict(
        re.findall(
            r"\| `([\w.-]+)` \| `htmx.org@2\.0\.\d+` \| `[\w/.-]+` \| `([0-9a-f]{64})`", readme
        )
    )
    assert list(recorded) == ["htmx.min.js"]
    assert (
        hashlib.sha256((STATIC / "htmx.min.js").read_bytes()).hexdigest() == recorded["htmx.min.js"]
    )


def test_the_form_has_each_tasks_scalar_fields_one_object_down() -> None:
    one_class = {f.name: f for f in job_form.fields("one_class")}
    assert one_class["name"].required and one_class["dataset.name"].required
    assert one_class["appearance.bank_size"].kind == "integer"
    assert "task" not in one_class and "appearance.stages" not in one_class  # a list: JSON box
    classify = {f.name: f for f in job_form.fields("classify")}
    assert "resnet18" in classify["architecture"].choices


def test_a_form_becomes_a_typed_nested_spec() -> None:
    form = {
        "name": "walkway",
        "dataset.name": "walkway-normal",
        "image_size": "96",
        "target_fpr": "0.02",
        "appearance.bank_size": "",
        "extra": '{"appearance": {"stages": [2], "bank_size": 64}}',
    }
    assert job_form.spec_from_form("one_class", form) == {
        "task": "one_class",
        "name": "walkway",
        "dataset": {"name": "walkway-normal"},
        "image_size": 96,
        "target_fpr": 0.02,
        "appearance": {"stages": [2], "bank_size": 64},
    }


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"image_size": "big"}, "image_size: 'big' is not an integer"),
        ({"extra": "{nope"}, "the JSON box is not JSON"),
        ({"extra": "[1]"}, "the JSON box holds an object"),
    ],
)
def test_a_bad_form_says_which_field(form: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        job_form.spec_from_form("one_class", form)


def gate_answer(status: int, body: object) -> list[dict[str, object]] | None:
    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/v1/gate-decisions"
        return httpx.Response(status, json=body)

    async def ask() -> list[dict[str, object]] | None:
        async with httpx.AsyncClient(
            transport=httpx.MockTransport(answer), base_url="http://x"
        ) as c:
            return await models.gate_decisions(ConsoleApi(c), "m-b")

    return asyncio.run(ask())


def test_the_gate_figures_are_shown_where_the_api_has_the_gate() -> None:
    assert gate_answer(404, {"detail": "Not Found"}) is None  # no gate here: no section
    decisions = [{"model_id": "m-b", "passed": True}, {"model_id": "m-c", "passed": False}]
    assert gate_answer(200, {"items": decisions}) == decisions[:1]
    assert gate_answer(200, decisions) == decisions[:1]
    with pytest.raises(ApiProblemError, match="boom"):
        gate_answer(500, {"title": "Internal Server Error", "detail": "boom"})
