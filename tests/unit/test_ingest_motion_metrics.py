"""Motion gating saves GPU on static scenes; every count is visible in Prometheus."""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Generator

import pytest
from PIL import Image

from tests.unit.ingest_fakes import TOPICS, FakeProducer, numbered_image, run_to_end
from vigil_ingest.camera import build_camera
from vigil_ingest.metrics import IngestMetrics, MetricsPortError, serve_metrics
from vigil_ingest.motion import MotionGate
from vigil_ingest.settings import IngestSettings
from vigil_ingest.sources import SourceFrame


def noisy(image: Image.Image, amount: int) -> Image.Image:
    return image.point(lambda v: min(255, v + amount))


def test_gate_skips_unchanged_frames_and_passes_changed_ones() -> None:
    gate = MotionGate(0.02)
    still = numbered_image(0)
    assert gate.passes(still)  # the first frame always goes through
    assert not gate.passes(still.copy())
    assert not gate.passes(noisy(still, 2))  # sensor noise: under 1% of full scale
    assert gate.passes(numbered_image(3))  # the bar moved


def test_slow_drift_adds_up_against_the_last_frame_let_through() -> None:
    gate = MotionGate(0.02)
    base = numbered_image(0)
    assert gate.passes(base)
    steps = [gate.passes(noisy(base, step)) for step in range(1, 10)]
    assert steps.index(True) < 8, "a drift of 2% of full scale must pass eventually"


@pytest.mark.parametrize("threshold", [0.0, 1.0, -0.1])
def test_gate_threshold_is_a_fraction(threshold: float) -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        MotionGate(threshold)


def still_then_moving() -> Generator[SourceFrame, None, None]:
    images = [numbered_image(0)] * 5 + [numbered_image(i) for i in range(1, 4)]
    for index, image in enumerate(images):
        yield SourceFrame(image=image, offset_s=index / 10)


def sample(metrics: IngestMetrics, name: str) -> float:
    return metrics.registry.get_sample_value(name, {"camera_id": "cam-1"}) or 0.0


def test_gated_camera_publishes_only_changes_and_counts_the_rest() -> None:
    producer = FakeProducer()
    metrics = IngestMetrics()
    settings = IngestSettings(
        camera_id="cam-1", source="clip.mp4", fps=10, realtime=False, motion_threshold=0.01
    )
    camera = build_camera(settings, producer=producer, metrics=metrics, frames=still_then_moving)
    run_to_end(camera)
    assert len(producer.frames(TOPICS.frames)) == 4
    assert sample(metrics, "vigil_ingest_frames_gated_total") == 4
    assert producer.statuses(TOPICS.camera_status)[-1].frames_gated == 4


def test_gating_is_off_by_default() -> None:
    assert IngestSettings().motion_threshold is None


def test_metrics_are_served_per_camera_over_http() -> None:
    metrics = IngestMetrics()
    producer = FakeProducer()
    settings = IngestSettings(camera_id="cam-1", source="clip.mp4", fps=10, realtime=False)
    camera = build_camera(settings, producer=producer, metrics=metrics, frames=still_then_moving)
    run_to_end(camera)
    server = serve_metrics(metrics, 0)
    try:
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
    finally:
        server.shutdown()
        server.server_close()
    assert 'vigil_ingest_frames_published_total{camera_id="cam-1"} 8.0' in text
    assert 'vigil_ingest_camera_online{camera_id="cam-1"} 0.0' in text
    for name in ("frames_dropped", "frames_gated", "reconnects"):
        assert f"vigil_ingest_{name}" in text
    assert "vigil_ingest_fps" in text and "vigil_ingest_buffered_frames" in text


def test_a_taken_metrics_port_names_the_setting() -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        with pytest.raises(MetricsPortError, match="VIGIL_INGEST_METRICS_PORT"):
            serve_metrics(IngestMetrics(), taken.getsockname()[1])
