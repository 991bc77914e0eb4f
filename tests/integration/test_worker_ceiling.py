"""bench.worker_ceiling measures a real worker's threads: the loop thread's CPU a frame, read
from /proc over a backlog's steady part, against the real stack."""

from __future__ import annotations

import io
import os
import threading
import time

import numpy as np
import pytest
from PIL import Image

from bench.stream import Mode, Setup
from bench.stream_models import StreamModel
from bench.worker_ceiling import measure, thread_cpu_s


def jpeg_frames(count: int, size: tuple[int, int]) -> list[bytes]:
    rng = np.random.default_rng(0)
    out = []
    for _ in range(count):
        pixels = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, "JPEG", quality=85)
        out.append(buffer.getvalue())
    return out


def test_a_threads_cpu_time_is_read() -> None:
    tid = threading.get_native_id()
    before = thread_cpu_s(os.getpid())[tid]
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:
        pass
    assert thread_cpu_s(os.getpid())[tid] - before >= 0.2


def test_the_loop_threads_cpu_a_frame_is_measured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_KAFKA_TOPIC_NAMESPACE", "ceiling.")  # restored after the bench's
    monkeypatch.setenv("VIGIL_INFERENCE_WARMUP_IMAGE_SIZE", "32")
    monkeypatch.setenv("VIGIL_INFERENCE_DEVICE", "cpu")
    setup = Setup(jpeg_frames(1000, (64, 48)), 10, StreamModel("warmup"), size=(64, 48))
    result = measure("quiet", setup, Mode("vigil", 64, 1, 1))
    assert result.setting == "quiet"
    assert 300 <= result.frames <= 1000  # 20 % to 90 % of the backlog, give or take batches
    assert result.frames_per_s > 0
    assert 0 < result.loop_us_per_frame < result.process_cpu_us_per_frame
    assert result.loop_us_per_frame in result.threads_us_per_frame or any(
        abs(v - result.loop_us_per_frame) < 0.1 for v in result.threads_us_per_frame
    )
