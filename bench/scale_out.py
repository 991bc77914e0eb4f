"""Scale-out benchmark: frames/s of one inference process, then of two in one consumer group,
on the same stream (docs/benchmarks.md#scale-out).

    python -m bench.scale_out --quick            # a few minutes
    python -m bench.scale_out --json bench/results/scale-out-cpu.json

Runs against the servers of scripts/stack.sh (load .stack/env first), in a fresh topic namespace
per measurement. Each process is the real ``python -m vigil_inference``, as deployed; the cores
are split between the processes (one scoring thread per core each, torch single-threaded), so
two processes on a host do the work of one with the same cores: what they can add there is what
one process leaves idle (its loop's Kafka and Python time). On separate hosts each brings its
own cores.

8 cameras of UCSD Ped2 frames (360x240 JPEG), two per partition of the 4-partition frames
topic (cameras chosen by Kafka's key hash), so the group's two members get equal shares. After
the warm-up frames, which every process must have scored (the group has settled and each
process owns partitions), a backlog is published and counted by the processes' own Prometheus
counters from the first frame scored to the last. Scoring is the warm-up model (Lite0 + kNN,
threshold 0: every frame causes event messages), snapshots off.
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from kafka.partitioner.default import murmur2

from bench.report import emit
from bench.stream import (
    WARMUP,
    Mode,
    Worker,
    fresh_namespace,
    machine,
    ped2_frames,
    start_worker,
)
from vigil_shared.kafka import make_producer
from vigil_shared.schemas.frames import FrameHeaders
from vigil_shared.settings import KafkaSettings

PARTITIONS = 4  # VIGIL_KAFKA_PARTITIONS' default, which fresh_namespace's topics get
CAMERAS_PER_PARTITION = 2


@dataclass
class Run:
    processes: int
    scoring_threads_each: int
    frames: int
    seconds: float
    frames_per_s: float
    frames_by_process: list[int]  # warm-up frames included


def even_cameras() -> list[str]:
    """``CAMERAS_PER_PARTITION`` cameras per partition, by the key hash producers use."""
    by_partition: dict[int, list[str]] = defaultdict(list)
    index = 0
    while any(len(by_partition[p]) < CAMERAS_PER_PARTITION for p in range(PARTITIONS)):
        camera = f"cam{index}"
        partition = (murmur2(camera.encode()) & 0x7FFFFFFF) % PARTITIONS
        if len(by_partition[partition]) < CAMERAS_PER_PARTITION:
            by_partition[partition].append(camera)
        index += 1
    return sorted(camera for cameras in by_partition.values() for camera in cameras)


def publish(
    kafka: KafkaSettings, frames: list[bytes], cameras: list[str], *, rounds: int, first_seq: int
) -> None:
    """``rounds`` frames per camera, as fast as Kafka takes them."""
    producer = make_producer(kafka, linger_ms=5)
    for seq in range(first_seq, first_seq + rounds):
        for index, camera in enumerate(cameras):
            headers = FrameHeaders(
                camera_id=camera, seq=seq, captured_at=datetime.now(UTC), width=360, height=240
            )
            producer.send(
                kafka.topics.frames,
                key=camera.encode(),
                value=frames[(seq * len(cameras) + index) % len(frames)],
                headers=headers.to_kafka_headers(),
            )
    producer.flush()
    producer.close()


def wait_total(workers: list[Worker], count: int, timeout_s: float = 600) -> list[int]:
    """Until the workers together have scored ``count`` frames; each one's count."""
    deadline = time.monotonic() + timeout_s
    while sum(scored := [w.frames_scored() for w in workers]) < count:
        if any(w.process.poll() is not None for w in workers) or time.monotonic() > deadline:
            raise SystemExit(f"inference stalled at {sum(scored)}/{count} frames ({scored})")
        time.sleep(0.1)  # each scrape costs the workers CPU: not too often
    return scored


def warm_up(
    kafka: KafkaSettings, frames: list[bytes], cameras: list[str], workers: list[Worker]
) -> int:
    """A round of frames per camera at a time until every process has scored some (the group
    has settled: a process that joined late owns partitions too) and every camera has its
    warm-up bank; returns how many frames that took."""
    sent = 0
    while sent < WARMUP * len(cameras) or not all(w.frames_scored() for w in workers):
        if sent >= 100 * len(cameras):
            raise SystemExit("a process still owns no partition after 100 rounds")
        publish(kafka, frames, cameras, rounds=1, first_seq=sent // len(cameras))
        sent += len(cameras)
        wait_total(workers, sent)
    return sent


def measure(processes: int, frames: list[bytes], *, rounds: int, cores: int) -> Run:
    kafka = fresh_namespace()
    cameras = even_cameras()
    threads = max(1, cores // processes)
    mode = Mode(f"{processes} process(es)", batch_size=32, scoring_threads=threads, torch_threads=1)
    group = f"bench-scale-{uuid.uuid4().hex[:6]}"
    workers = [start_worker(mode, group_id=group) for _ in range(processes)]
    try:
        warm = warm_up(kafka, frames, cameras, workers)
        publish(kafka, frames, cameras, rounds=rounds, first_seq=warm // len(cameras))
        # The clock starts at the first frame scored after the warm-up: publishing excluded.
        first = sum(wait_total(workers, warm + 1))
        start = time.perf_counter()
        scored = wait_total(workers, warm + rounds * len(cameras))
        seconds = time.perf_counter() - start
    finally:
        for worker in workers:
            worker.stop()
    done = sum(scored) - first
    return Run(processes, threads, done, seconds, done / seconds, scored)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="40 frames per camera, 160 px")
    parser.add_argument("--rounds", type=int, default=150, help="backlog frames per camera")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rounds, size = (40, 160) if args.quick else (args.rounds, args.image_size)
    os.environ["VIGIL_INFERENCE_WARMUP_IMAGE_SIZE"] = str(size)
    cores = len(os.sched_getaffinity(0))
    frames = ped2_frames(PARTITIONS * CAMERAS_PER_PARTITION * (rounds + WARMUP))
    load_before = os.getloadavg()
    results = [measure(n, frames, rounds=rounds, cores=cores) for n in (1, 2)]
    report = {
        "machine": {
            **machine(size, load_before[0]),
            "cameras": PARTITIONS * CAMERAS_PER_PARTITION,
            "brokers": len(KafkaSettings().bootstrap_servers.split(",")),
        },
        "results": [asdict(r) for r in results],
        "speedup": results[1].frames_per_s / results[0].frames_per_s,
    }
    emit(report, args.json)


if __name__ == "__main__":
    main()
