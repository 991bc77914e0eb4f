"""A one_class model with motion through the real inference worker scores every frame as the
model scores each camera's clip offline: its per-camera state (flow against the frame before, a
persistence window, a smoothing window) is carried across micro-batches, kept apart between
cameras, and rebuilt after a clean stop and after a crash.

Two cameras share partition 0 and micro-batches of 3 frames, so a camera's consecutive frames
fall into different batches, mixed with the other camera's. The worker scores each frame with
the model as production and with a copy of it as shadow, and so records both scores of every
frame on the shadow-scores topic: the per-frame output this test reads. The stream comes in
three parts, each scored by a new worker: the first stopped cleanly (on a thread, by the stop
flag SIGTERM sets), the second killed -9 (a process), each while an event is open, so the next
must rewind to rebuild the motion history its scores and that event depend on. Events are held
to an uninterrupted pass over the same frames: the same ids, starts, peaks and ends, opened on
the debounce the model was calibrated for, not the worker's quicker default.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

import pytest
from kafka.consumer.fetcher import ConsumerRecord
from minio import Minio

from tests.factories import T0
from tests.integration.conftest import StartService
from tests.integration.event_reference import EventLog, ExpectedEvent, expected_events
from tests.integration.one_class_scene import Scene, publish_scenes, store_scene_models
from tests.integration.test_inference_replay import assert_same_events
from tests.integration.test_inference_routing import assign, running_worker
from tests.integration.test_ingest_rtsp import TopicTail
from tests.support import read_topic
from vigil_shared.event_lifecycle import CALIBRATED_OPEN_K, CALIBRATED_OPEN_N, LifecycleSettings
from vigil_shared.schemas.shadow_scores import ShadowScore
from vigil_shared.settings import CommonSettings, KafkaSettings
from vigil_shared.topics import Topics
from vigil_shared.vision.inferencer import load_frame_model
from vigil_shared.vision.preprocess import decode
from vigil_shared.vision.scoring import FrameModel

pytestmark = pytest.mark.slow
PARTS = (24, 48, 75)
"""Where each worker's part of the stream ends (steps per camera): both restarts fall inside an
event, the first of camera a, the second of camera b."""
LIFECYCLE = LifecycleSettings(silence_s=60.0)  # no camera falls silent while a part is read
CALIBRATED = {
    CALIBRATED_OPEN_K: float(LIFECYCLE.open_k),
    CALIBRATED_OPEN_N: float(LIFECYCLE.open_n),
}
"""The models record the debounce their threshold is for, and the worker's own is another:
it opens their events on theirs."""
TOLERANCE = 1e-4
WORKER = {
    "VIGIL_INFERENCE_EVENT_SILENCE_S": str(LIFECYCLE.silence_s),
    "VIGIL_INFERENCE_EVENT_OPEN_K": "1",
    "VIGIL_INFERENCE_EVENT_OPEN_N": "1",
    "VIGIL_INFERENCE_BATCH_SIZE": "3",  # a camera's consecutive frames in different batches
    "VIGIL_INFERENCE_SCORING_THREADS": "2",  # each camera on its own scoring thread
    "VIGIL_INFERENCE_THREADS": "1",
    "VIGIL_INFERENCE_SNAPSHOTS": "false",
}
Scores = dict[tuple[str, int], float]


def test_one_class_motion_state_is_per_camera_across_batches_and_restarts(
    kafka_settings: KafkaSettings,
    topics: Topics,
    s3: Minio,
    settings: CommonSettings,
    start_service: StartService,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bucket = settings.s3.models_bucket
    production, shadow = store_scene_models(s3, bucket, count=2, metrics=CALIBRATED)
    run = uuid.uuid4().hex[:8]
    cameras = {f"a-{run}": Scene(0, first=12, period=1000), f"b-{run}": Scene(1, first=36)}
    for camera_id in cameras:
        assign(kafka_settings, topics, camera_id, production, shadow=shadow)
    for name, value in WORKER.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("VIGIL_INFERENCE_GROUP_ID", f"inference-{run}")
    monkeypatch.setenv("VIGIL_KAFKA_GROUP_INSTANCE_ID", f"inference-{run}")  # back at once
    log = EventLog(kafka_settings, topics.events)
    tail = TopicTail(kafka_settings, topics.shadow_scores)
    first = 0
    for end, crash in zip(PARTS, (False, True, False), strict=True):
        publish_scenes(kafka_settings, topics.frames, cameras, steps=end, start=T0, first=first)
        what = f"the scores of the frames before {end}"
        if crash:
            process = start_service("vigil_inference")
            tail.wait_for(scored(cameras, end, process.assert_running), timeout_s=180, what=what)
            process.kill()
        else:  # on a thread: the stop flag SIGTERM sets, without a process's start-up
            with running_worker(monkeypatch):
                tail.wait_for(scored(cameras, end), timeout_s=180, what=what)
        first = end
    tail.close()
    scores = [_score(r) for r in tail.records]
    assert {(s.production.id, s.shadow.id) for s in scores} == {(production, shadow)}

    model = load_frame_model(s3, bucket=bucket, model_id=production, device="cpu")
    wrong = unexplained(scores, clip_scores(model, cameras), context_frames=model.context_frames)
    assert not wrong, "scores differ from the model's offline ones:\n" + "\n".join(wrong[:20])
    assert all(replays(scores, camera_id) >= 2 for camera_id in cameras), "nothing was replayed"

    model = load_frame_model(s3, bucket=bucket, model_id=production, device="cpu")
    frames = read_topic(kafka_settings, topics.frames, count=len(cameras) * PARTS[-1])
    expected = expected_events(frames, model=model, model_id=production, lifecycle=LIFECYCLE)
    eager = replace(LIFECYCLE, open_k=1, open_n=1)
    assert expected_events(frames, model=model, model_id=production, lifecycle=eager) != expected
    assert_restarts_inside_events(expected)
    log.poll(timeout_ms=2000)
    log.close()
    assert_same_events(log, expected)


def scored(
    cameras: dict[str, Scene], end: int, alive: Callable[[], None] = lambda: None
) -> Callable[[list[ConsumerRecord]], bool]:
    """A probe: whether every camera's frames before ``end`` have their scores recorded
    (``alive`` fails if the worker died)."""

    def probe(records: list[ConsumerRecord]) -> bool:
        alive()
        seen = {(s.camera_id, s.frame_seq) for s in map(_score, records)}
        return all((camera_id, step) in seen for camera_id in cameras for step in range(end))

    return probe


def _score(record: ConsumerRecord) -> ShadowScore:
    return ShadowScore.model_validate_json(record.value)


def clip_scores(model: FrameModel, cameras: dict[str, Scene]) -> Scores:
    """Each camera's whole clip scored in one call, one camera after the other, by a fresh
    ``model``: the scores of a camera that shares nothing with the other."""
    out: Scores = {}
    for camera_id, scene in cameras.items():
        images = [decode(scene.jpeg(step)) for step in range(PARTS[-1])]
        for step, score in enumerate(model.score_frames([camera_id] * len(images), images)):
            assert score is not None, "a one_class model scores every frame"
            out[camera_id, step] = score.score
    return out


def unexplained(scores: list[ShadowScore], offline: Scores, *, context_frames: int) -> list[str]:
    """The recorded scores that are not the offline ones, other than those a replay made while
    it rebuilt a camera's motion from nothing: its first ``context_frames`` frames, which the
    camera's scores already recorded (a consumer keeps a frame's first record)."""
    wrong = []
    for camera_id in {camera_id for camera_id, _ in offline}:
        recorded: set[int] = set()
        last, since_replay = -1, 0
        for score in (s for s in scores if s.camera_id == camera_id):
            since_replay = 0 if score.frame_offset <= last else since_replay + 1
            last = score.frame_offset
            want = offline[camera_id, score.frame_seq]
            rebuilding = since_replay < context_frames and score.frame_seq in recorded
            for name, got in (
                ("production", score.production_score),
                ("shadow", score.shadow_score),
            ):
                if abs(got - want) > TOLERANCE * max(1.0, abs(want)) and not rebuilding:
                    wrong.append(f"{camera_id} frame {score.frame_seq} {name}: {got} != {want}")
            recorded.add(score.frame_seq)
    return wrong


def replays(scores: list[ShadowScore], camera_id: str) -> int:
    """How often the camera's scores went back to frames already scored (a worker's rewind)."""
    offsets = [s.frame_offset for s in scores if s.camera_id == camera_id]
    return sum(after <= before for before, after in itertools.pairwise(offsets))


def assert_restarts_inside_events(expected: dict[uuid.UUID, ExpectedEvent]) -> None:
    """Each restart came while an event was open, so its replay had a lifecycle to rebuild."""
    for end in PARTS[:-1]:
        at = T0 + timedelta(seconds=end / 10)
        spans = [(e.started_at, e.ended_at) for e in expected.values()]
        assert any(start < at and (stop is None or stop > at) for start, stop in spans), (
            f"no event was open at step {end}: the scene no longer makes the restarts matter"
        )
