"""Datasets: archive uploads that are stored whole or not at all, versions by content, datasets
built from a camera's frames and from reviewed events, and what camera-scoped keys see."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2
import pytest
from fastapi.testclient import TestClient
from minio import Minio
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bench.footage import write_video
from tests.factories import (
    add_rows,
    bomb_entry,
    good_entries,
    make_event,
    scene_jpeg,
    tar_bytes,
    truncated_jpeg,
    zip_bytes,
)
from tests.integration.conftest import ADMIN_KEY, IssueKey, bearer
from tests.unit.test_archive_videos import RECORDED, walker
from vigil_api.core.settings import ApiSettings
from vigil_api.domain import dataset_versions
from vigil_api.main import create_app
from vigil_cli.client import retry_after_s
from vigil_shared.datasets import DatasetRef, load_manifest
from vigil_shared.db.models import Dataset
from vigil_shared.kafka import make_producer
from vigil_shared.schemas.events import snapshot_keys
from vigil_shared.schemas.frames import FrameHeaders
from vigil_shared.settings import CommonSettings, KafkaSettings
from vigil_shared.storage import list_keys, put_bytes
from vigil_trainer.one_class.clips import clips_of, frame_rate


def new_name() -> str:
    return f"ds-{uuid.uuid4().hex[:10]}"


def upload(
    api: TestClient, name: str, archive: bytes, headers: dict[str, str] | None = None
) -> httpx2.Response:
    files = {"archive": ("data.zip", archive, "application/octet-stream")}
    return api.post(f"/api/v1/datasets/{name}/versions", files=files, headers=headers)


def stored_keys(s3: Minio, name: str) -> list[str]:
    return list(list_keys(s3, CommonSettings().s3.datasets_bucket, f"datasets/{name}/"))


def dataset_rows(sessions: sessionmaker[Session], name: str) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).where(Dataset.name == name)) or 0


def test_an_archive_becomes_a_version_and_the_same_content_the_same_version(
    api: TestClient, s3: Minio
) -> None:
    name = new_name()
    first = api.post(
        f"/api/v1/datasets/{name}/versions",
        files={"archive": ("data.zip", zip_bytes(good_entries()), "application/zip")},
        data={"description": "walkway, first cut"},
    )
    assert first.status_code == 201, first.text
    version = first.json()
    assert version["label_counts"] == {"normal": 3, "abnormal": 2} and version["n_items"] == 5
    assert version["created"] is True and version["description"] == "walkway, first cut"
    again = api.post(
        f"/api/v1/datasets/{name}/versions",
        files={"archive": ("data.tar.gz", tar_bytes(good_entries()), "application/gzip")},
    )
    assert again.status_code == 200, again.text
    assert again.json()["version"] == version["version"] and again.json()["created"] is False

    detail = api.get(f"/api/v1/datasets/{name}/versions/{version['version']}").json()
    assert detail["group_counts"] == {"clip01": 3, "clip02": 2}
    listed = api.get(f"/api/v1/datasets/{name}").json()
    assert [v["version"] for v in listed["versions"]] == [version["version"]]
    summary = {d["name"]: d for d in api.get("/api/v1/datasets").json()}
    assert summary[name]["versions"] == 1
    assert len(stored_keys(s3, name)) == 6  # five images and the manifest


@pytest.mark.parametrize(
    ("entries", "symlinks", "entry", "reason"),
    [
        ({"../../etc/cron.d/evil.jpg": scene_jpeg(1)}, {}, "../../etc/cron.d/evil.jpg", "leaves"),
        ({"normal/bomb.jpg": bomb_entry()}, {}, "normal/bomb.jpg", "decompression bomb"),
        ({"normal/cut.jpg": truncated_jpeg()}, {}, "normal/cut.jpg", "truncated or corrupt"),
        ({"normal/empty.jpg": b""}, {}, "normal/empty.jpg", "0-byte"),
        ({}, {"normal/link.jpg": "/etc/passwd"}, "normal/link.jpg", "a link"),
    ],
    ids=["zip-slip", "zip-bomb", "truncated", "zero-bytes", "symlink"],
)
def test_a_hostile_archive_is_refused_by_entry_and_leaves_nothing(
    api: TestClient,
    s3: Minio,
    sessions: sessionmaker[Session],
    entries: dict[str, bytes],
    symlinks: dict[str, str],
    entry: str,
    reason: str,
) -> None:
    name = new_name()
    response = upload(api, name, zip_bytes(good_entries() | entries, symlinks=symlinks))
    assert response.status_code == 422, response.text
    problem = response.json()
    errors = {e["field"]: e["message"] for e in problem["errors"]}
    assert reason in errors[f"body.archive.{entry}"]
    assert entry in problem["detail"]
    assert stored_keys(s3, name) == [] and dataset_rows(sessions, name) == 0


def test_too_many_files_and_too_large_archives_are_refused(
    api: TestClient, s3: Minio, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = new_name()
    many = {f"normal/{n}.jpg": scene_jpeg(1) for n in range(30)}
    monkeypatch.setenv("VIGIL_API_ARCHIVE_MAX_ENTRIES", "20")
    monkeypatch.setenv("VIGIL_API_ARCHIVE_MAX_BYTES", "30000")
    with TestClient(create_app(ApiSettings()), headers=dict(api.headers)) as small:
        response = upload(small, name, zip_bytes(many))
        assert response.status_code == 422
        assert "more than 20 entries" in response.json()["detail"]
        huge = upload(small, name, zip_bytes({"normal/a.jpg": os.urandom(120_000)}))
        assert huge.status_code == 413 and "split it" in huge.json()["detail"]
        over = upload(small, name, zip_bytes({"normal/a.jpg": os.urandom(40_000)}))
        assert over.status_code == 422 and "the limit is 30000" in over.json()["detail"]
    assert stored_keys(s3, name) == []


def test_versions_past_the_build_slots_are_503_and_store_nothing(
    api: TestClient, s3: Minio, monkeypatch: pytest.MonkeyPatch, issue_key: IssueKey
) -> None:
    name = new_name()
    viewer = bearer(issue_key("viewer"))
    monkeypatch.setenv("VIGIL_API_VERSION_BUILDS_AT_ONCE", "1")
    monkeypatch.setenv("VIGIL_API_VERSION_BUILD_WAIT_S", "0.2")
    with TestClient(create_app(ApiSettings()), headers=dict(api.headers)) as one:
        slots = one.app.state.build_slots  # type: ignore[attr-defined]
        now = datetime.now(UTC)
        span = {"start": (now - timedelta(minutes=5)).isoformat(), "end": now.isoformat()}
        with slots.held():  # a build in progress
            refused = [
                upload(one, name, zip_bytes(good_entries())),
                one.post(f"/api/v1/datasets/{name}/versions/from-events", json={}),
                one.post(
                    f"/api/v1/datasets/{name}/versions/from-camera",
                    json={"camera_id": "any-camera", "label": "normal"} | span,
                ),
                one.post(
                    f"/api/v1/datasets/{name}/versions/compose",
                    json={"parts": [{"dataset": "other"}]},
                ),
                one.post("/api/v1/cameras/any-camera/retrain", json=span),
            ]
            # A key that may not build is told so at once, not after waiting for a slot.
            forbidden = one.post(
                f"/api/v1/datasets/{name}/versions/from-events", json={}, headers=viewer
            )
            assert forbidden.status_code == 403, forbidden.text
            # Nor is a camera-scoped operator's retrain (only a fleet-wide key may queue a job).
            scoped = bearer(issue_key("operator", camera_ids=["any-camera"]))
            not_fleet = one.post("/api/v1/cameras/any-camera/retrain", json=span, headers=scoped)
            assert not_fleet.status_code == 403, not_fleet.text
        for response in refused:
            assert response.status_code == 503, response.text
            assert response.headers["Retry-After"] == "1"
            # The CLI reads it as busy: it waits a second and sends the request again.
            assert retry_after_s(response.status_code, response.headers) == 1.0
            assert "dataset versions are being built" in response.json()["detail"]
        assert stored_keys(s3, name) == []
        assert upload(one, name, zip_bytes(good_entries())).status_code == 201  # the slot freed


def add_reviewed_event(
    sessions: sessionmaker[Session], s3: Minio, camera_id: str, review: str, label: str | None
) -> uuid.UUID:
    """A reviewed event with its raw peak frame stored, as inference and feedback leave it; its
    id."""
    event = make_event(camera_id, review=review, review_label=label)
    add_rows(sessions, [event])
    raw_key = snapshot_keys(camera_id=camera_id, event_id=event.event_id)[1]
    put_bytes(s3, CommonSettings().s3.snapshots_bucket, raw_key, scene_jpeg(7), "image/jpeg")
    return event.event_id


def test_reviewed_events_become_labelled_frames_and_scope_is_kept(
    api: TestClient, s3: Minio, sessions: sessionmaker[Session], issue_key: IssueKey
) -> None:
    mine, other = f"cam-{uuid.uuid4().hex[:8]}", f"cam-{uuid.uuid4().hex[:8]}"
    add_reviewed_event(sessions, s3, mine, "confirmed", "bicycle")
    add_reviewed_event(sessions, s3, mine, "confirmed", None)
    add_reviewed_event(sessions, s3, mine, "false_positive", None)
    add_reviewed_event(sessions, s3, other, "confirmed", None)
    key = bearer(issue_key("operator", camera_ids=[mine]))
    name = new_name()

    built = api.post(f"/api/v1/datasets/{name}/versions/from-events", json={}, headers=key)
    assert built.status_code == 201, built.text
    assert built.json()["label_counts"] == {"bicycle": 1, "abnormal": 1, "normal": 1}
    assert built.json()["camera_ids"] == [mine]
    assert name in {d["name"] for d in api.get("/api/v1/datasets", headers=key).json()}

    refused = api.post(
        f"/api/v1/datasets/{new_name()}/versions/from-events",
        json={"camera_ids": [other]},
        headers=key,
    )
    assert refused.status_code == 404
    assert upload(api, new_name(), zip_bytes(good_entries()), headers=key).status_code == 403

    both = new_name()
    assert api.post(f"/api/v1/datasets/{both}/versions/from-events", json={}).status_code == 201
    assert api.get(f"/api/v1/datasets/{both}", headers=key).status_code == 404
    uploaded = new_name()
    assert upload(api, uploaded, zip_bytes(good_entries())).status_code == 201
    assert api.get(f"/api/v1/datasets/{uploaded}", headers=key).status_code == 404


def test_a_camera_time_range_becomes_a_version(
    api: TestClient, kafka_settings: KafkaSettings
) -> None:
    camera_id = f"cam-{uuid.uuid4().hex[:8]}"
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    producer = make_producer(kafka_settings)
    for seq in range(12):
        captured = start + timedelta(seconds=seq)
        headers = FrameHeaders(
            camera_id=camera_id, seq=seq, captured_at=captured, width=180, height=120
        )
        for camera in (camera_id, "someone-else"):
            producer.send(
                kafka_settings.topics.frames,
                key=camera.encode(),
                value=scene_jpeg(seq),
                headers=headers.to_kafka_headers(),
                timestamp_ms=int(captured.timestamp() * 1000),
            )
    producer.flush()
    producer.close()
    body = {
        "camera_id": camera_id,
        "start": (start + timedelta(seconds=2)).isoformat(),
        "end": (start + timedelta(seconds=9)).isoformat(),
        "every_n": 2,
        "label": "normal",
    }
    with TestClient(create_app(ApiSettings()), headers=dict(api.headers)) as client:
        response = client.post(f"/api/v1/datasets/{new_name()}/versions/from-camera", json=body)
        assert response.status_code == 201, response.text
        assert response.json()["label_counts"] == {"normal": 4}  # seq 2, 4, 6, 8
        assert response.json()["camera_ids"] == [camera_id]
        empty = client.post(
            f"/api/v1/datasets/{new_name()}/versions/from-camera",
            json=body | {"camera_id": "no-such-camera"},
        )
        assert empty.status_code == 422 and "sent no frames" in empty.json()["detail"]


def test_a_scoped_key_adds_versions_only_to_datasets_its_scope_owns(
    api: TestClient, s3: Minio, sessions: sessionmaker[Session], issue_key: IssueKey
) -> None:
    mine, other = f"cam-{uuid.uuid4().hex[:8]}", f"cam-{uuid.uuid4().hex[:8]}"
    for camera in (mine, other):
        add_reviewed_event(sessions, s3, camera, "confirmed", None)
    scoped = bearer(issue_key("operator", camera_ids=[mine]))
    fleet = new_name()
    uploaded = upload(api, fleet, zip_bytes(good_entries()))
    assert uploaded.status_code == 201 and uploaded.json()["owner_scope"] is None
    keys_before = stored_keys(s3, fleet)

    # The attack: a camera's key adds the newest version to a fleet-wide dataset, which every
    # job naming the dataset without a version would then train on.
    poisoned = api.post(f"/api/v1/datasets/{fleet}/versions/from-events", json={}, headers=scoped)
    assert poisoned.status_code == 403, poisoned.text
    assert "fleet-wide" in poisoned.json()["detail"]
    assert stored_keys(s3, fleet) == keys_before and dataset_rows(sessions, fleet) == 1

    own = new_name()
    built = api.post(f"/api/v1/datasets/{own}/versions/from-events", json={}, headers=scoped)
    assert built.status_code == 201 and built.json()["owner_scope"] == [mine]
    stranger = bearer(issue_key("operator", camera_ids=[other]))
    refused = api.post(f"/api/v1/datasets/{own}/versions/from-events", json={}, headers=stranger)
    assert refused.status_code == 403 and "another camera scope" in refused.json()["detail"]
    wider = bearer(issue_key("operator", camera_ids=[mine, other]))
    added = api.post(f"/api/v1/datasets/{own}/versions/from-events", json={}, headers=wider)
    assert added.status_code == 201, added.text
    assert added.json()["owner_scope"] == sorted([mine, other])
    # An unscoped key may add to any dataset; the versions it adds are fleet-wide. A third
    # camera's event makes its version new (the same events would be the same version: 200).
    add_reviewed_event(sessions, s3, f"cam-{uuid.uuid4().hex[:8]}", "confirmed", None)
    assert api.post(f"/api/v1/datasets/{own}/versions/from-events", json={}).status_code == 201


def test_versions_stored_without_a_row_count_as_fleet_wide(
    api: TestClient, s3: Minio, sessions: sessionmaker[Session], issue_key: IssueKey
) -> None:
    mine = f"cam-{uuid.uuid4().hex[:8]}"
    add_reviewed_event(sessions, s3, mine, "confirmed", None)
    name = new_name()
    put_bytes(s3, CommonSettings().s3.datasets_bucket, f"datasets/{name}/{'0' * 64}/x", b"x", "x")
    scoped = bearer(issue_key("operator", camera_ids=[mine]))
    refused = api.post(f"/api/v1/datasets/{name}/versions/from-events", json={}, headers=scoped)
    assert refused.status_code == 403 and "imported" in refused.json()["detail"]


def test_an_upload_with_a_nul_in_its_description_is_422_and_stores_nothing(
    api: TestClient, s3: Minio, sessions: sessionmaker[Session]
) -> None:
    name = new_name()
    files = {"archive": ("data.zip", zip_bytes(good_entries()), "application/zip")}
    refused = api.post(
        f"/api/v1/datasets/{name}/versions", files=files, data={"description": "first\x00cut"}
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["field"] == "body.description"
    assert stored_keys(s3, name) == [] and dataset_rows(sessions, name) == 0
    # The same content is not blocked under that name: nothing of the refused upload remains.
    again = api.post(
        f"/api/v1/datasets/{name}/versions", files=files, data={"description": "first\ncut"}
    )
    assert again.status_code == 201 and again.json()["description"] == "first\ncut"


def test_a_version_that_cannot_be_recorded_is_removed_from_storage(
    s3: Minio, sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    def database_down(**_: object) -> None:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(dataset_versions, "record_version", database_down)
    name = new_name()
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    app = create_app(ApiSettings())
    with TestClient(app, headers=headers, raise_server_exceptions=False) as client:
        assert upload(client, name, zip_bytes(good_entries())).status_code == 500
    assert stored_keys(s3, name) == [] and dataset_rows(sessions, name) == 0


def test_a_review_label_that_cannot_be_a_dataset_label_is_422_not_500(
    api: TestClient, s3: Minio, sessions: sessionmaker[Session]
) -> None:
    camera = f"cam-{uuid.uuid4().hex[:8]}"
    # Stored before feedback labels had to be dataset labels.
    event_id = add_reviewed_event(sessions, s3, camera, "confirmed", "vélo")
    name = new_name()
    body = {"camera_ids": [camera]}
    response = api.post(f"/api/v1/datasets/{name}/versions/from-events", json=body)
    assert response.status_code == 422, response.text
    assert str(event_id) in response.json()["detail"]
    assert stored_keys(s3, name) == [] and dataset_rows(sessions, name) == 0
    feedback = api.post(
        f"/api/v1/events/{event_id}/feedback", json={"verdict": "confirmed", "label": "vélo"}
    )
    assert feedback.status_code == 422 and feedback.json()["errors"][0]["field"] == "body.label"


@pytest.mark.parametrize(
    ("entries", "reason"),
    [
        ({"normal/" + "a" * 1100 + "_0001.jpg": scene_jpeg(3)}, "at most 1024"),
        ({"normal/gpj.\u202eexe_0001.jpg": scene_jpeg(3)}, "bidi"),
        ({"manifest.json": b"[" * 100_000 + b"]" * 100_000}, "deeper than 32"),
        ({"manifest.json": b'{"items": [{"file": "a\\u0000.jpg", "label": "x"}]}'}, "NUL"),
    ],
    ids=["long-name", "bidi-name", "deep-manifest", "nul-manifest"],
)
def test_hostile_entry_names_and_manifests_are_422_naming_why(
    api: TestClient, s3: Minio, entries: dict[str, bytes], reason: str
) -> None:
    name = new_name()
    response = upload(api, name, zip_bytes(good_entries() | entries))
    assert response.status_code == 422, response.text
    assert reason in response.json()["detail"]
    assert len(response.json()["detail"]) < 2000  # a long name is quoted shortened
    assert stored_keys(s3, name) == []


def test_a_video_becomes_a_clip_whose_rate_the_fit_reads(
    api: TestClient, s3: Minio, tmp_path: Path
) -> None:
    """An operator's recording uploaded as it is: its frames stored with the video's capture
    times, so a one_class fit takes the footage at its own rate (5 fps here, where an image
    archive's frames would be taken at 10); a corrupt video stores nothing."""
    name = new_name()
    clip = tmp_path / "monday.mp4"
    write_video(clip, (walker(i) for i in range(15)), fps=5, metadata={"creation_time": RECORDED})
    entries = {"normal/hall/monday.mp4": clip.read_bytes(), "normal/clip01_0001.jpg": scene_jpeg(1)}
    response = upload(api, name, zip_bytes(entries))
    assert response.status_code == 201, response.text
    version = response.json()
    assert version["n_items"] == 16 and version["label_counts"] == {"normal": 16}
    detail = api.get(f"/api/v1/datasets/{name}/versions/{version['version']}").json()
    assert detail["group_counts"] == {"hall/monday": 15, "clip01": 1}
    ref = DatasetRef(name=name, version=version["version"])
    manifest = load_manifest(s3, CommonSettings().s3.datasets_bucket, ref)
    [video] = [c for c in clips_of(manifest) if c.group == "hall/monday"]
    assert video.items[0].captured_at == datetime(2026, 11, 30, 8, tzinfo=UTC)
    assert video.items[0].source_name == "normal/hall/monday.mp4#0"
    assert frame_rate([video]) == pytest.approx(5.0)

    cut = clip.read_bytes()[: clip.stat().st_size // 3]
    at_camera_rate = api.post(
        f"/api/v1/datasets/{new_name()}/versions",
        files={"archive": ("data.zip", zip_bytes(entries), "application/zip")},
        data={"video_fps": "2.5"},
    )
    assert at_camera_rate.status_code == 201, at_camera_rate.text
    assert at_camera_rate.json()["n_items"] == 8 + 1  # every other frame of 15, and the image
    for bad in ("0", "fast", "1000"):
        refused_fps = api.post(
            f"/api/v1/datasets/{new_name()}/versions",
            files={"archive": ("data.zip", zip_bytes(entries), "application/zip")},
            data={"video_fps": bad},
        )
        assert refused_fps.status_code == 422, refused_fps.text
        assert refused_fps.json()["errors"][0]["field"] == "body.video_fps"

    refused = new_name()
    broken = upload(api, refused, zip_bytes({"normal/cut.mp4": cut}))
    assert broken.status_code == 422, broken.text
    assert stored_keys(s3, refused) == []
    [problem] = broken.json()["errors"]
    assert problem["field"] == "body.archive.normal/cut.mp4"
    assert "video" in problem["message"]
