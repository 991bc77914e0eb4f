"""Scale-out on a Kafka cluster: two inference processes in one consumer group share the frames
of eight cameras on a 3-broker cluster (replication 3, ``min.insync.replicas`` 2). Under a
running stream one broker and then one inference process are killed (SIGKILL):

- no acknowledged frame or event is lost: everything the brokers acknowledged is still there,
  and every start and end message that the frames on the topic call for is published;
- a message published twice (a replay) has the same id and the same content;
- the dead process's partitions go to the survivor, which ends up with all of them;
- the group's lag comes back to zero: a member taking over would score nothing again.

The cluster is the test's own (``PrivateKafka``: its own ports and data directories under the
test's tmp dir), so the shared broker is never disturbed.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError
from kafka.partitioner.default import murmur2
from minio import Minio

from tests.factories import registry_models, scene_jpeg, send_frame
from tests.integration.conftest import StartService
from tests.integration.private_kafka import PrivateKafka
from tests.support import ServiceProcess, read_topic, wait_until
from vigil_inference.replay import decode
from vigil_shared.event_lifecycle import EventTracker, LifecycleSettings, Observation
from vigil_shared.kafka import ensure_topics, make_producer
from vigil_shared.schemas.events import EventMessage, ModelRef
from vigil_shared.schemas.frames import FrameHeaders
from vigil_shared.settings import CommonSettings, KafkaSettings

pytestmark = pytest.mark.slow

PARTITIONS = 4
CAMERAS_PER_PARTITION = 2
# Every frame is hot (threshold 0) and an event lasts 2 s of capture time (10 fps): 21 frames
# from its first to its end, so after 21 x 8 frames no event is left open and the lag can drain.
LIFECYCLE = LifecycleSettings(max_duration_s=2.0, update_interval_s=0.5, silence_s=60)
ROUNDS = 21 * 8
ROUNDS_PER_S = 4.0
GROUP = "inference-scale"
LAST_SEEN: dict[str, Any] = {}  # the group as last described, for a failure's message


def cameras_over_partitions() -> list[str]:
    """Camera ids spread evenly over the partitions (Kafka's key hash, as producers use it)."""
    by_partition: dict[int, list[str]] = defaultdict(list)
    while min((len(by_partition[p]) for p in range(PARTITIONS)), default=0) < CAMERAS_PER_PARTITION:
        camera = f"cam-{uuid.uuid4().hex[:8]}"
        partition = (murmur2(camera.encode()) & 0x7FFFFFFF) % PARTITIONS
        if len(by_partition[partition]) < CAMERAS_PER_PARTITION:
            by_partition[partition].append(camera)
    return [camera for cameras in by_partition.values() for camera in cameras]


class Stream(threading.Thread):
    """Sends one frame per camera per round at ``ROUNDS_PER_S``, as ingest would, and records
    which frames the brokers acknowledged."""

    def __init__(self, kafka: KafkaSettings, cameras: list[str]) -> None:
        super().__init__(daemon=True)
        self.kafka, self.cameras = kafka, cameras
        self.acked: set[tuple[str, int]] = set()
        self.failed = 0
        self.rounds = 0
        self._lock = threading.Lock()

    def run(self) -> None:
        producer = make_producer(self.kafka)
        started = time.monotonic()
        for seq in range(ROUNDS):
            for camera in self.cameras:
                # Steps past the model's bank (scene frames 0-11): every frame scores apart
                # from its neighbours, so a replay (other batches, other float rounding) picks
                # the same peak; frames in the bank would all score about 0, a tie.
                payload = scene_jpeg(12 + seq % 28)
                future = send_frame(
                    producer, self.kafka.topics.frames, camera_id=camera, seq=seq, payload=payload
                )
                future.add_callback(self._acked, (camera, seq)).add_errback(self._failed)
            self.rounds = seq + 1
            time.sleep(max(0.0, started + (seq + 1) / ROUNDS_PER_S - time.monotonic()))
        producer.flush()
        producer.close()

    def _acked(self, frame: tuple[str, int], _metadata: Any) -> None:
        with self._lock:
            self.acked.add(frame)

    def _failed(self, _error: Exception) -> None:
        with self._lock:
            self.failed += 1


def frames_on_topic(kafka: KafkaSettings, count: int) -> dict[str, list[ConsumerRecord]]:
    """Each camera's frames as the topic holds them, in offset order (what inference reads)."""
    records = read_topic(kafka, kafka.topics.frames, count=count, timeout_s=60)
    by_camera: dict[str, list[ConsumerRecord]] = defaultdict(list)
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        by_camera[record.key.decode()].append(record)
    return by_camera


def expected_starts_and_ends(
    frames: dict[str, list[ConsumerRecord]], model_id: str
) -> set[tuple[str, str, int]]:
    """The start and end messages these frames call for: every frame hot, so they depend on
    the frames' sequence and capture times only; an event open at the end ends by silence."""
    tracker = EventTracker(LIFECYCLE)
    out: set[tuple[str, str, int]] = set()
    for camera, records in frames.items():
        transitions = []
        for record in records:
            headers = FrameHeaders.from_kafka_headers(record.headers)
            observation = Observation(
                camera_id=camera,
                seq=headers.seq,
                captured_at=headers.captured_at,
                offset=record.offset,
                score=1.0,
                threshold=0.0,
                model=ModelRef(id=model_id, kind="registry"),
                jpeg=b"",
            )
            transitions += tracker.observe(observation, received_at=0)
        transitions += tracker.end(camera)
        out |= {(camera, t.phase.value, t.frame.seq) for t in transitions}
    return out


def event_messages(kafka: KafkaSettings) -> list[EventMessage]:
    records = read_topic(kafka, kafka.topics.events, count=100_000, timeout_s=5)
    return [EventMessage.model_validate_json(r.value) for r in records]


@contextmanager
def admin_of(cluster: PrivateKafka) -> Iterator[KafkaAdminClient]:
    """An admin client of the brokers alive now: one made before a crash may go on asking the
    dead broker for the group's coordinator."""
    client = KafkaAdminClient(bootstrap_servers=cluster.live_bootstrap.split(","))
    try:
        yield client
    finally:
        client.close()


def assignments(cluster: PrivateKafka, group: str, topic: str) -> list[set[int]]:
    """The frames partitions of each live member of ``group``; none while it rebalances, or
    while its coordinator moves."""
    try:
        with admin_of(cluster) as admin:
            described = admin.describe_groups([group])[group]
    except KafkaError as exc:
        LAST_SEEN[group] = repr(exc)
        return []
    LAST_SEEN[group] = described
    if described.get("group_state") != "Stable":
        return []
    members = []
    for member in described["members"]:
        assignment = member["member_assignment"]["assigned_partitions"]
        members.append(
            {p for item in assignment if item["topic"] == topic for p in item["partitions"]}
        )
    return members


def unhandled(
    cluster: PrivateKafka, group: str, frames: dict[str, list[ConsumerRecord]]
) -> list[tuple[str, int]]:
    """The frames a member of ``group`` taking over now would score: past each partition's
    commit, unless the commit's replay plan says the frame's camera is done with it (a commit
    may rest on a camera's last frame, with a plan that skips it)."""
    with admin_of(cluster) as admin:
        committed = admin.list_group_offsets({group: None})[group]
    left = []
    for camera, records in frames.items():
        for record in records:
            commit = committed.get(TopicPartition(record.topic, record.partition))
            if commit is not None and record.offset < commit.offset:
                continue
            plan = decode(commit.offset, commit.metadata).get(camera) if commit else None
            if plan is None or record.offset >= plan.score_from:
                left.append((camera, record.offset))
    LAST_SEEN["unhandled"] = left[:8]
    return left


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[PrivateKafka]:
    kafka = PrivateKafka(tmp_path / "kafka", brokers=3)
    try:
        kafka.start()
        yield kafka
    finally:
        kafka.kill()


@pytest.fixture
def on_cluster(cluster: PrivateKafka, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """This test's namespace on the cluster, its topics created from the settings; returns the
    variables the services started get (the test's own settings read the same)."""
    env = {**cluster.client_env(), "VIGIL_KAFKA_TOPIC_NAMESPACE": f"s{uuid.uuid4().hex[:8]}."}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    kafka = KafkaSettings()
    assert (kafka.replication_factor, kafka.min_insync) == (3, 2)
    ensure_topics(kafka, kafka.topics.all(), compacted=kafka.topics.compacted())
    return env


def every_partition_known(described: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """``described`` once every topic in it has its partitions (and a leader for each)."""
    known = all(
        topic["partitions"] and all(p["leader_id"] >= 0 for p in topic["partitions"])
        for topic in described
    )
    return described if known else None


def test_topics_are_replicated_with_min_insync_from_the_settings(
    cluster: PrivateKafka, on_cluster: dict[str, str]
) -> None:
    topics = KafkaSettings().topics.all()
    with admin_of(cluster) as admin:
        # A broker learns of a new topic from the controller a moment after its creation: the
        # one asked may describe it with no partitions yet.
        described = wait_until(
            lambda: every_partition_known(admin.describe_topics(list(topics))),
            timeout_s=30,
            what="every broker's metadata to hold the new topics' partitions",
        )
        resources = [ConfigResource(ConfigResourceType.TOPIC, topic) for topic in topics]
        configs = admin.describe_configs(resources)["topic"]
    for topic in described:
        partitions = topic["partitions"]
        assert len(partitions) == PARTITIONS, topic["name"]
        assert all(len(p["replica_nodes"]) == 3 for p in partitions), topic["name"]
        assert len({p["leader_id"] for p in partitions}) > 1, "one broker leads them all"
        assert configs[topic["name"]]["min.insync.replicas"]["value"] == "2", topic["name"]


def test_two_instances_survive_a_broker_and_an_instance_killed_under_a_stream(
    cluster: PrivateKafka,
    on_cluster: dict[str, str],
    s3: Minio,
    settings: CommonSettings,
    start_service: StartService,
) -> None:
    kafka = KafkaSettings()
    [model_id] = registry_models(s3, settings.s3.models_bucket)
    cameras = cameras_over_partitions()
    env = {
        **on_cluster,
        "VIGIL_INFERENCE_GROUP_ID": GROUP,
        "VIGIL_INFERENCE_MODEL_ID": model_id,
        "VIGIL_INFERENCE_THRESHOLD": "0",  # every frame is hot: the lifecycle is known ahead
        "VIGIL_INFERENCE_EVENT_MAX_DURATION_S": str(LIFECYCLE.max_duration_s),
        "VIGIL_INFERENCE_EVENT_UPDATE_INTERVAL_S": str(LIFECYCLE.update_interval_s),
        "VIGIL_INFERENCE_EVENT_SILENCE_S": str(LIFECYCLE.silence_s),
        "VIGIL_INFERENCE_WARMUP_IMAGE_SIZE": "64",
        "VIGIL_INFERENCE_SNAPSHOTS": "false",
        "VIGIL_INFERENCE_THREADS": "1",
        "VIGIL_INFERENCE_SCORING_THREADS": "1",
    }
    instances = [start_service("vigil_inference", **env) for _ in range(2)]
    group = kafka.consumer_group(GROUP)

    def shared() -> bool:
        for instance in instances:
            instance.assert_running()
        members = assignments(cluster, group, kafka.topics.frames)
        return len(members) == 2 and all(members)

    wait_until(shared, timeout_s=240, what="two inference instances sharing the partitions")
    stream = Stream(kafka, cameras)
    stream.start()
    wait_until(lambda: stream.rounds >= ROUNDS // 4, timeout_s=120, what="a quarter sent")
    before = {m.message_id for m in event_messages(kafka)}
    assert before, "no event before the broker was killed: the test proves nothing"
    leader = partition_leader(cluster, kafka.topics.frames)
    next(n for n in cluster.nodes if n.node_id == leader).kill()

    wait_until(lambda: stream.rounds >= ROUNDS // 2, timeout_s=120, what="half sent")
    dead, survivor = instances
    dead.kill()
    stream.join(timeout=ROUNDS / ROUNDS_PER_S + 120)
    assert not stream.is_alive(), "the stream did not finish"
    check_outcome(kafka, cluster, group, survivor, stream, model_id, before)
    assert survivor.stop() == 0


def partition_leader(cluster: PrivateKafka, topic: str) -> int:
    with admin_of(cluster) as admin:
        [described] = admin.describe_topics([topic])
    leader: int = min(described["partitions"], key=lambda p: p["partition_index"])["leader_id"]
    return leader


def check_outcome(
    kafka: KafkaSettings,
    cluster: PrivateKafka,
    group: str,
    survivor: ServiceProcess,
    stream: Stream,
    model_id: str,
    before: set[uuid.UUID],
) -> None:
    sent = ROUNDS * len(stream.cameras)
    assert len(stream.acked) >= sent * 0.9, f"only {len(stream.acked)} of {sent} frames acked"
    frames = frames_on_topic(kafka, count=sent)
    on_topic = {
        (camera, FrameHeaders.from_kafka_headers(r.headers).seq)
        for camera, records in frames.items()
        for r in records
    }
    assert stream.acked <= on_topic, "an acknowledged frame is missing from the topic"
    expected = expected_starts_and_ends(frames, model_id)

    def rebalanced() -> bool:
        survivor.assert_running()
        members = assignments(cluster, group, kafka.topics.frames)
        return members == [set(range(PARTITIONS))]

    try:
        wait_until(rebalanced, timeout_s=120, what="every partition assigned to the survivor")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the group: {LAST_SEEN.get(group)}") from exc

    missing: list[tuple[str, str, int]] = []
    got: list[EventMessage] = []

    def complete() -> list[EventMessage] | None:
        survivor.assert_running()
        got[:] = event_messages(kafka)
        seen = {(m.camera_id, m.phase.value, m.frame_seq) for m in got}
        missing[:] = sorted(expected - seen)
        return got if not missing else None

    try:
        final = wait_until(complete, timeout_s=240, what="every start and end message")
    except AssertionError as exc:
        camera = missing[0][0]
        instead = sorted((m.frame_seq, m.phase.value) for m in got if m.camera_id == camera)
        raise AssertionError(
            f"{exc}; {len(missing)} missing, first: {missing[:8]}; {camera} has {instead}"
        ) from exc
    try:
        wait_until(
            lambda: not unhandled(cluster, group, frames), timeout_s=120, what="the lag at zero"
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}; left: {LAST_SEEN.get('unhandled')}") from exc

    assert before <= {m.message_id for m in final}, "an acknowledged event message was lost"
    lifecycle = {
        (m.camera_id, m.phase.value, m.frame_seq) for m in final if m.phase.value != "update"
    }
    assert lifecycle == expected, "no message may be missing or invented"
    by_key: dict[tuple[str, str, int], set[uuid.UUID]] = defaultdict(set)
    by_id: dict[uuid.UUID, list[EventMessage]] = defaultdict(list)
    for message in final:
        by_key[(message.camera_id, message.phase.value, message.frame_seq)].add(message.message_id)
        by_id[message.message_id].append(message)
    assert all(len(ids) == 1 for ids in by_key.values()), "a replayed message changed its id"
    for copies in by_id.values():
        dumps = [c.model_dump(exclude={"detected_at", "score", "peak_score"}) for c in copies]
        differ = {k: [d[k] for d in dumps] for k in dumps[0] if len({str(d[k]) for d in dumps}) > 1}
        assert not differ, f"copies of {copies[0].message_id} differ: {differ}"
