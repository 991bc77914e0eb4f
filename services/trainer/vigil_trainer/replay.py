"""A replay job: a registry model over a time range of chosen cameras' retained frames.

The frames are read back from the frames topic by time (``vigil_shared.frame_log``: manual
assignment, no consumer group, nothing committed), decoded and scored in batches with the model
loaded as inference loads it (``load_frame_model``, the registry's sha256 checked), and run
through the live event lifecycle. Each event is namespaced (``vigil_shared.replay``): its id
derives from the replay's scope, it goes to ``vigil.replay.events.v2`` and the ``replay_events``
table (upserted), never to the live topic or table. The report on the ``replays`` row sets the
events against production's live events of the range and their reviews.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Protocol, TypeVar

from kafka import KafkaProducer
from kafka.errors import KafkaError
from minio.error import S3Error
from sqlalchemy import or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from vigil_shared.db.models import Event, Model
from vigil_shared.db.replay_models import Replay, ReplayEvent
from vigil_shared.event_lifecycle import CameraLifecycle, LifecycleSettings, Observation, Transition
from vigil_shared.frame_log import Frame, FrameLogError, stream_camera_frames
from vigil_shared.kafka import ensure_topics, make_consumer, make_producer
from vigil_shared.replay import ReplayStatus, Span, compare, replay_event_id, retention_note
from vigil_shared.schemas.events import EventPhase, ModelRef, message_id_for
from vigil_shared.schemas.frames import utc_now
from vigil_shared.settings import KafkaSettings
from vigil_shared.storage import StorageError
from vigil_shared.vision.inferencer import load_frame_model
from vigil_shared.vision.preprocess import UndecodableImageError, decode_many
from vigil_shared.vision.scoring import FrameModel
from vigil_trainer.context import TrainerContext

log = logging.getLogger("vigil_trainer")
T = TypeVar("T")
# What the user can fix (a model gone from the registry, a range too long to read, a broker
# away): the replay fails with the message, without a traceback.
INPUT_ERRORS = (FrameLogError, S3Error, StorageError, KafkaError, LookupError)


@dataclass(frozen=True)
class ReplayScope:
    replay_id: uuid.UUID
    scope_key: str
    model_id: str
    camera_ids: tuple[str, ...]
    start: datetime
    end: datetime


def run_replay(ctx: TrainerContext, kafka: KafkaSettings, replay_id: uuid.UUID) -> None:
    """Run the replay and store its report (or why it failed) on its row."""
    scope = _start(ctx.sessions, replay_id)
    if scope is None:
        log.info("replay skipped: already finished")
        return
    try:
        report = _replay(ctx, kafka, scope)
    except INPUT_ERRORS as exc:
        _finish(ctx.sessions, replay_id, ReplayStatus.FAILED, error=str(exc))
        return
    except Exception as exc:
        _finish(ctx.sessions, replay_id, ReplayStatus.FAILED, error=f"internal error: {exc}")
        raise
    _finish(ctx.sessions, replay_id, ReplayStatus.SUCCEEDED, report=report)


def _start(sessions: sessionmaker[Session], replay_id: uuid.UUID) -> ReplayScope | None:
    with sessions.begin() as session:
        row = session.get(Replay, replay_id, with_for_update=True)
        if row is None:
            raise LookupError(f"replay {replay_id} does not exist")
        if row.status in {ReplayStatus.SUCCEEDED, ReplayStatus.FAILED}:
            return None
        row.status = ReplayStatus.RUNNING
        row.started_at = utc_now()
        return ReplayScope(
            replay_id,
            row.scope_key,
            row.model_id,
            tuple(row.camera_ids),
            row.range_from,
            row.range_to,
        )


def _finish(
    sessions: sessionmaker[Session],
    replay_id: uuid.UUID,
    status: ReplayStatus,
    *,
    error: str | None = None,
    report: dict[str, object] | None = None,
) -> None:
    with sessions.begin() as session:
        row = session.get(Replay, replay_id)
        if row is not None:
            row.status, row.error, row.finished_at = status, error, utc_now()
            row.report = report or {}


def _replay(ctx: TrainerContext, kafka: KafkaSettings, scope: ReplayScope) -> dict[str, object]:
    with ctx.sessions() as session:
        registered = session.get(Model, scope.model_id)
        if registered is None:
            raise LookupError(f"model {scope.model_id} is no longer in the registry")
        sha256 = registered.artifact_sha256
    model = load_frame_model(
        ctx.s3,
        bucket=ctx.s3_settings.models_bucket,
        model_id=scope.model_id,
        device=ctx.device,
        artifact_sha256=sha256,
    )
    topics = kafka.topics
    ensure_topics(kafka, (topics.replay_events,))
    consumer = make_consumer(kafka, group_id=None)
    producer = make_producer(kafka)
    sink = ReplaySink(
        producer=producer, topic=topics.replay_events, sessions=ctx.sessions, scope=scope
    )
    frames = 0
    try:
        for camera_id in scope.camera_ids:
            retained = stream_camera_frames(
                consumer=consumer,
                topic=topics.frames,
                camera_id=camera_id,
                start=scope.start,
                end=scope.end,
            )
            frames += replay_camera(
                model,
                retained,
                batch_size=ctx.batch_size,
                device=ctx.device,
                sink=sink,
                lifecycle_settings=ctx.events.lifecycle_for(model.manifest.metrics),
            )
        producer.flush()
    finally:
        consumer.close()
        producer.close()
    report = compare(
        frames=frames, replayed=sink.spans, production=production_spans(ctx.sessions, scope)
    )
    note = retention_note(frames=frames, retention_hours=kafka.frames_retention_hours)
    return {**report, "retention_hours": kafka.frames_retention_hours, "note": note}


class TransitionSink(Protocol):
    def publish(self, transitions: Sequence[Transition]) -> None: ...


def replay_camera(
    model: FrameModel,
    frames: Iterable[Frame],
    *,
    batch_size: int,
    device: str,
    sink: TransitionSink,
    lifecycle_settings: LifecycleSettings | None = None,
) -> int:
    """One camera's frames, in the order ingest sent them, through the model and a fresh
    lifecycle, a batch at a time; an event still open at the range's end ends at its last hot
    frame. How many frames were read."""
    lifecycle = CameraLifecycle(lifecycle_settings or LifecycleSettings())
    ref = ModelRef(id=model.manifest.model_id, kind="registry")
    read = 0
    for batch in batched(frames, batch_size):
        for observation in _score(model, batch, ref=ref, first_offset=read, device=device):
            sink.publish(lifecycle.observe(observation, received_at=0.0))
        read += len(batch)
        camera_id = batch[0][0].camera_id
    sink.publish(lifecycle.end())
    if read:
        model.forget(camera_id)
    return read


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Lists of ``size`` items (the last one shorter), drawn as they come."""
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch


def _score(
    model: FrameModel, batch: Sequence[Frame], *, ref: ModelRef, first_offset: int, device: str
) -> list[Observation]:
    """The batch's scored frames; a frame that does not decode or is a model's warm-up frame
    has no score and is left out, as inference leaves it out of the lifecycle."""
    images = decode_many([jpeg for _, jpeg in batch], device)
    kept = [
        (first_offset + i, headers, image)
        for i, ((headers, _), image) in enumerate(zip(batch, images, strict=True))
        if not isinstance(image, UndecodableImageError)
    ]
    if not kept:
        return []
    scores = model.score_frames(
        [h.camera_id for _, h, _ in kept],
        [image for _, _, image in kept],
        [h.captured_at.timestamp() for _, h, _ in kept],  # a camera's rate, as live
    )
    return [
        Observation(
            camera_id=headers.camera_id,
            seq=headers.seq,
            captured_at=headers.captured_at,
            offset=offset,
            score=score.score,
            threshold=score.threshold,
            model=ref,
            jpeg=b"",
            label=score.label,
        )
        for (offset, headers, _), score in zip(kept, scores, strict=True)
        if score is not None
    ]


class ReplaySink:
    """Publishes a replay's transitions under their namespaced ids and upserts their rows."""

    def __init__(
        self,
        *,
        producer: KafkaProducer,
        topic: str,
        sessions: sessionmaker[Session],
        scope: ReplayScope,
    ) -> None:
        self._producer = producer
        self._topic = topic
        self._sessions = sessions
        self._scope = scope
        self.spans: list[Span] = []

    def publish(self, transitions: Sequence[Transition]) -> None:
        detected_at = utc_now()
        for transition in transitions:
            event_id = replay_event_id(
                scope=self._scope.scope_key, lifecycle_event_id=transition.event_id
            )
            message = transition.message(detected_at=detected_at, snapshot_key=None).model_copy(
                update={
                    "event_id": event_id,
                    "message_id": message_id_for(
                        event_id=event_id, phase=transition.phase, frame_seq=transition.frame.seq
                    ),
                }
            )
            self._producer.send(
                self._topic, key=message.camera_id.encode(), value=message.to_json_bytes()
            )
            self._store(event_id, transition)
            if transition.phase is EventPhase.END:
                self.spans.append(
                    Span(
                        str(event_id), message.camera_id, transition.started_at, transition.ended_at
                    )
                )

    def _store(self, event_id: uuid.UUID, transition: Transition) -> None:
        first = transition.frame if transition.phase is EventPhase.START else None
        values = {
            "event_id": event_id,
            "scope_key": self._scope.scope_key,
            "replay_id": self._scope.replay_id,
            "camera_id": transition.frame.camera_id,
            "model_id": self._scope.model_id,
            "frame_seq": (first or transition.peak).seq,
            "started_at": transition.started_at,
            "ended_at": transition.ended_at,
            "peak_score": transition.peak.score,
            "peak_frame_seq": transition.peak.seq,
            "threshold": transition.frame.threshold,
            "label": transition.peak.label,
        }
        changed = {k: v for k, v in values.items() if k not in {"event_id", "frame_seq"}}
        statement = insert(ReplayEvent).values(values)
        with self._sessions.begin() as session:
            session.execute(
                statement.on_conflict_do_update(index_elements=["event_id"], set_=changed)
            )


def production_spans(sessions: sessionmaker[Session], scope: ReplayScope) -> list[Span]:
    """Production's live events of the replay's cameras that overlap its range, with reviews."""
    query = select(Event).where(
        Event.camera_id.in_(scope.camera_ids),
        Event.started_at <= scope.end,
        or_(Event.ended_at.is_(None), Event.ended_at >= scope.start),
    )
    with sessions() as session:
        return [
            Span(str(e.event_id), e.camera_id, e.started_at, e.ended_at, e.review)
            for e in session.scalars(query.order_by(Event.started_at))
        ]
