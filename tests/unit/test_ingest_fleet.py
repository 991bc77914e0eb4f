"""Fleet mode: cameras follow the API's definitions live, and an API outage stops nothing."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import wait_until
from tests.unit.ingest_fakes import STREAM, TOPICS, FakeProducer, camera_settings, numbered_image
from vigil_ingest.camera import CameraPipeline, build_camera
from vigil_ingest.definitions import (
    PAGE,
    ApiKeyStatus,
    CameraDefinition,
    DefinitionsError,
    fetch_definitions,
)
from vigil_ingest.fleet import MAX_RESTARTS, Fleet
from vigil_ingest.metrics import IngestMetrics
from vigil_ingest.service import _follow
from vigil_ingest.sources import SourceFrame, kind_of
from vigil_shared.cameras.sources import SourceKind

API = "http://api.test"


def live_camera() -> Generator[SourceFrame, None, None]:
    """A stream that never ends by itself (about 50 frames a second)."""
    index = 0
    while True:
        yield SourceFrame(image=numbered_image(index), offset_s=index / 50)
        index += 1
        time.sleep(0.02)


def short_file() -> Generator[SourceFrame, None, None]:
    for index in range(3):
        yield SourceFrame(image=numbered_image(index), offset_s=index / 50)


def build(settings: Any, **kwargs: Any) -> CameraPipeline:
    """Cameras as the fleet builds them, with scripted streams and files instead of FFmpeg."""
    kind = kind_of(settings.source)
    if kind is not SourceKind.PUSH:
        kwargs["frames"] = live_camera if kind is SourceKind.STREAM else short_file
    return build_camera(settings, **kwargs)


def camera(camera_id: str, **fields: Any) -> CameraDefinition:
    values: dict[str, Any] = {
        "id": camera_id,
        "source": STREAM,
        "target_fps": 5,
        "max_width": 640,
        "max_height": 480,
        "jpeg_quality": 85,
    }
    return CameraDefinition.model_validate(values | fields)


@pytest.fixture
def producer() -> FakeProducer:
    return FakeProducer()


@pytest.fixture
def metrics() -> IngestMetrics:
    return IngestMetrics()


@pytest.fixture
def fleet(producer: FakeProducer, metrics: IngestMetrics) -> Iterator[Fleet]:
    base = camera_settings(realtime=False, status_interval_s=60)
    fleet = Fleet(base=base, producer=producer, metrics=metrics, grace_s=5, build=build)
    yield fleet
    fleet.close()


def last_status(producer: FakeProducer, camera_id: str) -> Any:
    statuses = [s for s in producer.statuses(TOPICS.camera_status) if s.camera_id == camera_id]
    return statuses[-1] if statuses else None


def test_new_enabled_cameras_start_and_the_others_are_left_alone(fleet: Fleet) -> None:
    changes = fleet.reconcile([camera("a"), camera("b", enabled=False)])
    assert changes.started == ["a"] and set(fleet.running) == {"a"}
    first = fleet.pipeline("a")
    assert not fleet.reconcile([camera("a"), camera("b", enabled=False)])
    changes = fleet.reconcile([camera("a"), camera("c")])
    assert changes.started == ["c"] and not changes.restarted
    assert fleet.pipeline("a") is first  # untouched: never restarted


def test_a_changed_definition_restarts_that_camera_with_it(
    fleet: Fleet, producer: FakeProducer, metrics: IngestMetrics
) -> None:
    fleet.reconcile([camera("a"), camera("c")])
    old, other = fleet.pipeline("a"), fleet.pipeline("c")
    changes = fleet.reconcile([camera("a", target_fps=2), camera("c")])
    assert changes.restarted == ["a"] and not changes.started and not changes.stopped
    assert old is not None and old.done()
    assert fleet.pipeline("c") is other
    assert fleet.running["a"].target_fps == 2
    wait_until(
        lambda: (s := last_status(producer, "a")) and s.target_fps == 2,
        timeout_s=5,
        what="a status of the restarted camera",
    )
    restarts = metrics.registry.get_sample_value(
        "vigil_ingest_camera_restarts_total", {"camera_id": "a"}
    )
    assert restarts == 1


@pytest.mark.parametrize(
    "field",
    [
        {"source": STREAM + "2"},
        {"max_width": 320},
        {"jpeg_quality": 50},
        {"masks": [[[0, 0], [1, 0], [1, 1]]]},
    ],
)
def test_every_field_ingest_uses_restarts_the_camera(fleet: Fleet, field: dict[str, Any]) -> None:
    fleet.reconcile([camera("a")])
    assert fleet.reconcile([camera("a", **field)]).restarted == ["a"]


def test_disabled_and_removed_cameras_stop(fleet: Fleet, producer: FakeProducer) -> None:
    fleet.reconcile([camera("a"), camera("c")])
    pipelines = [fleet.pipeline("a"), fleet.pipeline("c")]
    changes = fleet.reconcile([camera("a", enabled=False)])
    assert sorted(changes.stopped) == ["a", "c"] and not fleet.running
    assert all(p is not None and p.done() for p in pipelines)
    assert last_status(producer, "a").state == "stopped"
    assert last_status(producer, "c").state == "stopped"


def test_a_camera_that_ended_is_not_replayed_until_its_definition_changes(
    fleet: Fleet, tmp_path: Path, producer: FakeProducer
) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"scripted in this test")
    definition = camera("f", source=str(clip))
    fleet.reconcile([definition])
    wait_until(lambda: fleet.reap() == ["f"], timeout_s=10, what="the file to end")
    assert not fleet.reconcile([definition])
    assert fleet.reconcile([camera("f", source=str(clip), target_fps=2)]).started == ["f"]
    assert len(producer.frames(TOPICS.frames)) >= 3


def test_a_failing_camera_is_restarted_a_few_times_then_left_stopped(
    producer: FakeProducer, metrics: IngestMetrics
) -> None:
    builds = []

    def crashing() -> Generator[SourceFrame, None, None]:
        raise RuntimeError("a bug in a decoder")
        yield  # a generator, like every source

    def build_crashing(settings: Any, **kwargs: Any) -> CameraPipeline:
        builds.append(settings.camera_id)
        return build_camera(settings, frames=crashing, **kwargs)

    base = camera_settings(status_interval_s=60)
    fleet = Fleet(base=base, producer=producer, metrics=metrics, grace_s=5, build=build_crashing)
    try:
        fleet.reconcile([camera("x")])
        for _ in range(50):
            fleet.reap()
            if not fleet.running:
                break
            time.sleep(0.1)
        assert not fleet.running and len(builds) == 1 + MAX_RESTARTS
        assert not fleet.reconcile([camera("x")])  # left stopped, until its definition changes
        assert last_status(producer, "x").reason == "ingest failed in its capture loop"
        assert fleet.reconcile([camera("x", target_fps=1)]).started == ["x"]
    finally:
        fleet.close()


def test_a_source_that_is_not_there_is_reported_and_not_retried(
    fleet: Fleet, producer: FakeProducer
) -> None:
    missing = camera("m", source="/nowhere/clip.mp4")
    assert fleet.reconcile([missing]).failed == ["m"]
    status = last_status(producer, "m")
    assert status.state == "stopped" and "does not exist" in status.reason
    sent = len(producer.sent)
    assert not fleet.reconcile([missing])
    assert len(producer.sent) == sent


def test_a_push_camera_without_the_push_endpoint_says_how_to_enable_it(
    fleet: Fleet, producer: FakeProducer
) -> None:
    push = camera("p", source="push://?token_sha256=" + "ab" * 32)
    assert fleet.reconcile([push]).failed == ["p"]
    assert "VIGIL_INGEST_PUSH_PORT" in last_status(producer, "p").reason


class FakeApi:
    """The API's ingest camera list, which a test can change or take down."""

    def __init__(self, cameras: list[CameraDefinition]) -> None:
        self.cameras = cameras
        self.down = False
        self.status = 200
        self.reads = 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.reads += 1
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        after = request.url.params.get("after")
        limit = int(request.url.params["limit"])
        rows = [c.model_dump(mode="json") for c in self.cameras if after is None or c.id > after]
        return httpx.Response(self.status, json=rows[:limit])

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=API, transport=httpx.MockTransport(self.handle))


def test_definitions_are_read_page_by_page_and_unusable_ones_skipped() -> None:
    api = FakeApi([camera(f"cam-{i:04d}") for i in range(PAGE + 3)])
    definitions = fetch_definitions(api.client())
    assert len(definitions) == PAGE + 3 and api.reads == 2

    def odd_rows(request: httpx.Request) -> httpx.Response:
        good = camera("good").model_dump(mode="json")
        bad = good | {"id": "bad", "masks": [[[0, 0], [2, 0], [0, 1]]]}
        return httpx.Response(200, json=[good | {"name": "extra fields are fine"}, bad])

    client = httpx.Client(base_url=API, transport=httpx.MockTransport(odd_rows))
    assert [d.id for d in fetch_definitions(client)] == ["good"]


@pytest.mark.parametrize(("code", "fatal"), [(403, True), (401, True), (503, False)])
def test_a_refused_key_is_fatal_and_a_failing_api_is_not(code: int, fatal: bool) -> None:
    api = FakeApi([])
    api.status = code
    with pytest.raises(DefinitionsError) as error:
        fetch_definitions(api.client())
    assert error.value.fatal is fatal
    if fatal:
        assert "operator role" in str(error.value)


def follow_in_thread(
    fleet: Fleet, api: FakeApi, metrics: IngestMetrics, key: ApiKeyStatus | None = None
) -> Callable[[], None]:
    stop = threading.Event()
    settings = camera_settings(camera_refresh_s=0.1)
    thread = threading.Thread(
        target=_follow,
        args=(fleet, api.client()),
        kwargs={"settings": settings, "stop": stop, "metrics": metrics, "key": key},
    )
    thread.start()

    def finish() -> None:
        stop.set()
        thread.join(10)

    return finish


def test_the_fleet_follows_the_api_and_an_outage_keeps_cameras_running(
    fleet: Fleet, metrics: IngestMetrics
) -> None:
    api = FakeApi([camera("a")])
    finish = follow_in_thread(fleet, api, metrics)
    try:
        wait_until(lambda: "a" in fleet.running, timeout_s=5, what="camera a to start")
        running = fleet.pipeline("a")
        api.down = True
        reads = api.reads
        wait_until(lambda: api.reads >= reads + 3, timeout_s=5, what="refreshes during the outage")
        assert fleet.pipeline("a") is running and running is not None and not running.done()
        failed = metrics.registry.get_sample_value(
            "vigil_ingest_camera_refreshes_total", {"result": "failed"}
        )
        assert failed is not None and failed >= 3
        api.down = False
        api.cameras = [camera("a", target_fps=3), camera("b")]
        wait_until(lambda: set(fleet.running) == {"a", "b"}, timeout_s=5, what="b to start")
        wait_until(lambda: fleet.running["a"].target_fps == 3, timeout_s=5, what="a restarted")
        api.cameras = []
        wait_until(lambda: not fleet.running, timeout_s=5, what="cameras to stop")
    finally:
        finish()


def test_a_key_refused_after_start_is_shown_until_the_api_takes_it_again(
    fleet: Fleet, producer: FakeProducer, metrics: IngestMetrics
) -> None:
    api, key = FakeApi([camera("a")]), ApiKeyStatus(metrics)
    finish = follow_in_thread(fleet, api, metrics, key)
    value = metrics.registry.get_sample_value
    try:
        wait_until(lambda: "a" in fleet.running, timeout_s=5, what="camera a to start")
        running = fleet.pipeline("a")
        api.status = 401  # an admin revoked the key
        api.cameras = [camera("a"), camera("b")]  # registered afterwards: cannot be seen
        refused = wait_until(
            lambda: (
                (s := last_status(producer, "a"))
                and (s.reason or "").startswith(
                    "api key refused: the API refused VIGIL_INGEST_API_KEY (401"
                )
                and s
            ),
            timeout_s=5,
            what="camera a's status to say the key is refused",
        )
        assert refused.state != "stopped" and fleet.pipeline("a") is running, "a was stopped"
        assert key.readiness() == [refused.reason]
        assert value("vigil_ingest_api_key_refused") == 1
        assert (value("vigil_ingest_camera_refreshes_total", {"result": "refused"}) or 0) >= 1
        assert set(fleet.running) == {"a"}

        api.status = 200  # a valid key again
        wait_until(lambda: "b" in fleet.running, timeout_s=5, what="camera b to start")
        cleared = wait_until(
            lambda: (s := last_status(producer, "a")) and "api key" not in (s.reason or "") and s,
            timeout_s=5,
            what="the warning to clear",
        )
        assert cleared.state == "online" and cleared.reason is None
        assert key.readiness() == [] and value("vigil_ingest_api_key_refused") == 0
    finally:
        finish()
