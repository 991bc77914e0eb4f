"""``/healthz`` and ``/readyz`` beside a process's metrics (``metrics.serve_metrics`` serves them).

Ingest and inference have no web API, but an operator (and compose's healthcheck) must see when
they run degraded: a model that cannot be loaded, an API key the API refuses. Each passes a
``Readiness`` callable that lists what is wrong in words; ``/readyz`` answers 200
``{"status": "ready"}`` when it lists nothing and 503 ``{"status": "degraded", "problems": [...]}``
otherwise. ``/healthz`` answers 200 while the process serves at all. Any other path is the
metrics, as ``prometheus_client.start_http_server`` serves them.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

Readiness = Callable[[], list[str]]
"""What keeps the process from doing all it should, one line each; empty: ready."""
StartResponse = Callable[[str, list[tuple[str, str]]], Any]
App = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def ready() -> list[str]:
    """The readiness of a process with nothing to report beyond answering."""
    return []


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # the base class's signature
        """Probes every few seconds would flood the log."""


def health_app(registry: CollectorRegistry, readiness: Readiness) -> App:
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


def serve_app(
    registry: CollectorRegistry,
    readiness: Readiness,
    *,
    port: int,
    host: str = "0.0.0.0",  # as prometheus_client's start_http_server: every interface
) -> WSGIServer:
    """``health_app`` served on ``port`` by a daemon thread; raises ``OSError`` when the port
    cannot be bound."""
    server = make_server(
        host,
        port,
        health_app(registry, readiness),
        ThreadingWSGIServer,
        handler_class=_QuietHandler,
    )
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
