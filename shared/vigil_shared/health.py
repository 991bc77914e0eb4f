"""The small HTTP server of a worker process: ``/healthz``, ``/readyz`` and Prometheus metrics.

Ingest and inference have no web API, but an operator (and compose's healthcheck) must see
when they run degraded: a model that cannot be loaded, an API key the API refuses. Each passes
a ``Readiness`` callable that lists what is wrong in words; ``/readyz`` answers 200
``{"status": "ready"}`` when it lists nothing and 503 ``{"status": "degraded", "problems": [...]}``
otherwise. ``/healthz`` answers 200 while the process serves at all. Any other path is the
metrics, as ``prometheus_client.start_http_server`` serves them.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

log = logging.getLogger(__name__)
Readiness = Callable[[], list[str]]
"""What keeps the process from doing all it should, one line each; empty: ready."""
StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class HealthPortError(RuntimeError):
    """The health and metrics port cannot be bound; the message names the setting to change."""


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # the base class's signature
        """Probes every few seconds would flood the log."""


def health_app(
    registry: CollectorRegistry, readiness: Readiness
) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    metrics = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/healthz":
            return _json(start_response, "200 OK", {"status": "ok"})
        if path == "/readyz":
            problems = readiness()
            if problems:
                body = {"status": "degraded", "problems": problems}
                return _json(start_response, "503 Service Unavailable", body)
            return _json(start_response, "200 OK", {"status": "ready"})
        result: Iterable[bytes] = metrics(environ, start_response)
        return result

    return app


def _json(start_response: StartResponse, status: str, body: dict[str, Any]) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    )
    return [data]


def serve_health(
    registry: CollectorRegistry,
    readiness: Readiness,
    *,
    port: int,
    setting: str,
    host: str = "0.0.0.0",  # metrics were always served on every interface
) -> WSGIServer:
    """Serve on ``port`` (0: any free one, logged) on a daemon thread; ``shutdown()`` and
    ``server_close()`` stop it. ``setting`` names the variable that sets the port."""
    try:
        server = make_server(
            host,
            port,
            health_app(registry, readiness),
            ThreadingWSGIServer,
            handler_class=_QuietHandler,
        )
    except OSError as exc:
        raise HealthPortError(
            f"cannot serve metrics and health on port {port} ({exc.strerror}); "
            f"set {setting} to a free port, or unset it"
        ) from exc
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    log.info("metrics and health served", extra={"port": server.server_port})
    return server
