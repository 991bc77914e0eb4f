"""The metrics port of every process: liveness, readiness with reasons, and the metrics."""

from __future__ import annotations

import httpx
from prometheus_client import CollectorRegistry, Counter

from vigil_shared.metrics import serve_metrics


def test_readyz_lists_the_problems_and_metrics_stay_served() -> None:
    registry = CollectorRegistry()
    Counter("vigil_test_things", "Things", registry=registry).inc()
    problems: list[str] = []
    server = serve_metrics(registry, 0, variable="VIGIL_TEST_PORT", readiness=lambda: problems)
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


def test_a_process_with_nothing_to_report_is_ready() -> None:
    server = serve_metrics(CollectorRegistry(), 0, variable="VIGIL_TEST_PORT")
    try:
        ready = httpx.get(f"http://127.0.0.1:{server.server_port}/readyz")
        assert (ready.status_code, ready.json()) == (200, {"status": "ready"})
    finally:
        server.shutdown()
        server.server_close()
