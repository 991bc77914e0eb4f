"""Health, readiness and metrics answer without a key and tell which dependency is down."""

from __future__ import annotations

from fastapi.testclient import TestClient

from vigil_api.routes.health import check_dependencies


def test_ready_when_every_dependency_answers(api: TestClient) -> None:
    assert api.get("/healthz").json() == {"status": "ok"}
    response = api.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "ready": True,
        "checks": {"database": "ok", "redis": "ok", "s3": "ok"},
    }


def test_readiness_names_the_dependency_that_is_down(api: TestClient) -> None:
    clients = api.app.state.clients  # type: ignore[attr-defined]
    clients.redis.connection_pool.connection_kwargs["port"] = 1
    clients.redis.connection_pool.disconnect()
    results = check_dependencies(clients)
    assert results["database"] == "ok" and results["s3"] == "ok"
    assert results["redis"].startswith("ConnectionError")
    response = api.get("/readyz")
    assert response.status_code == 503
    assert response.json()["ready"] is False


def test_metrics_are_prometheus_text(api: TestClient) -> None:
    response = api.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "python_info" in response.text


def test_health_readiness_and_metrics_need_no_key(anonymous: TestClient) -> None:
    for path in ("/healthz", "/readyz", "/metrics"):
        assert anonymous.get(path).status_code == 200, path
