"""The inference worker's host side: what one process passes when scoring costs next to nothing.

On a GPU host decoding and scoring leave the CPU (nvJPEG, the model on the device); what stays
is the worker's Python: Kafka fetches, headers, micro-batches, event lifecycles, publishing and
commits, on one loop thread and kafka-python's network thread, under one GIL. Whether one
process can pass 5,000 frames a second (issue 15) is therefore partly a question for any CPU,
and this measures it: Ped2 frames shrunk to 64x48 JPEG, the warm-up model at 32 px, batches of
256, a backlog scored as fast as the worker can, and the CPU time of each of the worker's
threads read from ``/proc`` over the backlog's steady part (from 20 % to 90 % of its frames).
The loop thread's microseconds a frame bound the process whatever scores the frames.

Two settings, in one run: ``events`` (the stream benchmark's: threshold 0 and events of one
frame, so every frame opens and closes one, two messages a frame) and ``quiet`` (the threshold
out of reach, as on a site where incidents are rare). Beside them, the Kafka client alone: one
consumer reading full-size Ped2 frames (360x240 JPEG) off the frames topic, nothing else. The
broker and this script share the machine's cores, so frames/s here are those of the whole small
machine, not the ceiling.

    python -m bench.worker_ceiling --json bench/results/worker-ceiling-cpu.json
"""

from __future__ import annotations

import argparse
import io
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from kafka import TopicPartition
from PIL import Image

from bench.report import emit
from bench.stream import (
    Mode,
    Setup,
    Worker,
    fresh_namespace,
    machine,
    ped2_frames,
    publish,
    start_worker,
)
from bench.stream_models import StreamModel
from vigil_shared.kafka import make_consumer

SETTINGS = {
    "events": {},
    "quiet": {"VIGIL_INFERENCE_THRESHOLD": "1e9"},
}
STEADY = (0.2, 0.9)  # the part of the backlog measured: after start-up, before the tail


@dataclass
class Measurement:
    setting: str
    frames: int
    seconds: float
    frames_per_s: float
    loop_us_per_frame: float
    process_cpu_us_per_frame: float
    threads_us_per_frame: list[float]  # every thread's, busiest first (the loop's included)

    @property
    def loop_ceiling_frames_per_s(self) -> float:
        """What the loop thread alone would pass with a core to itself."""
        return 1e6 / self.loop_us_per_frame


def thread_cpu_s(pid: int) -> dict[int, float]:
    """CPU seconds (user + system) of each thread of process ``pid``."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[int, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended meanwhile
            continue
        out[int(task.name)] = (int(fields[11]) + int(fields[12])) / tick
    return out


def steady_part(worker: Worker, total: int) -> Measurement:
    start_at, end_at = (int(total * share) for share in STEADY)
    pid = worker.process.pid
    t1, first = worker.wait_scored(start_at)
    before = thread_cpu_s(pid)
    t2, last = worker.wait_scored(end_at)
    after = thread_cpu_s(pid)
    frames, seconds = last - first, t2 - t1
    if frames <= 0:
        raise SystemExit(f"the worker scored nothing between {first} and {last} frames")
    used = {tid: cpu - before.get(tid, 0.0) for tid, cpu in after.items()}
    per_frame = {tid: cpu / frames * 1e6 for tid, cpu in used.items()}
    return Measurement(
        setting="",
        frames=frames,
        seconds=seconds,
        frames_per_s=frames / seconds,
        loop_us_per_frame=per_frame.get(pid, 0.0),
        process_cpu_us_per_frame=sum(per_frame.values()),
        threads_us_per_frame=sorted((round(v, 1) for v in per_frame.values()), reverse=True),
    )


def small_frames(count: int, size: tuple[int, int]) -> list[bytes]:
    """Ped2 frames re-encoded at ``size`` (width, height): decoding them costs next to nothing."""
    out = []
    for frame in ped2_frames(min(count, 400)):
        image = Image.open(io.BytesIO(frame)).convert("RGB").resize(size)
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=85)
        out.append(buffer.getvalue())
    return [out[i % len(out)] for i in range(count)]


def measure(setting: str, setup: Setup, mode: Mode) -> Measurement:
    publish(fresh_namespace(), setup, count=len(setup.frames))
    worker = start_worker(mode, model=setup.model, environment=SETTINGS[setting])
    try:
        result = steady_part(worker, len(setup.frames))
    finally:
        worker.stop()
    result.setting = setting
    return result


def client_read(count: int) -> dict[str, float]:
    """One consumer (the worker's settings, outside any group) reading ``count`` full-size Ped2
    frames from the start of every partition: frames/s and MB/s from its first record."""
    frames = ped2_frames(400)
    setup = Setup([frames[i % len(frames)] for i in range(count)], 50, StreamModel("warmup"))
    kafka = fresh_namespace()
    publish(kafka, setup, count=count)
    consumer = make_consumer(kafka, group_id=None, max_poll_records=512)
    try:
        topic = kafka.topics.frames
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        read, size, started = 0, 0, None
        while read < count:
            batch = consumer.poll(timeout_ms=1000)
            started = started or (time.perf_counter() if batch else None)
            for records in batch.values():
                read += len(records)
                size += sum(len(r.value) for r in records)
        seconds = time.perf_counter() - (started or time.perf_counter())
    finally:
        consumer.close()
    return {
        "frames": read,
        "partitions": len(partitions),
        "seconds": seconds,
        "frames_per_s": read / seconds,
        "mb_per_s": size / seconds / 1e6,
        "mean_frame_bytes": size / read,
    }


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=40_000)
    parser.add_argument("--cameras", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--image-size", type=int, default=32, help="the warm-up model's")
    parser.add_argument("--frame-size", default="64x48", help="WIDTHxHEIGHT of the JPEGs")
    parser.add_argument("--client-frames", type=int, default=20_000, help="0: no client read")
    parser.add_argument("--json", type=Path)
    return parser.parse_args()


def main() -> None:
    args = arguments()
    os.environ["VIGIL_INFERENCE_WARMUP_IMAGE_SIZE"] = str(args.image_size)
    os.environ["VIGIL_INFERENCE_DEVICE"] = "cpu"
    width, height = (int(v) for v in args.frame_size.lower().split("x"))
    setup = Setup(
        small_frames(args.frames, (width, height)),
        args.cameras,
        StreamModel("warmup"),
        size=(width, height),
    )
    mode = Mode("vigil micro-batched", args.batch_size, len(os.sched_getaffinity(0)), 1)
    load_before = os.getloadavg()[0]
    started = time.time()
    results = [measure(setting, setup, mode) for setting in SETTINGS]
    client = client_read(args.client_frames) if args.client_frames else None
    report: dict[str, Any] = {
        "machine": machine(args.image_size, load_before),
        "frame_size": [width, height],
        "cameras": args.cameras,
        "batch_size": args.batch_size,
        "seconds": time.time() - started,
        "results": [
            asdict(r) | {"loop_ceiling_frames_per_s": r.loop_ceiling_frames_per_s} for r in results
        ],
        "kafka_client_alone": client,
    }
    emit(report, args.json)


if __name__ == "__main__":
    main()
