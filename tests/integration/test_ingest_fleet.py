"""Fleet mode against the real API app and the real Kafka: cameras registered, changed and
disabled through the API are started, restarted and stopped by one running ingest, and a push
camera's uploads reach the frames topic.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import secrets
import statistics
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from kafka.consumer.fetcher import ConsumerRecord
from PIL import Image

from tests.integration.conftest import ADMIN_KEY, StartService, bearer
from tests.integration.rtsp import Clip, free_tcp_port, make_clip
from tests.integration.test_ingest_rtsp import TopicTail, frames_of, statuses_of
from tests.support import wait_until
from vigil_api.core.settings import ApiSettings
from vigil_api.main import create_app
from vigil_ingest.metrics import IngestMetrics
from vigil_ingest.service import run_fleet
from vigil_ingest.settings import IngestSettings
from vigil_shared.schemas.camera_status import CameraStatus
from vigil_shared.schemas.frames import FrameHeaders
from vigil_shared.settings import KafkaSettings
from vigil_shared.topics import Topics


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Clip:
    return make_clip(tmp_path_factory.mktemp("fleet"))


@dataclass
class Api:
    admin: TestClient
    ingest_key: str
    registered: list[str]

    def register(self, **camera: Any) -> str:
        camera_id = f"fleet-{uuid.uuid4().hex[:8]}"
        body = {"id": camera_id, "name": "fleet test", "max_width": 160, "max_height": 120}
        response = self.admin.post("/api/v1/cameras", json=body | camera)
        assert response.status_code == 201, response.text
        self.registered.append(camera_id)
        return camera_id

    def patch(self, camera_id: str, **fields: Any) -> None:
        response = self.admin.patch(f"/api/v1/cameras/{camera_id}", json=fields)
        assert response.status_code == 200, response.text

    def ingest_client(self) -> TestClient:
        return TestClient(self.admin.app, headers=bearer(self.ingest_key))


@pytest.fixture
def fleet_api(clip: Clip) -> Iterator[Api]:
    """The API app allowing file sources next to the clip, and an operator key for ingest."""
    app = create_app(ApiSettings(camera_file_root=str(clip.path.parent)))
    with TestClient(app, headers=bearer(ADMIN_KEY)) as admin:
        body = {"name": "ingest", "role": "operator", "camera_ids": None}
        response = admin.post("/api/v1/keys", json=body)
        assert response.status_code == 201, response.text
        api = Api(admin, response.json()["key"], [])
        yield api
        for camera_id in api.registered:  # the database is shared by the whole session
            admin.delete(f"/api/v1/cameras/{camera_id}")


@pytest.fixture
def tails(kafka_settings: KafkaSettings, topics: Topics) -> Iterator[tuple[TopicTail, TopicTail]]:
    frames = TopicTail(kafka_settings, topics.frames)
    status = TopicTail(kafka_settings, topics.camera_status)
    yield frames, status
    frames.close()
    status.close()


class Ingest:
    """``run_fleet`` on a thread of this test, reading the API app in process."""

    def __init__(self, api: Api, **settings: Any) -> None:
        values = {
            "api_url": "http://testserver",
            "api_key": api.ingest_key,
            "camera_refresh_s": 0.5,
            "loop": True,
            "status_interval_s": 1,
            "open_timeout_s": 5,
            "read_timeout_s": 5,
        }
        self.settings = IngestSettings.model_validate(values | settings)
        self.metrics = IngestMetrics()
        self.stop = threading.Event()
        self.thread = threading.Thread(
            target=run_fleet,
            args=(self.settings, self.stop),
            kwargs={"metrics": self.metrics, "client": api.ingest_client()},
            name="fleet",
        )

    def __enter__(self) -> Ingest:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(30)
        assert not self.thread.is_alive(), "ingest did not stop within 30 s of its stop flag"


def camera_frames(records: list[ConsumerRecord], camera_id: str) -> list[FrameHeaders]:
    return [f for f in frames_of(records) if f.camera_id == camera_id]


def camera_statuses(records: list[ConsumerRecord], camera_id: str) -> list[CameraStatus]:
    return [s for s in statuses_of(records) if s.camera_id == camera_id]


def frames_since_restart(
    camera_id: str, *, count: int, after: int = 0
) -> Callable[[list[ConsumerRecord]], list[FrameHeaders] | None]:
    """A probe: ``count`` frames of the camera from a pipeline started after record ``after``
    (its sequence starts at 0), or None until there are."""

    def probe(records: list[ConsumerRecord]) -> list[FrameHeaders] | None:
        frames = camera_frames(records[after:], camera_id)
        starts = [i for i, f in enumerate(frames) if f.seq == 0]
        fresh = frames[starts[-1] :] if starts else []
        return fresh if len(fresh) >= count else None

    return probe


def spacing_s(frames: list[FrameHeaders]) -> float:
    """The median time between consecutive frames (capture time: source time for a file)."""
    gaps = [
        (b.captured_at - a.captured_at).total_seconds()
        for a, b in itertools.pairwise(frames)
        if b.seq == a.seq + 1
    ]
    return statistics.median(gaps)


def test_the_ingest_route_gives_the_full_source_to_operators_only(fleet_api: Api) -> None:
    api = fleet_api
    camera_id = api.register(source="rtsp://admin:hunter2@cam.local/main")
    full = api.ingest_client().get("/api/v1/ingest/cameras", params={"limit": 500})
    assert full.status_code == 200
    mine = next(c for c in full.json() if c["id"] == camera_id)
    assert mine["source"] == "rtsp://admin:hunter2@cam.local/main"
    shown = api.admin.get(f"/api/v1/cameras/{camera_id}").json()
    assert shown["source"] == "rtsp://admin:***@cam.local/main"
    viewer = api.admin.post(
        "/api/v1/keys", json={"name": "v", "role": "viewer", "camera_ids": None}
    ).json()["key"]
    refused = TestClient(api.admin.app).get("/api/v1/ingest/cameras", headers=bearer(viewer))
    assert refused.status_code == 403 and "hunter2" not in refused.text


def test_ingest_follows_camera_changes_without_a_restart(
    fleet_api: Api, clip: Clip, tails: tuple[TopicTail, TopicTail]
) -> None:
    api = fleet_api
    frames_tail, status_tail = tails
    camera_id = api.register(source=str(clip.path), target_fps=2)
    with Ingest(api) as ingest:
        first = frames_tail.wait_for(
            frames_since_restart(camera_id, count=4),
            timeout_s=60,
            what="4 frames of the camera registered through the API",
        )
        assert spacing_s(first) == pytest.approx(0.5, abs=0.05)
        assert all(f.width <= 160 and f.height <= 120 for f in first)

        seen = len(frames_tail.records)
        api.patch(camera_id, target_fps=5)
        restarted = frames_tail.wait_for(
            frames_since_restart(camera_id, count=8, after=seen),
            timeout_s=60,
            what="8 frames of the camera restarted at 5 fps",
        )
        assert spacing_s(restarted) == pytest.approx(0.2, abs=0.03)
        status_tail.wait_for(
            lambda r: any(
                s.target_fps == 5 and s.state == "online" for s in camera_statuses(r, camera_id)
            ),
            timeout_s=30,
            what="an online status at the new target fps",
        )

        api.patch(camera_id, enabled=False)
        stopped = status_tail.wait_for(
            lambda r: next(
                (s for s in camera_statuses(r, camera_id) if "disabled" in (s.reason or "")), None
            ),
            timeout_s=30,
            what="the disabled camera's stopped status",
        )
        assert stopped.state == "stopped"
        count = len(camera_frames(frames_tail.read_for(1.0), camera_id))
        assert len(camera_frames(frames_tail.read_for(2.0), camera_id)) == count
        assert ingest.thread.is_alive()


def jpeg(size: tuple[int, int] = (320, 240)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (40, 160, 90)).save(buffer, format="JPEG")
    return buffer.getvalue()


def test_a_push_camera_publishes_its_masked_uploads_and_only_them(
    fleet_api: Api, tails: tuple[TopicTail, TopicTail]
) -> None:
    api = fleet_api
    frames_tail, _ = tails
    token = secrets.token_urlsafe(32)
    digest = hashlib.sha256(token.encode()).hexdigest()
    left_half = [[0, 0], [0.5, 0], [0.5, 1], [0, 1]]
    camera_id = api.register(source=f"push://?token_sha256={digest}", masks=[left_half])
    port = free_tcp_port()
    url = f"http://127.0.0.1:{port}/push/{camera_id}"
    good = {"Authorization": f"Bearer {token}", "Content-Type": "image/jpeg"}
    with Ingest(api, push_port=port, push_host="127.0.0.1", push_max_bytes=64 * 1024):

        def upload(body: bytes, headers: dict[str, str] = good) -> httpx.Response:
            return httpx.post(url, content=body, headers=headers, timeout=10)

        def first_upload_taken() -> bool:
            try:
                return upload(jpeg()).status_code == 202
            except httpx.TransportError:  # the fleet thread has not opened the push port yet
                return False

        wait_until(
            first_upload_taken, timeout_s=30, what="the push camera to take its first upload"
        )
        assert upload(b"\xff\xd8 not really a JPEG").status_code == 400
        wrong = good | {"Authorization": "Bearer not-the-token"}
        assert upload(jpeg(), wrong).status_code == 401
        assert upload(b"\xff" * (65 * 1024)).status_code == 413
        assert upload(jpeg()).status_code == 202

        pushed = frames_tail.wait_for(
            frames_since_restart(camera_id, count=2),
            timeout_s=30,
            what="the two accepted uploads on the frames topic",
        )
        assert [f.seq for f in pushed] == [0, 1]
        assert all((f.width, f.height) == (160, 120) for f in pushed)
        assert len(camera_frames(frames_tail.read_for(1.5), camera_id)) == 2
        for record in frames_tail.records:
            if record.key == camera_id.encode():  # the camera's mask, from the API, is applied
                picture = np.asarray(Image.open(io.BytesIO(record.value)).convert("L"))
                assert picture[:, :76].max() <= 8
                assert picture[:, 84:].min() >= 90


@pytest.fixture
def api_process(start_service: StartService, clip: Clip) -> str:
    """The API as its own process, as ingest meets it in production; returns its URL."""
    port = free_tcp_port()
    api = start_service(
        "vigil_api",
        VIGIL_API_HOST="127.0.0.1",
        VIGIL_API_PORT=str(port),
        VIGIL_API_CAMERA_FILE_ROOT=str(clip.path.parent),
    )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        api.assert_running()
        try:
            return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(ready, timeout_s=60, what="the API process to answer")
    return url


def issue(url: str, role: str) -> str:
    body = {"name": f"ingest-{role}", "role": role, "camera_ids": None}
    response = httpx.post(f"{url}/api/v1/keys", json=body, headers=bearer(ADMIN_KEY), timeout=10)
    assert response.status_code == 201, response.text
    key: str = response.json()["key"]
    return key


def test_sigterm_stops_every_camera_of_the_fleet_cleanly(
    api_process: str,
    start_service: StartService,
    clip: Clip,
    tails: tuple[TopicTail, TopicTail],
) -> None:
    frames_tail, status_tail = tails
    ids = [f"term-{uuid.uuid4().hex[:6]}-{i}" for i in range(2)]
    for camera_id in ids:
        body = {"id": camera_id, "name": "sigterm test", "source": str(clip.path)}
        response = httpx.post(
            f"{api_process}/api/v1/cameras", json=body, headers=bearer(ADMIN_KEY), timeout=10
        )
        assert response.status_code == 201, response.text
    ingest = start_service(
        "vigil_ingest",
        VIGIL_INGEST_API_URL=api_process,
        VIGIL_INGEST_API_KEY=issue(api_process, "operator"),
        VIGIL_INGEST_CAMERA_REFRESH_S="1",
        VIGIL_INGEST_LOOP="true",
    )
    for camera_id in ids:
        frames_tail.wait_for(
            frames_since_restart(camera_id, count=3),
            timeout_s=60,
            what=f"frames of {camera_id} from the ingest process",
        )
    ingest.assert_running()
    assert ingest.stop() == 0
    stopped = status_tail.wait_for(
        lambda r: (
            {s.camera_id for s in statuses_of(r) if s.state == "stopped" and s.camera_id in ids}
            == set(ids)
            or None
        ),
        timeout_s=15,
        what="a stopped status from every camera",
    )
    assert stopped


def test_a_key_without_the_operator_role_is_refused_at_start(
    api_process: str, start_service: StartService
) -> None:
    ingest = start_service(
        "vigil_ingest",
        VIGIL_INGEST_API_URL=api_process,
        VIGIL_INGEST_API_KEY=issue(api_process, "viewer"),
    )
    assert ingest.process.wait(timeout=60) == 2
    assert "give ingest a valid key with the operator role" in ingest.log()


def test_a_revoked_key_is_shown_in_readiness_metrics_and_camera_status(
    fleet_api: Api, clip: Clip, tails: tuple[TopicTail, TopicTail]
) -> None:
    """An admin revokes ingest's key while it runs: cameras registered afterwards cannot start,
    and that must be seen, not only logged every refresh."""
    api = fleet_api
    frames_tail, status_tail = tails
    running = api.register(source=str(clip.path), target_fps=2)
    port = free_tcp_port()
    with Ingest(api, metrics_port=port) as ingest:
        frames_tail.wait_for(
            frames_since_restart(running, count=2), timeout_s=60, what="frames of the camera"
        )
        assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200
        (row,) = [
            k
            for k in api.admin.get("/api/v1/keys").json()
            if api.ingest_key.startswith(k["prefix"])
        ]
        # ``force``: the API may ask for it before revoking a key a service uses.
        revoked = api.admin.delete(f"/api/v1/keys/{row['id']}", params={"force": "true"})
        assert revoked.status_code == 200, revoked.text
        unseen = api.register(source=str(clip.path), target_fps=2)
        refused = status_tail.wait_for(
            lambda r: next(
                (
                    s
                    for s in camera_statuses(r, running)
                    if (s.reason or "").startswith("api key refused")
                ),
                None,
            ),
            timeout_s=30,
            what="the camera's status to say the key is refused",
        )
        assert refused.state == "online"
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
        assert ready.status_code == 503
        (problem,) = ready.json()["problems"]
        assert problem.startswith("api key refused: the API refused VIGIL_INGEST_API_KEY (401")
        assert ingest.metrics.registry.get_sample_value("vigil_ingest_api_key_refused") == 1
        assert not camera_frames(frames_tail.read_for(1.0), unseen)
