"""The health server of ingest and inference: liveness, readiness with reasons, and metrics."""

from __future__ import annotations

import socket

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter

from vigil_shared.health import HealthPortError, serve_health


def test_readyz_lists_the_problems_and_metrics_stay_served() -> None:
    registry = CollectorRegistry()
    Counter("vigil_test_things", "Things", registry=registry).inc()
    problems: list[str] = []
    server = serve_health(registry, lambda: problems, port=0, setting="VIGIL_TEST_PORT")
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
        ready = httpx.get(f"{url}/readyz")
        assert (ready.status_code, ready.json()) == (200, {"status": "ready"})
        problems.append("camera a: assigned model m-1 cannot be loaded: tampered")
        degraded = httpx.get(f"{url}/readyz")
        assert degraded.status_code == 503
        assert degraded.json() == {"status": "degraded", "problems": problems}
        assert "vigil_test_things_total 1.0" in httpx.get(f"{url}/metrics").text
    finally:
        server.shutdown()
        server.server_close()


def test_a_taken_port_names_the_setting() -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        with pytest.raises(HealthPortError, match="VIGIL_TEST_PORT"):
            serve_health(
                CollectorRegistry(), list, port=taken.getsockname()[1], setting="VIGIL_TEST_PORT"
            )
