"""Fault drill: kill -9 of inference at random moments, broker crashes and kills of the event sink,
while two cameras stream to a one_class model (motion and smoothing: scores that depend on each
camera's previous frames). At the end the stored events are held to an uninterrupted pass of a
fresh model over the same frames: events lost, duplicate incidents (events under ids the
uninterrupted pass does not make), events never ended, events whose start, peak or end moved;
and after each fault, how long until scoring resumed and until the backlog was caught up.

    python -m bench.fault_drill --quick --json bench/results/fault-drill-quick.json
    python -m bench.fault_drill --json bench/results/fault-drill.json   # 5 / 3 / 5 faults

Needs PostgreSQL and S3 of scripts/stack.sh (load .stack/env) and its Kafka jars: the drill
runs a broker of its own (``PrivateKafka``) so it can crash it. Minutes long: not a test.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from kafka import TopicPartition

from bench.drill_stack import INFERENCE_GROUP, LIFECYCLE, CameraFeed, DrillStack
from bench.report import emit
from tests.integration.event_reference import EventLog, expected_events
from tests.support import ServiceProcess, read_topic
from vigil_shared.kafka import make_consumer
from vigil_shared.storage import make_s3_client
from vigil_shared.vision.inferencer import load_frame_model

FULL = {"inference": 5, "broker": 3, "sink": 5}
QUICK = {"inference": 2, "broker": 1, "sink": 2}
BROKER_DOWN_S = 3.0
RECOVERY_TIMEOUT_S = 240.0


@dataclass
class Recovery:
    fault: str
    at_s: float
    resume_s: float | None
    """Restart (or broker back) until the worker scored a frame again (sink: committed one)."""
    caught_up_s: float | None
    """Restart until the backlog of the outage was scored (sink: stored and committed)."""
    broker_ready_s: float | None = None
    """Broker: listening again until its group coordinator answers (its own recovery)."""
    process_start_s: float | None = None
    """Inference: restart until the new process serves metrics (imports, model loads: the rest
    of ``resume_s`` is rejoining the group and the first batch)."""


def waited(
    probe: Callable[[], bool], timeout_s: float = RECOVERY_TIMEOUT_S, since: float | None = None
) -> float | None:
    """Seconds from ``since`` (default: now) until ``probe`` held, polled every 0.25 s; None if
    it did not within ``timeout_s``."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if probe():
            return time.monotonic() - (start if since is None else since)
        time.sleep(0.25)
    return None


class Drill:
    def __init__(self, stack: DrillStack) -> None:
        self.stack = stack
        self.started = time.monotonic()
        self.starts = {"inference": 0, "sink": 0}
        self.inference = stack.start_inference(0)
        self.sink = stack.start_sink(0)

    def kill_inference(self) -> Recovery:
        at = time.monotonic() - self.started
        self.inference.kill()
        self.starts["inference"] += 1
        self.inference = self.stack.start_inference(self.starts["inference"])
        restarted = time.monotonic()
        backlog = self._inference_backlog()
        serving = waited(lambda: self._serving(), since=restarted)
        resume = waited(lambda: self._scored() > 0, since=restarted)
        caught_up = waited(lambda: self._scored() >= backlog, since=restarted)
        return Recovery("inference", at, resume, caught_up, process_start_s=serving)

    def kill_broker(self) -> Recovery:
        at = time.monotonic() - self.started
        self.stack.broker.kill()
        time.sleep(BROKER_DOWN_S)
        self.stack.broker.start()
        listening = time.monotonic()
        before = self._scored()
        ready = waited(self.stack.coordinator_ready, since=listening)
        backlog = self._inference_backlog()  # the worker rewinds to its commits and reads on
        resume = waited(lambda: self._scored() > before, since=listening)
        caught_up = waited(lambda: self._scored() >= before + backlog, since=listening)
        return Recovery("broker", at, resume, caught_up, ready)

    def kill_sink(self) -> Recovery:
        """Resumed: the first event message sent after the kill is stored and committed,
        counted from the restart or from that message, whichever is later."""
        at = time.monotonic() - self.started
        self.sink.kill()
        sent_before = self.stack.sink_offsets()[1]
        self.starts["sink"] += 1
        self.sink = self.stack.start_sink(self.starts["sink"])
        restarted = time.monotonic()
        arrived: list[float] = []

        def stored_a_new_message() -> bool:
            committed, sent = self.stack.sink_offsets()
            if sent > sent_before and not arrived:
                arrived.append(time.monotonic())
            return committed > sent_before

        if waited(stored_a_new_message) is None:
            return Recovery("sink", at, None, None)
        resume = time.monotonic() - max([restarted, *arrived])
        caught_up = waited(lambda: self.stack.sink_lag() == 0, since=restarted)
        return Recovery("sink", at, resume, caught_up)

    def alive(self) -> None:
        for service in (self.inference, self.sink):
            service.assert_running()

    def stop(self) -> dict[str, int]:
        return {
            "inference": self.inference.stop(timeout_s=60),
            "sink": self.sink.stop(timeout_s=60),
        }

    def _serving(self) -> bool:
        return self.stack.inference_metric("vigil_inference_frames") is not None

    def _scored(self) -> float:
        """Frames the running worker scored or skipped as no longer needed (0 until it serves)."""
        scored = self.stack.inference_metric("vigil_inference_frames") or 0.0
        return scored + (self.stack.inference_metric("vigil_inference_replayed_frames") or 0.0)

    def _inference_backlog(self) -> float:
        """Frames from the committed offsets to the end at the restart: what the new worker
        reads (scores or skips) before it is back to live frames."""
        topic = self.stack.kafka.topics.frames
        consumer = make_consumer(self.stack.kafka, group_id=INFERENCE_GROUP)
        try:
            tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
            ends = consumer.end_offsets(tps)
            return float(sum(ends[tp] - (consumer.committed(tp) or 0) for tp in tps))
        finally:
            consumer.close()


def schedule(counts: dict[str, int], rng: random.Random) -> list[str]:
    faults = [fault for fault, n in counts.items() for _ in range(n)]
    rng.shuffle(faults)
    return faults


def outcome(stack: DrillStack, feed: CameraFeed) -> dict[str, Any]:
    """Stored events against an uninterrupted pass over the frames the topic holds."""
    frames = read_topic(stack.kafka, stack.kafka.topics.frames, count=feed.sent - feed.failed)
    s3 = make_s3_client(stack.s3)
    model = load_frame_model(
        s3, bucket=stack.s3.models_bucket, model_id=stack.model_id, device="cpu"
    )
    expected = expected_events(frames, model=model, model_id=stack.model_id, lifecycle=LIFECYCLE)

    def stored() -> dict[Any, dict[str, Any]]:
        return {row["event_id"]: row for row in stack.rows()}

    waited(lambda: all(stored().get(e, {}).get("status") == "ended" for e in expected), 300)
    rows = stored()
    moved = [
        str(event_id)
        for event_id, want in expected.items()
        if event_id in rows
        and (rows[event_id]["started_at"], rows[event_id]["ended_at"], rows[event_id]["frame_seq"])
        != (want.started_at, want.ended_at, want.peak_frame_seq)
    ]
    log = EventLog(stack.kafka, stack.kafka.topics.events)
    messages = log.poll(timeout_ms=3000)
    log.close()
    return {
        "frames": len(frames),
        "expected_events": len(expected),
        "stored_events": len(rows),
        "events_lost": len(set(expected) - set(rows)),
        "duplicate_incidents": len(set(rows) - set(expected)),
        "events_never_ended": sum(row["status"] != "ended" for row in rows.values()),
        "events_moved": len(moved),
        "event_messages": len(messages),
        "replayed_messages": len(messages) - len({m.message_id for m in messages}),
    }


def summary(recoveries: list[Recovery]) -> dict[str, dict[str, float | None]]:
    out: dict[str, dict[str, float | None]] = {}
    for fault in sorted({r.fault for r in recoveries}):
        mine = [r for r in recoveries if r.fault == fault]
        own = {"broker": ("broker_ready_s",), "inference": ("process_start_s",)}.get(fault, ())
        fields = ("resume_s", "caught_up_s", *own)
        for field in fields:
            values = [v for r in mine if (v := getattr(r, field)) is not None]
            out.setdefault(fault, {})[f"{field}_median"] = (
                round(statistics.median(values), 1) if values else None
            )
            out[fault][f"{field}_max"] = round(max(values), 1) if values else None
            out[fault][f"{field}_missing"] = len(mine) - len(values)
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    counts = QUICK if args.quick else FULL
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="vigil-drill-", dir=args.workdir) as tmp:
        stack = DrillStack(Path(tmp), fps=args.fps)
        stack.start()
        feed = CameraFeed(stack)
        drill: Drill | None = None
        try:
            drill = Drill(stack)
            feed.start()
            first = waited(lambda: any(r["status"] == "ended" for r in stack.rows()), 300)
            if first is None:
                raise SystemExit(_tail(drill.inference) + "\nno event stored within 300 s")
            recoveries = []
            for fault in schedule(counts, rng):
                time.sleep(rng.uniform(*args.gap_s))
                drill.alive()
                recoveries.append(getattr(drill, f"kill_{fault}")())
                print(f"{fault}: {asdict(recoveries[-1])}", flush=True)
            time.sleep(args.tail_s)
            feed.stop()
            feed.join(timeout=120)
            result = outcome(stack, feed)
            exits = drill.stop()
        finally:
            feed.stop()
            if drill is not None:
                for service in (drill.inference, drill.sink):
                    service.stop(timeout_s=60)
            stack.close()
    return {
        "mode": "quick" if args.quick else "full",
        "machine": {"cpus": os.cpu_count(), "load_1m_at_end": round(os.getloadavg()[0], 1)},
        "settings": {
            "cameras": 2,
            "fps_per_camera": args.fps,
            "event_silence_s": LIFECYCLE.silence_s,
            "broker_down_s": BROKER_DOWN_S,
            "faults": counts,
            "seed": args.seed,
        },
        "outcome": result,
        "recovery": summary(recoveries),
        "recoveries": [asdict(r) for r in recoveries],
        "frames_lost_by_the_producer": feed.failed,
        "exit_codes": exits,
        "seconds": round(time.monotonic() - started, 1),
    }


def _tail(service: ServiceProcess) -> str:
    return service.log()[-3000:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 inference, 1 broker, 2 sink kills")
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--fps", type=float, default=4.0, help="frames a second per camera")
    parser.add_argument("--gap-s", type=float, nargs=2, default=(8.0, 20.0))
    parser.add_argument("--tail-s", type=float, default=15.0, help="streaming after the faults")
    parser.add_argument("--workdir", type=Path, default=None, help="where logs go (temporary)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    emit(run(args), args.json)


if __name__ == "__main__":
    main()
