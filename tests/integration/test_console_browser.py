"""The console in headless Chromium against a real API server, event sink and trainer.

Debian's ``chromium`` (``scripts/stack.sh install``) is driven by Playwright for Python through
its executable path: no browser is downloaded. Every request to a host other than this machine
is aborted, so the pages prove that they need no network (no CDN), ``/docs`` and ``/redoc``
included. A screenshot of each page is saved under ``.test-artifacts/console/``.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from minio import Minio
from playwright.sync_api import Browser, Page, Route, expect, sync_playwright
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from bench.footage import write_video
from tests.factories import (
    add_rows,
    add_stored_model,
    event_lifecycle,
    make_camera,
    scene_jpeg,
    send_current_frames,
    send_events,
    zip_bytes,
)
from tests.integration.api_server import RunningApi, own_models_bucket, start_api
from tests.integration.conftest import ADMIN_KEY
from tests.support import ServiceProcess
from tests.unit.test_archive_videos import walker
from vigil_shared.db.models import Job
from vigil_shared.schemas.jobs import JobStatus
from vigil_shared.settings import REPO_ROOT, KafkaSettings, S3Settings
from vigil_shared.storage import make_s3_client, put_bytes

pytestmark = [pytest.mark.browser, pytest.mark.slow]
SHOTS = REPO_ROOT / ".test-artifacts" / "console"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
TIMEOUT_MS = 60_000
# Assertions wait as long as actions: under CI's load an event crosses Kafka and the API's
# SSE stream in more than expect's default 5 s.
expect.set_options(timeout=TIMEOUT_MS)
# ReDoc's bundle always asks for its sidebar logo from its CDN and hides the image when that
# fails (an <img> with onError): the one outside request allowed to fail, and it is aborted.
HIDES_ITSELF_OFFLINE = {"https://cdn.redoc.ly/redoc/logo-mini.svg"}


def chromium_path() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("Debian's chromium is not installed: run `bash scripts/stack.sh install`")
    return path


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, sessions: sessionmaker[Session]
) -> Iterator[RunningApi]:
    """The API, the event sink and a trainer, as up.sh runs them, on this module's namespace.
    Jobs other tests left queued are cancelled first: the trainer would take them before ours."""
    with sessions.begin() as session:
        session.execute(
            update(Job).where(Job.status == JobStatus.QUEUED).values(status=JobStatus.CANCELLED)
        )
    logs = tmp_path_factory.mktemp("console")
    with own_models_bucket():
        api = start_api(logs, VIGIL_API_FRAME_LOOKBACK_S="300")  # a loaded CI is slow
        sink = ServiceProcess("vigil_api.consumers.sink_main", env=api.env, log_path=logs / "s.log")
        trainer = ServiceProcess("vigil_trainer", env=api.env, log_path=logs / "trainer.log")
        try:
            yield api
        finally:
            trainer.stop(timeout_s=60)
            sink.stop()
            api.process.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=chromium_path())
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser, stack: RunningApi) -> Iterator[Page]:
    """A fresh tab (its own session storage) that can reach this machine only."""
    context = browser.new_context(base_url=stack.url, viewport={"width": 1280, "height": 900})
    blocked: list[str] = []

    def local_only(route: Route) -> None:
        if urlsplit(route.request.url).hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    context.route("**/*", local_only)
    context.set_default_timeout(TIMEOUT_MS)
    tab = context.new_page()
    yield tab
    context.close()
    asked = set(blocked) - HIDES_ITSELF_OFFLINE
    assert not asked, f"the pages asked the internet for {sorted(asked)}"


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / f"{name}.png", full_page=True)


def sign_in(page: Page, path: str, key: str = ADMIN_KEY) -> None:
    page.goto(path)
    page.fill("#login-key", key)
    page.click("#login-form button[type=submit]")
    expect(page.locator("#me")).to_contain_text("·")


def admin(stack: RunningApi) -> httpx.Client:
    return httpx.Client(base_url=stack.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"})


def test_a_live_event_arrives_with_its_snapshot_and_is_reviewed(
    stack: RunningApi, page: Page
) -> None:
    page.goto("/console")
    expect(page.locator("#login")).to_be_visible()  # no key yet: nothing but the form
    sign_in(page, "/console")
    expect(page.locator("#live-status")).to_have_text("connected")
    camera = f"cam-{uuid.uuid4().hex[:8]}"
    messages = event_lifecycle(camera, 100)
    s3 = S3Settings()
    put_bytes(make_s3_client(s3), s3.snapshots_bucket, messages[0].snapshot_key or "",
              scene_jpeg(3), "image/jpeg")  # fmt: skip
    kafka = KafkaSettings(topic_namespace=stack.env["VIGIL_KAFKA_TOPIC_NAMESPACE"])
    send_events(kafka, kafka.topics.events, messages)

    card = page.locator(f"#event-{messages[0].event_id}")
    expect(card.locator(".badge.ended")).to_be_visible()  # the end message arrived too
    snapshot = card.locator("img.snapshot")
    expect(snapshot).to_be_visible()
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=snapshot.element_handle()
    )
    expect(card.locator("svg.curve polyline")).to_have_count(1)
    expect(card).to_contain_text("3.500")
    shot(page, "live")

    card.locator("input[name=label]").fill("cyclist")
    card.get_by_role("button", name="Confirm").click()
    expect(page.locator(f"#event-{messages[0].event_id} .badge.confirmed")).to_be_visible()
    with admin(stack) as client:
        review = client.get(f"/api/v1/events/{messages[0].event_id}").json()["review"]
    assert review["verdict"] == "confirmed" and review["label"] == "cyclist"

    page.goto("/console/events")
    page.fill("input[name=camera_id]", camera)
    page.get_by_role("button", name="Filter").click()
    page.get_by_role("button", name="Details").first.click()
    expect(page.locator("#event-detail img.snapshot")).to_be_visible()
    shot(page, "events")


def test_a_busy_live_stream_is_waited_out_then_followed(stack: RunningApi, page: Page) -> None:
    """Every stream slot taken (503 with Retry-After, as the API answers then): the live view
    says so, waits as asked, and connects; it does not give up until the page is reloaded."""
    refused: list[str] = []

    def busy_once(route: Route) -> None:
        if refused:
            route.fallback()
            return
        refused.append(route.request.url)
        problem = {"title": "Service Unavailable", "status": 503,
                   "detail": "100 event streams are open; retry in a few seconds"}  # fmt: skip
        route.fulfill(
            status=503,
            headers={"Retry-After": "3", "Content-Type": "application/problem+json"},
            body=json.dumps(problem),
        )

    page.route("**/api/v1/events/stream*", busy_once)
    sign_in(page, "/console")
    expect(page.locator("#live-status")).to_have_text("busy (503): retrying in 3 s")
    expect(page.locator("#live-status")).to_have_text("connected")
    assert len(refused) == 1


def normal_clips(frames: int) -> bytes:
    """Two clips of the generated scene, all normal: a dataset a one-class job fits in seconds."""
    return zip_bytes(
        {
            f"normal/clip{c}/{n:03d}.jpg": scene_jpeg(n + 40 * c)
            for c in (1, 2)
            for n in range(frames)
        }
    )


def test_upload_a_dataset_then_train_on_it_to_the_end(
    stack: RunningApi, page: Page, tmp_path: Path
) -> None:
    archive = tmp_path / "scene.zip"
    archive.write_bytes(normal_clips(16))
    name = f"scene-{uuid.uuid4().hex[:6]}"
    sign_in(page, "/console/datasets")
    page.fill("#upload-form input[name=name]", name)
    page.set_input_files("#upload-form input[name=file]", archive)
    page.click("#upload-form button[type=submit]")
    expect(page.locator("#upload-result")).to_contain_text("32 images")
    expect(page.locator("#upload-progress")).to_have_attribute("value", "100")
    expect(page.locator("#dataset-table")).to_contain_text(name)
    shot(page, "datasets")
    recording = tmp_path / "monday.mp4"
    write_video(recording, (walker(i) for i in range(10)), fps=5)
    videos = tmp_path / "videos.zip"
    videos.write_bytes(zip_bytes({"normal/monday.mp4": recording.read_bytes()}))
    page.fill("#upload-form input[name=name]", f"{name}-video")
    page.set_input_files("#upload-form input[name=file]", videos)
    page.fill("#upload-form input[name=video_fps]", "2.5")
    page.click("#upload-form button[type=submit]")
    expect(page.locator("#upload-result")).to_contain_text("5 images")  # every other frame

    page.goto("/console/jobs")
    form = page.locator("#submit-job")
    form.locator("input[name=name]").fill("browser")
    form.locator("select[name='dataset.name']").select_option(name)
    form.locator("input[name=image_size]").fill("96")
    form.locator("textarea[name=extra]").fill(json.dumps({"appearance": {"bank_size": 64}}))
    form.get_by_role("button", name="Submit").click()
    status = page.locator("#job-status")
    expect(status).to_have_text("succeeded", timeout=180_000)
    expect(page.locator("#job-view")).to_contain_text("model")
    expect(page.locator("#jobs .badge.succeeded")).to_have_count(1)  # the list follows
    shot(page, "jobs")


def test_compare_two_models_and_promote_one(
    stack: RunningApi, page: Page, sessions: sessionmaker[Session]
) -> None:
    s3: Minio = make_s3_client(S3Settings())
    a = add_stored_model(sessions, s3, metrics={"auroc": 0.8})
    b = add_stored_model(sessions, s3, metrics={"auroc": 0.9})
    camera = make_camera()
    add_rows(sessions, [camera])
    sign_in(page, "/console/models")
    page.get_by_label(f"compare {a} as A").check()
    page.get_by_label(f"compare {b} as B").check()
    page.get_by_role("button", name="Compare A and B").click()
    expect(page.locator("#compare")).to_contain_text("+0.1000")
    page.locator(f"#model-{b}").get_by_role("button", name="Details").click()
    page.locator("#model-view input[name=cameras]").fill(camera.id)
    page.click("#promote")
    expect(page.locator("#model-note")).to_have_text("promote: done")
    shot(page, "models")
    with admin(stack) as client:
        scopes = {x["scope"]: x for x in client.get("/api/v1/models/assignments").json()}
    assert scopes[camera.id]["production_model_id"] == b


def test_a_scoped_viewer_sees_only_its_cameras_and_no_promote_button(
    stack: RunningApi, page: Page, sessions: sessionmaker[Session]
) -> None:
    mine, other = make_camera(masks=[[[0, 0], [0.4, 0], [0.4, 0.5]]]), make_camera()
    add_rows(sessions, [mine, other])
    kafka = KafkaSettings(topic_namespace=stack.env["VIGIL_KAFKA_TOPIC_NAMESPACE"])
    send_current_frames(kafka, mine.id)
    send_current_frames(kafka, other.id)
    model = add_stored_model(sessions, make_s3_client(S3Settings()), metrics={"auroc": 0.7})
    with admin(stack) as client:
        body = {"name": "wall", "role": "viewer", "camera_ids": [mine.id]}
        key = client.post("/api/v1/keys", json=body).json()["key"]
        # Its camera's production model: one a key scoped to that camera sees.
        promoted = client.post(f"/api/v1/models/{model}/promote", json={"scope": [mine.id]})
        assert promoted.status_code == 200, promoted.text
    sign_in(page, "/console/cameras", key)
    expect(page.locator(f"#camera-{mine.id}")).to_be_visible()
    frame = page.locator(f"#camera-{mine.id} .frame")
    expect(frame.locator("img")).to_be_visible()
    expect(frame.locator("polygon.mask")).to_have_count(1)  # its mask, drawn on the frame
    expect(page.locator(f"#camera-{other.id}")).to_have_count(0)
    expect(page.get_by_role("button", name="Disable")).to_have_count(0)
    expect(page.locator(f"#camera-{mine.id}")).to_contain_text(f"production {model}")
    shot(page, "cameras")
    page.goto("/console/models")
    page.locator(f"#model-{model}").get_by_role("button", name="Details").click()
    expect(page.locator("#model-view")).to_contain_text("auroc")
    expect(page.locator("#promote")).to_have_count(0)
    page.goto("/console/jobs")
    expect(page.locator("#jobs")).to_contain_text("a camera-scoped key may not use it")
    expect(page.locator("#submit-job")).to_have_count(0)
    page.goto("/console/datasets")
    expect(page.locator("#dataset-table")).to_be_visible()
    expect(page.locator("#upload-form")).to_have_count(0)


def test_docs_and_redoc_render_without_the_network(page: Page) -> None:
    page.goto("/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Vigil API")
    expect(page.locator(".opblock").first).to_be_visible()
    shot(page, "docs")
    page.goto("/redoc")
    expect(page.locator("redoc h1").first).to_contain_text("Vigil API")
    shot(page, "redoc")
