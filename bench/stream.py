"""Streaming benchmark: frames/s and frame-to-event latency through real Kafka.

Runs against the servers of scripts/stack.sh (load .stack/env first), in a fresh topic
namespace per measurement, and compares Vigil's worker with a naive baseline measured in the
same run. Both are the real ``python -m vigil_inference`` in its own process, as deployed; the
naive one scores one frame at a time (decode on the CPU, one flush and one commit per frame,
one scoring thread, torch's default threads), Vigil micro-batches and scores a batch's cameras
on several threads.

    python -m bench.stream --frames 400 --seconds 30 --json bench/results/stream-cpu.json
    python -m bench.stream --model one_class --json bench/results/stream-cpu-one-class.json

Throughput: a backlog of Ped2 frames (360x240 JPEG, ``--cameras`` cameras, each its own run of
consecutive test frames, as a camera sends them) is scored as fast as the worker can, counted
by the worker's own Prometheus metrics from its first scored batch (model load and
group join excluded) to its last frame.
Latency: after the worker has scored its warm-up frames, the cameras publish 5 fps each in
real time; every scored frame causes event messages (threshold 0, events of one frame: most
frames a start or an end), and p50/p99 are over ``detected_at - captured_at`` of every message
of a real-time frame (the warm-up frames', captured before the worker started, are left out).
Snapshots are off: with every frame an event they would measure S3 uploads, which a real
stream makes only at an event's start and new peaks. Scoring is the warm-up model
(EfficientNet-Lite0 embedding + kNN) at ``--image-size``, or with ``--model one_class`` the
detector (patch kNN + motion) fitted on Ped2's training clips and loaded from the registry bucket
(``bench/stream_models.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import torch
from prometheus_client.parser import text_string_to_metric_families

from bench.report import emit
from bench.stream_models import MODELS, StreamModel, one_class_on_ped2
from vigil_shared.kafka import ensure_topics, make_consumer, make_producer
from vigil_shared.schemas.events import EventMessage
from vigil_shared.schemas.frames import FrameHeaders
from vigil_shared.settings import KafkaSettings, default_datasets_dir

WARMUP = 2  # frames per camera that form its warm-up bank (no events)
BACKLOG_FPS = 10.0  # the rate a backlog's frames were captured at, per camera (Ped2's)


@dataclass(frozen=True)
class Mode:
    name: str
    batch_size: int
    scoring_threads: int
    torch_threads: int | None  # None: torch's default (all cores)


@dataclass
class Result:
    mode: str
    batch_size: int
    scoring_threads: int
    torch_threads: int | None
    frames: int
    seconds: float
    frames_per_s: float
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None

    @classmethod
    def of(
        cls, mode: Mode, frames: int, seconds: float, latencies_ms: list[float] | None = None
    ) -> Result:
        values = sorted(latencies_ms or [])
        return cls(
            mode.name,
            mode.batch_size,
            mode.scoring_threads,
            mode.torch_threads,
            frames,
            seconds,
            frames / seconds,
            latency_p50_ms=statistics.median(values) if values else None,
            latency_p99_ms=values[int(len(values) * 0.99)] if values else None,
        )


def ped2_frames(limit: int) -> list[bytes]:
    root = default_datasets_dir() / "ucsd-ped2" / "test_frames"
    paths = sorted(root.glob("Test*/*.jpg"))[:limit]
    if not paths:
        raise SystemExit(f"UCSD Ped2 frames not found under {root}")
    return [p.read_bytes() for p in paths]


def fresh_namespace() -> KafkaSettings:
    os.environ["VIGIL_KAFKA_TOPIC_NAMESPACE"] = f"bench{uuid.uuid4().hex[:8]}."
    kafka = KafkaSettings()
    ensure_topics(kafka, kafka.topics.all(), compacted=kafka.topics.compacted())
    return kafka


@dataclass(frozen=True)
class Setup:
    """What every measurement of a run shares: the frames, the cameras, the model."""

    frames: list[bytes]
    cameras: int
    model: StreamModel
    size: tuple[int, int] = (360, 240)  # the frames' width and height, for their headers

    def frame(self, camera: int, seq: int) -> bytes:
        """Camera ``camera``'s ``seq``-th frame: each camera its own run of consecutive frames,
        so that a model's motion stream sees what a camera sends."""
        return self.frames[(camera * len(self.frames) // self.cameras + seq) % len(self.frames)]


def publish(
    kafka: KafkaSettings, setup: Setup, *, count: int, fps: float | None = None, first_seq: int = 0
) -> None:
    """``count`` frames round-robin over the cameras; paced at ``fps`` per camera when given,
    each stamped with the time it is sent. A backlog (no ``fps``) is sent at once, its frames
    stamped ``BACKLOG_FPS`` apart per camera, as a camera captured them: a motion model measures
    a camera's rate from capture times, and frames microseconds apart would be a camera far
    faster than any."""
    producer = make_producer(kafka, linger_ms=0)
    start = time.monotonic()
    captured = datetime.now(UTC)
    for sent in range(count):
        if fps is not None:
            time.sleep(max(0.0, start + (sent // setup.cameras) / fps - time.monotonic()))
        camera = sent % setup.cameras
        seq = first_seq + sent // setup.cameras
        width, height = setup.size
        headers = FrameHeaders(
            camera_id=f"cam{camera}",
            seq=seq,
            captured_at=datetime.now(UTC)
            if fps is not None
            else captured + timedelta(seconds=seq / BACKLOG_FPS),
            width=width,
            height=height,
        )
        producer.send(
            kafka.topics.frames,
            key=f"cam{camera}".encode(),
            value=setup.frame(camera, seq),
            headers=headers.to_kafka_headers(),
        )
    producer.flush()
    producer.close()


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    metrics_port: int

    def frames_scored(self) -> int:
        """The worker's own count (Prometheus), warm-up frames included; 0 before it serves."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics") as r:
                text = r.read().decode()
        except OSError:
            return 0
        return int(
            sum(
                sample.value
                for family in text_string_to_metric_families(text)
                if family.name == "vigil_inference_frames"
                for sample in family.samples
                if sample.name == "vigil_inference_frames_total"
            )
        )

    def wait_scored(self, count: int, timeout_s: float = 300) -> tuple[float, int]:
        """Until the worker has scored ``count`` frames; returns the time and the count."""
        deadline = time.monotonic() + timeout_s
        while (scored := self.frames_scored()) < count:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"inference worker stalled at {scored}/{count} frames")
            time.sleep(0.05)  # each scrape costs the worker CPU: not too often
        return time.perf_counter(), scored

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_worker(
    mode: Mode,
    *,
    group_id: str | None = None,
    model: StreamModel | None = None,
    environment: dict[str, str] | None = None,
) -> Worker:
    """A worker process in a consumer group of its own, or in ``group_id`` (shared by several),
    scoring with ``model`` (the warm-up model when None); ``environment`` overrides its
    settings last."""
    port = free_port()
    env = {
        **os.environ,
        **(model.environment() if model else {}),
        "VIGIL_LOG_LEVEL": "WARNING",
        "VIGIL_INFERENCE_GROUP_ID": group_id or f"bench-{uuid.uuid4().hex[:6]}",
        "VIGIL_INFERENCE_METRICS_PORT": str(port),
        "VIGIL_INFERENCE_BATCH_SIZE": str(mode.batch_size),
        "VIGIL_INFERENCE_SCORING_THREADS": str(mode.scoring_threads),
        "VIGIL_INFERENCE_MAX_WAIT_MS": "20",
        "VIGIL_INFERENCE_WARMUP_FRAMES": str(WARMUP),
        "VIGIL_INFERENCE_THRESHOLD": "0",
        "VIGIL_INFERENCE_EVENT_OPEN_K": "1",
        "VIGIL_INFERENCE_EVENT_OPEN_N": "1",
        "VIGIL_INFERENCE_EVENT_MAX_DURATION_S": "0.001",
        "VIGIL_INFERENCE_SNAPSHOTS": "false",
    }
    env.pop("VIGIL_INFERENCE_THREADS", None)
    if mode.torch_threads is not None:
        env["VIGIL_INFERENCE_THREADS"] = str(mode.torch_threads)
    env.update(environment or {})
    return Worker(subprocess.Popen([sys.executable, "-m", "vigil_inference"], env=env), port)


def latencies_ms(kafka: KafkaSettings) -> list[float]:
    """``detected_at - captured_at`` of every event message of a real-time frame, read until the
    topic is quiet. The warm-up frames' messages are left out: those frames were captured before
    the worker started, so their latency is the model's load time (a model that scores its
    first frames, as one_class does, made them p99)."""
    consumer = make_consumer(kafka, kafka.topics.events, group_id=f"bench-read-{uuid.uuid4().hex}")
    out: list[float] = []
    idle = 0
    try:
        while idle < 4:
            batch = consumer.poll(timeout_ms=500)
            idle = 0 if batch else idle + 1
            for records in batch.values():
                for record in records:
                    event = EventMessage.read_json(record.value)
                    if event.frame_seq < WARMUP:
                        continue
                    out.append((event.detected_at - event.captured_at).total_seconds() * 1000)
    finally:
        consumer.close()
    return out


def throughput(mode: Mode, setup: Setup) -> Result:
    kafka = fresh_namespace()
    publish(kafka, setup, count=len(setup.frames))
    worker = start_worker(mode, model=setup.model)
    try:
        # The clock starts at the first scored batch: model load and group join are excluded.
        start, first = worker.wait_scored(1)
        end, scored = worker.wait_scored(len(setup.frames))
    finally:
        worker.stop()
    return Result.of(mode, scored - first, end - start)


def latency(mode: Mode, setup: Setup, seconds: float) -> Result:
    kafka = fresh_namespace()
    worker = start_worker(mode, model=setup.model)
    warmup = setup.cameras * WARMUP
    try:
        # Warm-up frames first, scored before the cameras start: the model is loaded and the
        # group joined, so latency measures the pipeline.
        publish(kafka, setup, count=warmup)
        worker.wait_scored(warmup)
        count = int(seconds * 5) * setup.cameras
        publish(kafka, setup, count=count, fps=5.0, first_seq=WARMUP)
        worker.wait_scored(warmup + count, timeout_s=120)
        values = latencies_ms(kafka)
    finally:
        worker.stop()
    return Result.of(mode, count, seconds, values)


def machine(image_size: int, load_before: float) -> dict[str, Any]:
    """What a streaming figure was measured on, called when the runs are done. Others may share
    the machine: the 1-minute load average before and after says how quiet it was."""
    return {
        "platform": platform.platform(),
        "cpus": len(os.sched_getaffinity(0)),
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        "image_size": image_size,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg()[0],
    }


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", choices=MODELS, default="warmup")
    parser.add_argument("--train-clips", type=int, default=16, help="one_class: Ped2 clips")
    parser.add_argument(
        "--spec", help="one_class: JSON overrides of the OneClassSpec, e.g. '{\"k\": 3}'"
    )
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--frames", type=int, default=400)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=224, help="the warm-up model's")
    parser.add_argument(
        "--scoring-threads", type=int, help="Vigil's scoring threads (default: the worker's)"
    )
    parser.add_argument("--device", choices=("cpu", "cuda"), help="default: the worker's")
    parser.add_argument("--json", type=Path)
    return parser.parse_args()


def main() -> None:
    args = arguments()
    os.environ["VIGIL_INFERENCE_WARMUP_IMAGE_SIZE"] = str(args.image_size)
    if args.device:
        os.environ["VIGIL_INFERENCE_DEVICE"] = args.device
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = (
        one_class_on_ped2(
            train_clips=args.train_clips,
            device=device,
            overrides=json.loads(args.spec) if args.spec else None,
        )
        if args.model == "one_class"
        else StreamModel("warmup")
    )
    on_cuda = device == "cuda"
    cores = 1 if on_cuda else len(os.sched_getaffinity(0))
    naive = Mode(f"naive (1 frame, {'GPU' if on_cuda else 'CPU'} decode)", 1, 1, None)
    vigil = Mode("vigil micro-batched", args.batch_size, args.scoring_threads or cores, 1)
    setup = Setup(ped2_frames(args.frames), args.cameras, model)
    load_before = os.getloadavg()
    results = [
        throughput(naive, setup),
        throughput(vigil, setup),
        latency(naive, setup, args.seconds),
        latency(vigil, setup, args.seconds),
    ]
    report = {
        "machine": machine(args.image_size, load_before[0]),
        "model": asdict(model),
        "cameras": args.cameras,
        "results": [asdict(r) for r in results],
    }
    emit(report, args.json)


if __name__ == "__main__":
    main()
