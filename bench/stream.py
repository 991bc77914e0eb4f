"""Streaming benchmark: frames/s and frame-to-event latency through real Kafka.

Runs against the servers of scripts/stack.sh (load .stack/env first), in a fresh topic
namespace, and compares Vigil's micro-batched worker with a naive baseline measured in the same
run: the same worker with batches of one frame (decode on the CPU, one commit per frame).

    python bench/stream.py --frames 400 --seconds 30 --json bench/results/stream-cpu.json

Throughput: a backlog of Ped2 frames (360x240 JPEG) is scored as fast as the worker can.
Latency: 4 cameras x 5 fps are published in real time and every frame causes one event message
(threshold 0, events of one frame: a start, then an end on the next frame), so p50/p99 of
detected_at - captured_at cover every frame. Snapshots are off: with every frame an event they
would measure S3 uploads, which a real stream makes only at an event's start and new peaks.
Scoring is the warm-up model (EfficientNet-Lite0 embedding + kNN) at ``--image-size``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import torch

from vigil_inference.service import build_worker
from vigil_inference.settings import InferenceSettings
from vigil_shared.kafka import ensure_topics, make_consumer, make_producer
from vigil_shared.schemas.events import EventMessage
from vigil_shared.schemas.frames import FrameHeaders
from vigil_shared.settings import KafkaSettings, default_datasets_dir


@dataclass
class Result:
    mode: str
    batch_size: int
    frames: int
    seconds: float
    frames_per_s: float
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None


def ped2_frames(limit: int) -> list[bytes]:
    root = default_datasets_dir() / "ucsd-ped2" / "test_frames"
    paths = sorted(root.glob("Test*/*.jpg"))[:limit]
    if not paths:
        raise SystemExit(f"UCSD Ped2 frames not found under {root}")
    return [p.read_bytes() for p in paths]


def fresh_namespace() -> None:
    os.environ["VIGIL_KAFKA_TOPIC_NAMESPACE"] = f"bench{uuid.uuid4().hex[:8]}."
    kafka = KafkaSettings()
    ensure_topics(kafka, kafka.topics.all(), compacted=kafka.topics.compacted())


def publish(frames: list[bytes], *, cameras: int, fps: float | None, seconds: float | None) -> int:
    """Publish round-robin over cameras; paced at ``fps`` per camera when given."""
    kafka = KafkaSettings()
    producer = make_producer(kafka, linger_ms=0)
    start = time.monotonic()
    sent = 0
    while True:
        if seconds is None and sent >= len(frames):
            break
        if seconds is not None:
            due = start + (sent // cameras) / (fps or 1)
            if due - start >= seconds:
                break
            time.sleep(max(0.0, due - time.monotonic()))
        camera = f"cam{sent % cameras}"
        headers = FrameHeaders(
            camera_id=camera,
            seq=sent // cameras,
            captured_at=datetime.now(UTC),
            width=360,
            height=240,
        )
        producer.send(
            kafka.topics.frames,
            key=camera.encode(),
            value=frames[sent % len(frames)],
            headers=headers.to_kafka_headers(),
        )
        sent += 1
    producer.flush()
    producer.close()
    return sent


def run_worker(batch_size: int, expected: int, *, warmup: int) -> tuple[float, int]:
    os.environ.update(
        {
            "VIGIL_INFERENCE_GROUP_ID": f"bench-{uuid.uuid4().hex[:6]}",
            "VIGIL_INFERENCE_BATCH_SIZE": str(batch_size),
            "VIGIL_INFERENCE_MAX_WAIT_MS": "20",
            "VIGIL_INFERENCE_WARMUP_FRAMES": str(warmup),
            "VIGIL_INFERENCE_THRESHOLD": "0",
            "VIGIL_INFERENCE_EVENT_OPEN_K": "1",
            "VIGIL_INFERENCE_EVENT_OPEN_N": "1",
            "VIGIL_INFERENCE_EVENT_MAX_DURATION_S": "0.001",
            "VIGIL_INFERENCE_SNAPSHOTS": "false",
        }
    )
    worker = build_worker(InferenceSettings())
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    # The clock starts at the first scored frame: model load and the group join are excluded.
    while worker.frames_scored == 0 and thread.is_alive():
        time.sleep(0.005)
    start, first = time.perf_counter(), worker.frames_scored
    while worker.frames_scored < expected and thread.is_alive():
        time.sleep(0.005)
    elapsed = time.perf_counter() - start
    stop.set()
    thread.join()
    return elapsed, worker.frames_scored - first


def latencies_ms() -> list[float]:
    kafka = KafkaSettings()
    consumer = make_consumer(kafka, kafka.topics.events, group_id=f"bench-read-{uuid.uuid4().hex}")
    out: list[float] = []
    idle = 0
    while idle < 6:
        batch = consumer.poll(timeout_ms=500)
        idle = 0 if batch else idle + 1
        for records in batch.values():
            for record in records:
                event = EventMessage.model_validate_json(record.value)
                out.append((event.detected_at - event.captured_at).total_seconds() * 1000)
    consumer.close()
    return out


def throughput(mode: str, batch_size: int, frames: list[bytes]) -> Result:
    fresh_namespace()
    publish(frames, cameras=4, fps=None, seconds=None)
    # Warm the model and the group join on the first frames; time the rest.
    elapsed, scored = run_worker(batch_size, len(frames), warmup=4)
    return Result(mode, batch_size, scored, elapsed, scored / elapsed)


def latency(mode: str, batch_size: int, frames: list[bytes], seconds: float) -> Result:
    fresh_namespace()
    expected = int(seconds * 5) * 4
    publisher = threading.Thread(
        target=publish, args=(frames,), kwargs={"cameras": 4, "fps": 5.0, "seconds": seconds}
    )
    # Start consuming first so latency measures the pipeline, not a backlog.
    result: dict[str, float] = {}

    def consume() -> None:
        result["elapsed"], result["scored"] = run_worker(batch_size, expected, warmup=2)

    worker = threading.Thread(target=consume)
    worker.start()
    time.sleep(8)  # model load and group join happen before the cameras start
    publisher.start()
    publisher.join()
    worker.join(timeout=seconds + 120)
    values = sorted(latencies_ms())
    return Result(
        mode,
        batch_size,
        len(values),
        seconds,
        len(values) / seconds,
        latency_p50_ms=statistics.median(values),
        latency_p99_ms=values[min(len(values) - 1, int(len(values) * 0.99))],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=400)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: all cores)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    os.environ["VIGIL_INFERENCE_WARMUP_IMAGE_SIZE"] = str(args.image_size)
    if args.threads:
        os.environ["VIGIL_INFERENCE_THREADS"] = str(args.threads)
    frames = ped2_frames(args.frames)
    load_before = os.getloadavg()
    results = [
        throughput("naive (1 frame, CPU decode)", 1, frames),
        throughput("vigil micro-batched", args.batch_size, frames),
        latency("naive (1 frame, CPU decode)", 1, frames, args.seconds),
        latency("vigil micro-batched", args.batch_size, frames, args.seconds),
    ]
    machine = {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        "image_size": args.image_size,
        "threads": args.threads or torch.get_num_threads(),
        # Others share this machine: the 1-minute load average says how quiet it was.
        "load_average_before": load_before[0],
        "load_average_after": os.getloadavg()[0],
    }
    print(f"load average {load_before[0]:.2f} before, {machine['load_average_after']:.2f} after")
    for r in results:
        lat = (
            f"p50 {r.latency_p50_ms:.0f} ms, p99 {r.latency_p99_ms:.0f} ms"
            if r.latency_p50_ms is not None
            else ""
        )
        print(
            f"{r.mode:30s} batch {r.batch_size:3d}: {r.frames:5d} frames, "
            f"{r.frames_per_s:7.1f} frames/s {lat}"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {"machine": machine, "results": [asdict(r) for r in results]}
        args.json.write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
