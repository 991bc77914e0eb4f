"""Events through the API: filters, keyset cursors, camera scope, snapshots and feedback, against
the real PostgreSQL and S3."""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import httpx2
import pytest
from fastapi.testclient import TestClient
from minio import Minio
from sqlalchemy.orm import Session, sessionmaker

from tests.factories import T0, add_events, make_event
from tests.integration.conftest import IssueKey, bearer
from vigil_shared.settings import CommonSettings


@dataclass(frozen=True)
class Fleet:
    """Two cameras' events: ``mine`` has 12 (minutes 0-11), ``other`` has 3."""

    mine: str
    other: str
    mine_ids: list[str]  # oldest first
    other_ids: list[str]


@pytest.fixture
def fleet(sessions: sessionmaker[Session]) -> Fleet:
    suffix = uuid.uuid4().hex[:8]
    mine, other = f"mine-{suffix}", f"other-{suffix}"
    mine_rows = [make_event(mine, m) for m in range(12)]
    mine_rows[3].label, mine_rows[4].label = "bicycle", "bicycle"
    mine_rows[11].status, mine_rows[11].ended_at = "open", None
    mine_rows[7].model_id = "model-b"
    return Fleet(
        mine=mine,
        other=other,
        mine_ids=add_events(sessions, mine_rows),
        other_ids=add_events(sessions, [make_event(other, m) for m in range(3)]),
    )


def ids(response: httpx2.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [e["event_id"] for e in response.json()["items"]]


def test_newest_first_by_default_and_every_filter_narrows(api: TestClient, fleet: Fleet) -> None:
    mine = fleet.mine_ids

    def get(**params: Any) -> list[str]:
        return ids(api.get("/api/v1/events", params={"camera_id": fleet.mine, **params}))

    assert get() == mine[::-1]
    assert get(order="asc") == mine
    both = ids(api.get("/api/v1/events", params={"camera_id": [fleet.mine, fleet.other]}))
    assert set(both) == set(mine) | set(fleet.other_ids)
    window = {"started_from": (T0 + timedelta(minutes=2)).isoformat(), "started_to": ""}
    window["started_to"] = (T0 + timedelta(minutes=5)).isoformat()
    assert get(order="asc", **window) == mine[2:5]  # from inclusive, to exclusive
    assert get(order="asc", min_score=1.05, max_score=1.08) == mine[5:9]
    assert get(label="bicycle", order="asc") == mine[3:5]
    assert get(status="open") == [mine[11]]
    assert get(model_id="model-b") == [mine[7]]
    assert get(review="unreviewed") == mine[::-1]
    assert get(review="confirmed") == []


def test_cursor_pages_walk_every_event_once_in_both_orders(api: TestClient, fleet: Fleet) -> None:
    for order, expected in (("desc", fleet.mine_ids[::-1]), ("asc", fleet.mine_ids)):
        seen: list[str] = []
        params: dict[str, Any] = {"camera_id": fleet.mine, "limit": 5, "order": order}
        while True:
            page = api.get("/api/v1/events", params=params).json()
            seen.extend(e["event_id"] for e in page["items"])
            if page["next_cursor"] is None:
                break
            params["cursor"] = page["next_cursor"]
        assert seen == expected, order


def test_a_bad_cursor_or_limit_is_a_422_problem_naming_the_field(
    api: TestClient, fleet: Fleet
) -> None:
    first = api.get("/api/v1/events", params={"camera_id": fleet.mine, "limit": 2}).json()
    cases = [
        ({"cursor": "not-a-cursor"}, "query.cursor"),
        ({"cursor": first["next_cursor"], "order": "asc"}, "query.cursor"),  # other order
        ({"limit": 501}, "query.limit"),
        ({"camera_id": "bad id!"}, "query.camera_id.0"),
        ({"started_from": "2026-11-01T08:00:00"}, "query.started_from"),  # no time zone
    ]
    for params, field in cases:
        response = api.get("/api/v1/events", params=params)
        assert response.status_code == 422, params
        assert response.headers["content-type"] == "application/problem+json"
        assert field in [e["field"] for e in response.json()["errors"]], response.text


def test_a_scoped_key_sees_only_its_cameras_events(
    anonymous: TestClient, issue_key: IssueKey, fleet: Fleet
) -> None:
    headers = bearer(issue_key("operator", camera_ids=[fleet.mine]))
    listed = ids(anonymous.get("/api/v1/events", params={"limit": 500}, headers=headers))
    assert fleet.mine_ids[0] in listed and not set(listed) & set(fleet.other_ids)
    asked = anonymous.get("/api/v1/events", params={"camera_id": fleet.other}, headers=headers)
    assert asked.status_code == 403
    assert f"camera {fleet.other} is outside" in asked.json()["detail"]
    theirs = fleet.other_ids[0]
    for method, path, body in (
        ("GET", f"/api/v1/events/{theirs}", None),
        ("GET", f"/api/v1/events/{theirs}/snapshot", None),
        ("POST", f"/api/v1/events/{theirs}/feedback", {"verdict": "confirmed"}),
    ):
        response = anonymous.request(method, path, json=body, headers=headers)
        assert response.status_code == 404, path
        assert response.json()["detail"] == f"event {theirs} does not exist"
    own = anonymous.get(f"/api/v1/events/{fleet.mine_ids[0]}", headers=headers)
    assert own.status_code == 200 and own.json()["camera_id"] == fleet.mine


def test_snapshot_links_serve_the_stored_jpeg(
    api: TestClient, sessions: sessionmaker[Session], s3: Minio, settings: CommonSettings
) -> None:
    camera = f"snap-{uuid.uuid4().hex[:8]}"
    event = make_event(camera, 0)
    key = f"events/{camera}/{event.event_id}/overlay.jpg"
    jpeg = b"\xff\xd8\xff\xe0fake-jpeg-bytes\xff\xd9"
    s3.put_object(settings.s3.snapshots_bucket, key, io.BytesIO(jpeg), len(jpeg))
    event.snapshot_key = key
    without = make_event(camera, 1)
    add_events(sessions, [event, without])

    body = api.get(f"/api/v1/events/{event.event_id}").json()
    assert httpx.get(body["snapshot_url"]).content == jpeg
    redirect = api.get(f"/api/v1/events/{event.event_id}/snapshot", follow_redirects=False)
    assert redirect.status_code == 307
    assert httpx.get(redirect.headers["location"]).content == jpeg
    assert api.get(f"/api/v1/events/{without.event_id}").json()["snapshot_url"] is None
    missing = api.get(f"/api/v1/events/{without.event_id}/snapshot", follow_redirects=False)
    assert missing.status_code == 404 and "has no snapshot" in missing.json()["detail"]


def test_operator_feedback_is_recorded_with_the_key_name_and_filterable(
    api: TestClient, anonymous: TestClient, issue_key: IssueKey, fleet: Fleet
) -> None:
    operator = bearer(issue_key("operator", name="night-shift console"))
    viewer = bearer(issue_key("viewer"))
    target = fleet.mine_ids[5]
    url = f"/api/v1/events/{target}/feedback"
    verdict = {"verdict": "false_positive", "label": "headlights", "note": "car park"}

    assert anonymous.post(url, json=verdict, headers=viewer).status_code == 403
    response = anonymous.post(url, json=verdict, headers=operator)
    assert response.status_code == 200, response.text
    review = response.json()["review"]
    assert review["verdict"] == "false_positive" and review["label"] == "headlights"
    assert review["reviewed_by"] == "night-shift console" and review["note"] == "car park"

    params = {"camera_id": fleet.mine, "review": "false_positive"}
    assert ids(api.get("/api/v1/events", params=params)) == [target]
    again = anonymous.post(url, json={"verdict": "confirmed"}, headers=operator).json()
    assert again["review"]["verdict"] == "confirmed" and again["review"]["label"] is None
    assert ids(api.get("/api/v1/events", params=params)) == []

    bad = anonymous.post(url, json={"verdict": "maybe"}, headers=operator)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "body.verdict"
    unknown = anonymous.post(
        f"/api/v1/events/{uuid.uuid4()}/feedback", json=verdict, headers=operator
    )
    assert unknown.status_code == 404
