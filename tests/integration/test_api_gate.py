"""The evaluation gate: policies per scope, decisions with their figures, a promotion refused
with a 409 that only an admin may override (with a reason the stage history keeps)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from minio import Minio
from sqlalchemy.orm import Session, sessionmaker

from tests.factories import add_rows, add_stored_model, create_camera
from tests.integration.conftest import ADMIN_KEY, IssueKey, bearer
from vigil_api.core.settings import ApiSettings
from vigil_api.main import create_app
from vigil_shared.db.models import Evaluation
from vigil_shared.topics import Topics

POLICY = {"auroc_tolerance": 0.01, "recall_tolerance": 0.0, "false_alarms_per_hour_tolerance": 1}


@pytest.fixture
def client(topics: Topics) -> Iterator[TestClient]:
    """The API publishing on this test's own topic namespace."""
    with TestClient(create_app(ApiSettings()), headers=bearer(ADMIN_KEY)) as api:
        yield api


def evaluated(
    sessions: sessionmaker[Session],
    *,
    model_id: str,
    production: str | None,
    camera: str,
    ours: dict[str, Any],
    theirs: dict[str, Any] | None,
) -> uuid.UUID:
    row = Evaluation(
        id=uuid.uuid4(),
        model_id=model_id,
        production_model_id=production,
        scope=camera,
        camera_ids=[camera],
        dataset_name="retrain-lobby",
        dataset_version="b" * 64,
        groups=[f"{camera}/20261201T080000.000Z"],
        metrics=ours,
        production_metrics=theirs,
        detail={"frames": 40},
    )
    add_rows(sessions, [row])
    return row.id


def figures(auroc: float, recall: float, false_alarms: float) -> dict[str, Any]:
    return {"auroc": auroc, "event_recall": recall, "false_alarms_per_hour": false_alarms}


def test_a_gated_promotion_needs_evidence_or_an_admin_override(
    client: TestClient, sessions: sessionmaker[Session], s3: Minio, issue_key: IssueKey
) -> None:
    camera = create_camera(client)
    production, worse, better = (add_stored_model(sessions, s3) for _ in range(3))
    promote = {"scope": [camera]}
    assert client.post(f"/api/v1/models/{production}/promote", json=promote).status_code == 200
    put = client.put("/api/v1/gate-policies/global", json=POLICY)
    assert put.status_code == 200, put.text
    assert put.json()["scope"] == "global" and put.json()["updated_by"] == "env-admin"

    unevaluated = client.post(f"/api/v1/models/{worse}/gate", json={"scope": camera}).json()
    assert not unevaluated["passed"] and "no evaluation" in unevaluated["summary"]

    evaluated(
        sessions,
        model_id=worse,
        production=production,
        camera=camera,
        ours=figures(0.80, 0.5, 3.0),
        theirs=figures(0.90, 0.5, 1.0),
    )
    refused = client.post(f"/api/v1/models/{worse}/promote", json=promote)
    assert refused.status_code == 409, refused.text
    detail = refused.json()["detail"]
    assert "auroc 0.8000 is below production's 0.9000" in detail and "override" in detail
    assert "false_alarms_per_hour 3.0000 is above" in detail
    assert client.get(f"/api/v1/cameras/{camera}").json()["model_id"] == production

    operator = bearer(issue_key("operator"))
    override = promote | {"override": {"reason": "glare fix, checked by hand"}}
    url = f"/api/v1/models/{worse}/promote"
    assert client.post(url, json=override, headers=operator).status_code == 403
    assert client.post(url, json=override).status_code == 200
    changes = client.get("/api/v1/stage-changes", params={"scope": camera}).json()
    assert changes[0]["model_id"] == worse and changes[0]["actor"] == "env-admin"
    assert changes[0]["reason"].startswith("gate override: glare fix, checked by hand")

    # Evidence against the model that was in production then is not evidence against today's.
    evaluated(
        sessions,
        model_id=better,
        production=production,
        camera=camera,
        ours=figures(0.95, 1.0, 0.0),
        theirs=figures(0.90, 0.5, 1.0),
    )
    stale = client.post(f"/api/v1/models/{better}/gate", json={"scope": camera}).json()
    assert not stale["passed"] and "evaluate again" in stale["summary"]
    evaluation = evaluated(
        sessions,
        model_id=better,
        production=worse,
        camera=camera,
        ours=figures(0.95, 1.0, 0.0),
        theirs=figures(0.80, 0.5, 3.0),
    )
    promoted = client.post(f"/api/v1/models/{better}/promote", json=promote)
    assert promoted.status_code == 200, promoted.text
    decisions = client.get("/api/v1/gate-decisions", params={"model_id": better}).json()
    assert [d["passed"] for d in decisions] == [True, False]
    assert decisions[0]["evaluation_id"] == str(evaluation)
    assert {c["rule"] for c in decisions[0]["checks"]} == set(figures(0, 0, 0))
    assert decisions[0]["policy"]["scope"] == "*"
    latest = client.get("/api/v1/stage-changes", params={"model_id": better}).json()[0]
    assert latest["reason"] == f"gate passed ({decisions[0]['id']})"
    listed = client.get("/api/v1/evaluations", params={"camera_id": camera}).json()
    assert {e["model_id"] for e in listed} == {worse, better}


def test_a_camera_policy_overrides_the_global_one_and_only_admins_set_policies(
    client: TestClient, sessions: sessionmaker[Session], s3: Minio, issue_key: IssueKey
) -> None:
    camera, other = create_camera(client), create_camera(client)
    candidate = add_stored_model(sessions, s3)
    assert client.put("/api/v1/gate-policies/global", json=POLICY).status_code == 200
    lenient = client.put(f"/api/v1/gate-policies/{camera}", json={})
    assert lenient.status_code == 200 and lenient.json()["auroc_tolerance"] is None
    evaluated(
        sessions,
        model_id=candidate,
        production=None,
        camera=camera,
        ours=figures(0.5, 0.0, 9.0),
        theirs=None,
    )
    passed = client.post(f"/api/v1/models/{candidate}/gate", json={"scope": camera}).json()
    assert passed["passed"] and passed["checks"] == [] and passed["policy"]["scope"] == camera
    gated = client.post(f"/api/v1/models/{candidate}/gate", json={"scope": other}).json()
    assert not gated["passed"] and gated["policy"]["scope"] == "*"

    mine = bearer(issue_key("operator", camera_ids=[camera]))
    assert client.put(f"/api/v1/gate-policies/{camera}", json={}, headers=mine).status_code == 403
    seen = client.get("/api/v1/gate-policies", headers=mine).json()
    assert [p["scope"] for p in seen] == ["global", camera]
    assert client.get(f"/api/v1/gate-policies/{other}", headers=mine).status_code == 404
    assert client.put("/api/v1/gate-policies/no-such-camera", json={}).status_code == 404

    assert client.delete(f"/api/v1/gate-policies/{camera}").status_code == 204
    assert client.get(f"/api/v1/gate-policies/{camera}").status_code == 404
    fallback = client.post(f"/api/v1/models/{candidate}/gate", json={"scope": camera}).json()
    assert fallback["policy"]["scope"] == "*"


def test_without_a_policy_there_is_no_gate(
    client: TestClient, sessions: sessionmaker[Session], s3: Minio
) -> None:
    camera = create_camera(client)
    model_id = add_stored_model(sessions, s3)
    promoted = client.post(f"/api/v1/models/{model_id}/promote", json={"scope": [camera]})
    assert promoted.status_code == 200
    decision = client.get("/api/v1/gate-decisions", params={"scope": camera}).json()[0]
    assert decision["passed"] and "no gate" in decision["summary"]
    assert client.get("/api/v1/stage-changes").json()[0]["reason"] is None
