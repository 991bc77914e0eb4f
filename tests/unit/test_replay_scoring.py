"""The trainer's replay of one camera: frames drawn a batch at a time from a stream, scored,
and run through the live event lifecycle; warm-up and undecodable frames raise nothing."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from types import SimpleNamespace

import torch

from tests.factories import T0, scene_jpeg
from vigil_shared.event_lifecycle import Transition
from vigil_shared.frame_log import Frame
from vigil_shared.schemas.events import EventPhase
from vigil_shared.schemas.frames import FrameHeaders
from vigil_shared.vision.scoring import FrameScore
from vigil_trainer.replay import batched, replay_camera

HOT = range(20, 30)  # frames the fake model finds anomalous


@dataclass
class FakeModel:
    """Scores a frame by its position in the stream; the first frame is a warm-up frame."""

    manifest: SimpleNamespace = field(default_factory=lambda: SimpleNamespace(model_id="m-fake"))
    seen: int = 0
    batches: list[int] = field(default_factory=list)
    forgotten: list[str] = field(default_factory=list)

    @property
    def context_frames(self) -> int:
        return 0

    def score_frames(
        self,
        camera_ids: Sequence[str],
        images: Sequence[torch.Tensor],
        times: Sequence[float] | None = None,
    ) -> list[FrameScore | None]:
        self.batches.append(len(images))
        scores: list[FrameScore | None] = []
        for _ in images:
            step, self.seen = self.seen, self.seen + 1
            scores.append(None if step == 0 else FrameScore(float(step in HOT), 0.5))
        return scores

    def forget(self, camera_id: str) -> None:
        self.forgotten.append(camera_id)


@dataclass
class ListSink:
    transitions: list[Transition] = field(default_factory=list)

    def publish(self, transitions: Sequence[Transition]) -> None:
        self.transitions.extend(transitions)


def stream(count: int, *, broken: int | None = None) -> Iterator[Frame]:
    """One camera's frames, drawn lazily as the topic would give them."""
    for step in range(count):
        headers = FrameHeaders(
            camera_id="gate",
            seq=step,
            captured_at=T0 + timedelta(seconds=step / 10),
            width=180,
            height=120,
        )
        yield headers, b"not a jpeg" if step == broken else scene_jpeg(step)


def test_a_camera_replay_raises_one_event_per_hot_run_and_ends_it() -> None:
    model, sink = FakeModel(), ListSink()
    read = replay_camera(model, stream(40), batch_size=16, device="cpu", sink=sink)  # type: ignore[arg-type]
    assert read == 40
    assert model.batches == [16, 16, 8]
    assert model.forgotten == ["gate"]
    phases = [t.phase for t in sink.transitions]
    assert phases[0] is EventPhase.START and phases[-1] is EventPhase.END
    assert len({t.event_id for t in sink.transitions}) == 1
    end = sink.transitions[-1]
    assert end.started_at == T0 + timedelta(seconds=2.0)
    assert end.ended_at == T0 + timedelta(seconds=2.9)


def test_the_same_frames_give_the_same_event_ids_whatever_the_batch_size() -> None:
    runs = []
    for batch_size in (7, 40):
        sink = ListSink()
        replay_camera(FakeModel(), stream(40), batch_size=batch_size, device="cpu", sink=sink)  # type: ignore[arg-type]
        runs.append([(t.event_id, t.phase, t.frame.seq) for t in sink.transitions])
    assert runs[0] == runs[1] and runs[0]


def test_an_undecodable_frame_is_skipped_not_fatal() -> None:
    model, sink = FakeModel(), ListSink()
    read = replay_camera(model, stream(40, broken=5), batch_size=7, device="cpu", sink=sink)  # type: ignore[arg-type]
    assert read == 40
    assert sum(model.batches) == 39  # the broken frame never reaches the model
    assert [t.phase for t in sink.transitions][-1] is EventPhase.END


def test_batches_are_drawn_as_they_come() -> None:
    drawn: list[int] = []

    def numbers() -> Iterator[int]:
        for n in range(5):
            drawn.append(n)
            yield n

    batches = batched(numbers(), 2)
    assert next(batches) == [0, 1] and drawn == [0, 1]
    assert list(batches) == [[2, 3], [4]]
