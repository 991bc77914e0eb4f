"""The console's pages and fragments on the real API (TestClient): shells without a key, data
only with one, what each role and camera scope is shown and may do; and the camera frame route.
The browser drives the same pages in test_console_browser.py."""

from __future__ import annotations

import re
import uuid

import pytest
from fastapi.testclient import TestClient
from minio import Minio
from sqlalchemy.orm import Session, sessionmaker

from tests.factories import (
    add_events,
    add_rows,
    add_stored_model,
    make_camera,
    make_event,
    scene_jpeg,
    send_current_frames,
)
from tests.integration.conftest import IssueKey
from vigil_api.console.pages import PAGES
from vigil_shared.settings import KafkaSettings
from vigil_shared.topics import Topics


def test_shells_are_public_and_data_needs_a_key(anonymous: TestClient) -> None:
    home = anonymous.get("/", follow_redirects=False)
    assert home.status_code == 307 and home.headers["location"] == "/console"
    for page in PAGES:
        shell = anonymous.get(f"/console/{page}")
        assert shell.status_code == 200 and "/console/static/htmx.min.js" in shell.text
        assert 'id="login-form"' in shell.text
    assert anonymous.get("/console/nope").status_code == 404
    assert anonymous.get("/console/static/htmx.min.js").status_code == 200
    refused = anonymous.get("/console/ui/cameras")
    assert refused.status_code == 401 and "needs an API key" in refused.json()["detail"]


def test_a_scoped_viewer_sees_its_cameras_and_no_buttons(
    api: TestClient, anonymous: TestClient, sessions: sessionmaker[Session], issue_key: IssueKey
) -> None:
    mine, other = make_camera(), make_camera()
    add_rows(sessions, [mine, other])
    viewer = issue_key("viewer", [mine.id])
    page = anonymous.get("/console/ui/cameras", headers={"X-API-Key": viewer})
    assert page.status_code == 200
    assert mine.id in page.text and other.id not in page.text
    assert "Disable" not in page.text
    upload = anonymous.get("/console/ui/datasets/upload", headers={"X-API-Key": viewer})
    assert upload.status_code == 200 and "upload-form" not in upload.text
    assert 'id="upload-form"' in api.get("/console/ui/datasets/upload").text
    admin = api.get("/console/ui/cameras").text
    assert mine.id in admin and other.id in admin and "Disable" in admin
    disabled = api.post(f"/console/ui/cameras/{mine.id}/enabled", data={"enabled": "false"})
    assert disabled.status_code == 200
    assert api.get(f"/api/v1/cameras/{mine.id}").json()["enabled"] is False
    # The API decides, whatever a page shows: a viewer's post is refused, shown as a problem.
    refused = anonymous.post(
        f"/console/ui/cameras/{mine.id}/enabled", data={"enabled": "true"},
        headers={"X-API-Key": viewer},
    )  # fmt: skip
    assert refused.status_code == 403 and 'class="problem"' in refused.text
    assert "operator role" in refused.text


def test_events_filter_detail_and_review(
    api: TestClient, anonymous: TestClient, sessions: sessionmaker[Session], issue_key: IssueKey
) -> None:
    camera = f"c-{uuid.uuid4().hex[:8]}"
    low, high = add_events(sessions, [make_event(camera, 0), make_event(camera, 50)])
    listed = api.get("/console/ui/events", params={"camera_id": camera, "min_score": "1.2"})
    assert listed.status_code == 200 and high in listed.text and low not in listed.text
    card = api.get(f"/console/ui/events/{high}/card").text
    assert "Confirm" in card and "False positive" in card
    reviewed = api.post(
        f"/console/ui/events/{high}/review", data={"verdict": "confirmed", "label": "cart"}
    )
    assert reviewed.status_code == 200 and "confirmed" in reviewed.text and "cart" in reviewed.text
    assert api.get(f"/api/v1/events/{high}").json()["review"]["label"] == "cart"
    detail = api.get(f"/console/ui/events/{low}").text
    assert camera in detail and "no snapshot stored" in detail
    viewer = issue_key("viewer")
    seen = anonymous.get(f"/console/ui/events/{high}/card", headers={"X-API-Key": viewer}).text
    assert "confirmed" in seen and "False positive" not in seen
    bad = api.get("/console/ui/events", params={"min_score": "-1"})
    assert bad.status_code == 422 and "min_score" in bad.text


def test_models_compare_promote_and_what_a_viewer_is_offered(
    api: TestClient, anonymous: TestClient, sessions: sessionmaker[Session], s3: Minio,
    issue_key: IssueKey,
) -> None:  # fmt: skip
    a = add_stored_model(sessions, s3, metrics={"auroc": 0.8})
    fit = {
        "auroc": 0.9,
        "expected_false_alarms_per_hour": 1.0,
        "expected_false_alarms_per_hour_low": 0.12,
        "expected_false_alarms_per_hour_high": 8.2,
        "calibration_hours": 0.07,
        "lifecycle_open_k": 3,
        "lifecycle_open_n": 5,
        "lifecycle_close_after": 5,
    }
    b = add_stored_model(sessions, s3, metrics=fit)
    camera = make_camera()
    add_rows(sessions, [camera])
    listed = api.get("/console/ui/models").text
    assert a in listed and b in listed
    compared = api.get("/console/ui/models/compare", params={"a": a, "b": b}).text
    assert "auroc" in compared and "+0.1000" in compared
    promoted = api.post(f"/console/ui/models/{b}/promote", data={"cameras": camera.id})
    assert promoted.status_code == 200 and "promote: done" in promoted.text
    assert promoted.headers["HX-Trigger"] == "models-changed"
    cameras = api.get("/console/ui/cameras").text
    assert f"production <code>{b}</code>" in cameras
    viewer = issue_key("viewer")
    view = anonymous.get(f"/console/ui/models/{b}", headers={"X-API-Key": viewer}).text
    assert "auroc" in view and 'id="promote"' not in view
    assert (
        "from 4.2 min of normal footage, events opened on 3 of 5 hot frames and closed after 5 "
        "quiet ones)"
    ) in view
    assert 'id="promote"' in api.get(f"/console/ui/models/{b}").text


def test_the_gate_refuses_in_place_and_an_admin_overrides_with_a_reason(
    api: TestClient, sessions: sessionmaker[Session], s3: Minio
) -> None:
    old = add_stored_model(sessions, s3, metrics={"auroc": 0.9})
    candidate = add_stored_model(sessions, s3, metrics={"auroc": 0.8})
    camera = make_camera()
    add_rows(sessions, [camera])
    assert api.post(f"/console/ui/models/{old}/promote", data={"cameras": camera.id}).is_success
    policy = {"auroc_tolerance": 0.01, "recall_tolerance": 0.0}
    assert api.put(f"/api/v1/gate-policies/{camera.id}", json=policy).status_code == 200
    view = api.get(f"/console/ui/models/{candidate}").text
    assert 'id="run-gate"' in view and 'id="override-reason"' in view  # an admin's key
    checked = api.post(f"/console/ui/models/{candidate}/gate", data={"cameras": camera.id})
    assert checked.status_code == 200 and "no gate decision" not in checked.text
    refused = api.post(f"/console/ui/models/{candidate}/promote", data={"cameras": camera.id})
    assert refused.status_code == 409 and "override" in refused.text
    forced = api.post(
        f"/console/ui/models/{candidate}/promote",
        data={"cameras": camera.id, "override_reason": "glare fix, checked by hand"},
    )
    assert forced.status_code == 200 and "promote: done" in forced.text
    (latest, *_) = api.get("/api/v1/stage-changes", params={"scope": camera.id}).json()
    assert latest["model_id"] == candidate
    assert latest["reason"].startswith("gate override: glare fix, checked by hand")


def test_job_form_follows_the_spec_schema_and_problems_show_in_place(api: TestClient) -> None:
    form = api.get("/console/ui/jobs/form").text
    assert 'name="dataset.name"' in form and 'name="target_fpr"' in form
    classify = api.get("/console/ui/jobs/form", params={"task": "classify"}).text
    assert 'name="architecture"' in classify and "resnet18" in classify
    refused = api.post(
        "/console/ui/jobs", data={"task": "one_class", "name": "j", "dataset.name": "missing"}
    )
    assert refused.status_code == 422 and "body.dataset" in refused.text
    not_json = api.post(
        "/console/ui/jobs", data={"task": "one_class", "name": "j", "extra": "{nope"}
    )
    assert not_json.status_code == 422 and "not JSON" in not_json.text


def test_the_camera_frame_is_its_latest_jpeg(
    topics: Topics, api: TestClient, anonymous: TestClient, sessions: sessionmaker[Session],
    issue_key: IssueKey,
) -> None:  # fmt: skip
    camera, silent = make_camera(masks=[[[0, 0], [0.5, 0], [0.5, 0.5]]]), make_camera()
    add_rows(sessions, [camera, silent])
    send_current_frames(KafkaSettings(), camera.id, count=3)
    frame = api.get(f"/api/v1/cameras/{camera.id}/frame")
    assert frame.status_code == 200 and frame.headers["content-type"] == "image/jpeg"
    assert frame.content == scene_jpeg(2) and frame.headers["x-vigil-frame-seq"] == "2"
    shown = api.get(f"/console/ui/cameras/{camera.id}/frame").text
    assert "data:image/jpeg;base64," in shown and "<polygon" in shown
    none = api.get(f"/api/v1/cameras/{silent.id}/frame")
    assert none.status_code == 404 and "VIGIL_API_FRAME_LOOKBACK_S" in none.json()["detail"]
    scoped = issue_key("viewer", [silent.id])
    hidden = anonymous.get(f"/api/v1/cameras/{camera.id}/frame", headers={"X-API-Key": scoped})
    assert hidden.status_code == 404


@pytest.mark.parametrize("page", list(PAGES))
def test_every_page_names_its_fragment_routes(anonymous: TestClient, page: str) -> None:
    """Each hx-get of a shell is a route of the app (a renamed fragment breaks no page silently)."""
    shell = anonymous.get(f"/console/{page}").text
    for url in re.findall(r'hx-get="([^"{]+)"', shell):
        assert anonymous.get(url).status_code == 401, url  # exists, and needs the key
