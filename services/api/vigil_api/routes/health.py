"""Liveness, readiness (every dependency answers) and Prometheus metrics; no key required."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Response, status
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from vigil_api.core.deps import Clients, ClientsDep

router = APIRouter(tags=["health"])


def check_dependencies(clients: Clients) -> dict[str, str]:
    """``ok`` or a one-line reason per dependency."""

    def database() -> None:
        with clients.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def redis() -> None:
        clients.redis.ping()

    def s3() -> None:
        clients.s3.bucket_exists(clients.settings.common.s3.models_bucket)

    checks: dict[str, Callable[[], None]] = {"database": database, "redis": redis, "s3": s3}
    results: dict[str, str] = {}
    for name, check in checks.items():
        try:
            check()
            results[name] = "ok"
        except Exception as exc:  # a readiness probe reports every failure, whatever its type
            results[name] = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
    return results


def _json_example(example: object, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"example": example}}}


READY_EXAMPLE = {"ready": True, "checks": {"database": "ok", "redis": "ok", "s3": "ok"}}
NOT_READY_EXAMPLE = {
    "ready": False,
    "checks": {"database": "ok", "redis": "ConnectionError: Error 111 connecting", "s3": "ok"},
}


@router.get("/healthz", responses={200: _json_example({"status": "ok"}, "The process answers.")})
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    responses={
        200: _json_example(READY_EXAMPLE, "Every dependency answers."),
        503: _json_example(NOT_READY_EXAMPLE, "A dependency is down; its check says why."),
    },
)
def readyz(clients: ClientsDep) -> JSONResponse:
    results = check_dependencies(clients)
    ready = all(v == "ok" for v in results.values())
    code = status.HTTP_200_OK if ready else status.HTTP_503_SERVICE_UNAVAILABLE
    return JSONResponse({"ready": ready, "checks": results}, status_code=code)


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text exposition.",
            "content": {
                "text/plain": {
                    "schema": {"type": "string"},
                    "example": 'vigil_api_requests_total{method="GET",route="/api/v1/events",'
                    'status="200"} 42.0\n',
                }
            },
        }
    },
)
def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
