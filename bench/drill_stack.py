"""The fault drill's own stack: a private Kafka broker it may kill, its own database and buckets,
a one_class model of a generated scene, two cameras streaming in real time, and the inference
worker and event sink as processes (``python -m ...``, as deployed).

Only PostgreSQL and S3 are shared with the rest of the machine (a database and buckets of the
drill's own, dropped or left empty at the end); the broker is the drill's, so killing it
disturbs no one.
"""

from __future__ import annotations

import threading
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from kafka import TopicPartition
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.engine import make_url

from tests.integration.one_class_scene import HEIGHT, WIDTH, Scene, store_scene_model
from tests.integration.private_kafka import PrivateKafka
from tests.integration.rtsp import free_tcp_port
from tests.support import ServiceProcess, service_env
from vigil_shared.db.engine import make_engine
from vigil_shared.db.migrate import upgrade
from vigil_shared.event_lifecycle import LifecycleSettings
from vigil_shared.kafka import ensure_topics, make_consumer, make_producer
from vigil_shared.schemas.frames import FrameHeaders
from vigil_shared.settings import DatabaseSettings, KafkaSettings, S3Settings
from vigil_shared.storage import ensure_buckets, make_s3_client

LIFECYCLE = LifecycleSettings(silence_s=60.0)
"""Longer than a broker outage: a camera whose frames stop arriving for ``silence_s`` has its
event ended by the clock, which no replay of the frames can reproduce (docs/operations.md)."""
SINK_GROUP = "drill-event-sink"
INFERENCE_GROUP = "drill-inference"


class DrillStack:
    def __init__(self, root: Path, *, fps: float) -> None:
        self.root = root
        self.fps = fps
        self.run = uuid.uuid4().hex[:8]
        self.broker = PrivateKafka(root / "kafka")
        self.namespace = f"drill{self.run}."
        self.database = f"vigil_drill_{self.run}"
        self.metrics_port = free_tcp_port()
        base = DatabaseSettings().url.get_secret_value()
        self.admin_url = make_url(base).set(drivername="postgresql", database="postgres")
        self.database_url = make_url(base).set(database=self.database)
        self.s3 = S3Settings(
            models_bucket="vigil-drill-models", snapshots_bucket="vigil-drill-snapshots"
        )
        self.cameras = {
            f"cam-a-{self.run}": Scene(0, first=20),
            f"cam-b-{self.run}": Scene(1, first=35),
        }
        self.model_id = ""

    @property
    def kafka(self) -> KafkaSettings:
        return KafkaSettings(
            bootstrap_servers=self.broker.bootstrap, topic_namespace=self.namespace
        )

    def start(self) -> None:
        self.broker.start()
        kafka = self.kafka
        ensure_topics(kafka, kafka.topics.all(), compacted=kafka.topics.compacted())
        with psycopg.connect(
            self.admin_url.render_as_string(hide_password=False), autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{self.database}"')
        upgrade(DatabaseSettings(url=self.database_url.render_as_string(hide_password=False)))
        s3 = make_s3_client(self.s3)
        ensure_buckets(s3, self.s3)
        self.model_id = store_scene_model(s3, self.s3.models_bucket)

    def close(self) -> None:
        self.broker.kill()
        with psycopg.connect(
            self.admin_url.render_as_string(hide_password=False), autocommit=True
        ) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')

    def env(self, **extra: str) -> dict[str, str]:
        return service_env(
            VIGIL_LOG_LEVEL="INFO",
            VIGIL_KAFKA_BOOTSTRAP_SERVERS=self.broker.bootstrap,
            VIGIL_KAFKA_TOPIC_NAMESPACE=self.namespace,
            VIGIL_DATABASE_URL=self.database_url.render_as_string(hide_password=False),
            VIGIL_S3_MODELS_BUCKET=self.s3.models_bucket,
            VIGIL_S3_SNAPSHOTS_BUCKET=self.s3.snapshots_bucket,
            **extra,
        )

    def start_inference(self, attempt: int) -> ServiceProcess:
        env = self.env(
            VIGIL_KAFKA_GROUP_INSTANCE_ID=f"drill-inference-{self.run}",
            VIGIL_INFERENCE_GROUP_ID=INFERENCE_GROUP,
            VIGIL_INFERENCE_MODEL_ID=self.model_id,
            VIGIL_INFERENCE_METRICS_PORT=str(self.metrics_port),
            VIGIL_INFERENCE_EVENT_SILENCE_S=str(LIFECYCLE.silence_s),
            VIGIL_INFERENCE_BATCH_SIZE="8",
            VIGIL_INFERENCE_SCORING_THREADS="1",
            VIGIL_INFERENCE_THREADS="1",
            VIGIL_INFERENCE_WARMUP_IMAGE_SIZE="64",
        )
        log = self.root / f"inference-{attempt}.log"
        return ServiceProcess("vigil_inference", env=env, log_path=log)

    def start_sink(self, attempt: int) -> ServiceProcess:
        env = self.env(
            VIGIL_KAFKA_GROUP_INSTANCE_ID=f"drill-sink-{self.run}",
            VIGIL_API_SINK_GROUP_ID=SINK_GROUP,
        )
        log = self.root / f"sink-{attempt}.log"
        return ServiceProcess("vigil_api.consumers.sink_main", env=env, log_path=log)

    def inference_metric(self, family: str) -> float | None:
        """A metric of the running worker (summed over labels); None while it does not serve."""
        try:
            url = f"http://127.0.0.1:{self.metrics_port}/metrics"
            with urllib.request.urlopen(url, timeout=2) as response:
                body = response.read().decode()
        except OSError:
            return None
        return sum(
            sample.value
            for metric in text_string_to_metric_families(body)
            if metric.name == family
            for sample in metric.samples
            if sample.name in (family, f"{family}_total")
        )

    def sink_offsets(self) -> tuple[int, int]:
        """(committed by the sink, sent) event messages over all partitions; (-1, -1) while
        Kafka does not answer."""
        kafka = self.kafka
        try:
            consumer = make_consumer(kafka, group_id=SINK_GROUP, request_timeout_ms=5_000)
        except Exception:  # the broker is down: no answer is the answer
            return -1, -1
        try:
            ids = consumer.partitions_for_topic(kafka.topics.events) or set()
            partitions = [TopicPartition(kafka.topics.events, p) for p in ids]
            ends = consumer.end_offsets(partitions)
            committed = sum(consumer.committed(tp) or 0 for tp in partitions)
            return int(committed), int(sum(ends.values()))
        except Exception:
            return -1, -1
        finally:
            consumer.close()

    def coordinator_ready(self) -> bool:
        """The broker's group coordinator answers an offset fetch (it has loaded the groups)."""
        topic = self.kafka.topics.frames
        try:
            consumer = make_consumer(self.kafka, group_id=INFERENCE_GROUP, request_timeout_ms=5_000)
        except Exception:
            return False
        try:
            consumer.committed(TopicPartition(topic, 0), timeout_ms=2_000)
            return True
        except Exception:
            return False
        finally:
            consumer.close()

    def sink_lag(self) -> int | None:
        """Event messages the sink has not committed yet; None while Kafka does not answer."""
        committed, sent = self.sink_offsets()
        return None if sent < 0 else sent - committed

    def rows(self) -> list[dict[str, object]]:
        engine = make_engine(
            DatabaseSettings(url=self.database_url.render_as_string(hide_password=False))
        )
        try:
            with engine.connect() as conn:
                result = conn.execute(
                    text(
                        "SELECT event_id, camera_id, status, started_at, ended_at, frame_seq "
                        "FROM events"
                    )
                )
                return [dict(row._mapping) for row in result]
        finally:
            engine.dispose()


class CameraFeed(threading.Thread):
    """The cameras' frames in real time at ``fps``, captured now, on one partition (so its
    commit is held back for both); it stops at a quiet step, every event ended by quiet frames."""

    def __init__(self, stack: DrillStack) -> None:
        super().__init__(name="drill-feed", daemon=True)
        self._stack = stack
        self._stopping = threading.Event()
        self.sent = 0
        self.failed = 0

    def run(self) -> None:
        producer = make_producer(self._stack.kafka)
        topic = self._stack.kafka.topics.frames
        step, due = 0, time.monotonic()
        scenes = self._stack.cameras
        while not (self._stopping.is_set() and all(self._quiet(s, step) for s in scenes.values())):
            for camera_id, scene in scenes.items():
                headers = FrameHeaders(
                    camera_id=camera_id,
                    seq=step,
                    captured_at=datetime.now(UTC),
                    width=WIDTH,
                    height=HEIGHT,
                ).to_kafka_headers()
                future = producer.send(
                    topic,
                    key=camera_id.encode(),
                    value=scene.jpeg(step),
                    headers=headers,
                    partition=0,
                )
                future.add_errback(self._lost)
                self.sent += 1
            step += 1
            due += 1 / self._stack.fps
            time.sleep(max(0.0, due - time.monotonic()))
        producer.flush()
        producer.close()

    def stop(self) -> None:
        self._stopping.set()

    def _lost(self, _exc: BaseException) -> None:
        self.failed += 1

    @staticmethod
    def _quiet(scene: Scene, step: int) -> bool:
        """Far enough after an anomaly that its event has ended on quiet frames."""
        return not any(scene.anomalous(s) for s in range(step - 12, step + 1))
