"""Where a replay picks each camera up again: what its model and its lifecycle need to see.

A camera's score may depend on its previous frames (the model's ``context_frames``: the frame
before for optical flow, a persistence window of motion maps, a smoothing window of scores), and
its open event or half-filled debounce window on the frames since its resume frame
(``EventTracker.resume_frame``). So each partition is committed no further than the oldest frame
any of its cameras still needs, and the commit carries, per camera, two offsets in Kafka's
offset-commit metadata string (JSON, as deltas from the committed offset):

- ``score_from``: the camera's frames before it are skipped on replay: their messages are out
  and its model no longer depends on them (its state starts empty there, as it did then);
- ``observe_from``: frames from ``score_from`` up to it are scored only to rebuild the model's
  state; from it on they are scored and fed to the lifecycle, which so sees exactly the frames
  it saw the first time: the same events, ids, starts, peaks and ends.

A camera without an entry is scored and observed from the committed offset (it had no frame in
the replayed span). After a restart, a rebalance or a rewind after a Kafka failure the worker
reads the entries of each partition it (re)gets (``load``). Memory per camera: its partition,
the offsets of its last ``context_frames`` frames and, until the replay passes it, its entry.

A camera whose frames stop arriving for ``silence_s`` has its model state dropped with its
lifecycle (the worker's expiry), so a silent camera never holds its partition's commit back,
and a replay starts it afresh where the first run did.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

from kafka import TopicPartition
from kafka.structs import OffsetAndMetadata

log = logging.getLogger("vigil_inference")

METADATA_VERSION = 1
METADATA_MAX_BYTES = 4096
"""Kafka's default ``offset.metadata.max.bytes``: about 150 cameras of a partition with short
ids. Beyond it the cameras without open state are left out (logged): they are observed from the
committed offset again, as before this mechanism."""


@dataclass(frozen=True)
class ResumePoint:
    score_from: int
    observe_from: int


@dataclass(frozen=True)
class Seen:
    """What a scored frame means for the lifecycle: ``context_from`` is the oldest frame its
    score depends on; ``observe`` is False while a replay only rebuilds the model's state."""

    context_from: int
    observe: bool


class ResumeFrame(Protocol):
    """The lifecycle's resume frame (an ``Observation``): the offsets it needs from it."""

    @property
    def offset(self) -> int: ...

    @property
    def context_from(self) -> int | None: ...


@dataclass
class _Camera:
    partition: TopicPartition
    next_offset: int
    received_at: float
    context: deque[int] = field(default_factory=deque)
    plan: ResumePoint | None = None

    def remember(self, offset: int, context_frames: int) -> int:
        """Record a scored frame; returns the oldest frame its score depended on."""
        if self.context.maxlen != context_frames:
            self.context = deque(self.context, maxlen=context_frames)
        oldest = self.context[0] if self.context else offset
        self.context.append(offset)
        self.next_offset = offset + 1
        return oldest


class ReplayLedger:
    """Per camera: its partition, its model's context and the replay plan read from a commit."""

    def __init__(self, *, silence_s: float) -> None:
        self._silence_s = silence_s
        self._cameras: dict[str, _Camera] = {}
        self._left_out = 0

    def load(self, tp: TopicPartition, committed: OffsetAndMetadata | None, *, now: float) -> None:
        """The plan of a partition just (re)assigned, from its commit's metadata."""
        if committed is None:
            return
        for camera_id, point in decode(committed.offset, committed.metadata).items():
            self._cameras[camera_id] = _Camera(tp, point.observe_from, now, plan=point)

    def skips(self, camera_id: str, offset: int) -> bool:
        """A replayed frame whose camera's model and lifecycle no longer need it."""
        camera = self._cameras.get(camera_id)
        return camera is not None and camera.plan is not None and offset < camera.plan.score_from

    def scored(
        self, camera_id: str, tp: TopicPartition, offset: int, *, context_frames: int, now: float
    ) -> Seen:
        camera = self._cameras.get(camera_id)
        if camera is None or camera.partition != tp:
            camera = self._cameras[camera_id] = _Camera(tp, offset, now)
        camera.received_at = now
        context_from = camera.remember(offset, context_frames)
        if camera.plan is not None and offset < camera.plan.observe_from:
            return Seen(context_from, observe=False)
        camera.plan = None
        return Seen(context_from, observe=True)

    def reset(self, camera_id: str) -> None:
        """The camera's model state was dropped: its next frame is scored from scratch."""
        camera = self._cameras.get(camera_id)
        if camera is not None:
            camera.context.clear()

    def partitions(self) -> set[TopicPartition]:
        return {camera.partition for camera in self._cameras.values()}

    def drop(self, partitions: set[TopicPartition]) -> list[str]:
        """Forget the cameras of partitions this worker lost; returns them."""
        gone = [c for c, camera in self._cameras.items() if camera.partition in partitions]
        for camera_id in gone:
            del self._cameras[camera_id]
        return gone

    def idle(self, *, now: float) -> list[str]:
        """Cameras with model state whose frames stopped arriving ``silence_s`` ago (cameras
        still waiting for their planned frames are not idle: a long replay may reach them late)."""
        return [
            camera_id
            for camera_id, camera in self._cameras.items()
            if camera.context and camera.plan is None and now - camera.received_at > self._silence_s
        ]

    def commits(
        self,
        positions: dict[TopicPartition, int],
        resume_frame: ResumeFrameOf,
    ) -> dict[TopicPartition, OffsetAndMetadata]:
        """Per partition: the offset to commit (the position, held back to the oldest frame a
        camera still needs) with every camera's resume point in its metadata."""
        points: dict[TopicPartition, dict[str, ResumePoint]] = {tp: {} for tp in positions}
        keep: set[str] = set()
        for camera_id, camera in self._cameras.items():
            position = positions.get(camera.partition)
            if position is None:
                continue
            if camera.plan is not None and position >= camera.plan.observe_from:
                camera.plan = None  # the replay is past it: the camera sent nothing more then
            frame = resume_frame(camera_id)
            if frame is not None:
                keep.add(camera_id)
            points[camera.partition][camera_id] = self._resume_point(camera, frame)
        out = {}
        left_out = 0
        for tp, position in positions.items():
            offset = min([position, *(p.score_from for p in points[tp].values())])
            metadata, dropped = encode(offset, points[tp], keep)
            out[tp] = OffsetAndMetadata(offset, metadata, -1)
            left_out += dropped
        if left_out != self._left_out and left_out:
            log.warning(
                "commit metadata full: %d cameras would be observed from the committed offset "
                "on a replay (too many cameras per partition: add partitions)",
                left_out,
            )
        self._left_out = left_out
        return out

    @staticmethod
    def _resume_point(camera: _Camera, frame: ResumeFrame | None) -> ResumePoint:
        if camera.plan is not None:  # its planned frames are still ahead
            score_from = camera.context[0] if camera.context else camera.plan.score_from
            return ResumePoint(min(score_from, camera.plan.observe_from), camera.plan.observe_from)
        if frame is not None:  # an open event or debounce window, from its first frame
            context_from = frame.offset if frame.context_from is None else frame.context_from
            return ResumePoint(context_from, frame.offset)
        oldest = camera.context[0] if camera.context else camera.next_offset
        return ResumePoint(oldest, camera.next_offset)


class ResumeFrameOf(Protocol):
    def __call__(self, camera_id: str, /) -> ResumeFrame | None: ...


def encode(offset: int, points: dict[str, ResumePoint], keep: set[str]) -> tuple[str, int]:
    """The metadata of a commit at ``offset`` (cameras that must not simply resume there) and
    how many did not fit; ``keep`` (cameras with open lifecycle state) go first."""
    entries = {
        camera_id: [p.score_from - offset, p.observe_from - offset]
        for camera_id, p in sorted(points.items(), key=lambda item: item[0] not in keep)
        if p.observe_from > offset
    }
    text = _dump(entries)
    dropped = 0
    while len(text.encode()) > METADATA_MAX_BYTES:
        entries.popitem()
        dropped += 1
        text = _dump(entries)
    return text, dropped


def decode(offset: int, metadata: str | None) -> dict[str, ResumePoint]:
    """The resume points of a commit at ``offset``; none for metadata that is not ours."""
    if not metadata:
        return {}
    try:
        document = json.loads(metadata)
        if document.get("v") != METADATA_VERSION:
            raise ValueError(f"version {document.get('v')!r}")
        return {
            str(camera_id): ResumePoint(offset + int(score), offset + int(observe))
            for camera_id, (score, observe) in document["cameras"].items()
        }
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        log.warning("ignoring commit metadata that is not a replay plan: %s", exc)
        return {}


def _dump(entries: dict[str, list[int]]) -> str:
    if not entries:
        return ""
    return json.dumps({"v": METADATA_VERSION, "cameras": entries}, separators=(",", ":"))
