"""Request ids and request metrics, as plain ASGI middleware.

Plain ASGI (not ``BaseHTTPMiddleware``) so the route runs in the same task: the log context
bound here reaches every line the request logs, including those from the thread pool, and
streamed responses (the live event stream) are passed through untouched.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

from fastapi.routing import iter_route_contexts
from prometheus_client import Counter, Histogram
from starlette.datastructures import Headers, MutableHeaders
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vigil_api.core.problems import REQUEST_ID_HEADER
from vigil_shared.logging import bind

# What a proxy or client may send as its own id; anything else is replaced, never echoed.
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

REQUESTS = Counter("vigil_api_requests", "HTTP requests answered", ["method", "route", "status"])
LATENCY = Histogram(
    "vigil_api_request_seconds",
    "Time to the response's first byte, by route template",
    ["method", "route"],
    buckets=(0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


def request_id_from(headers: Headers) -> str:
    presented = headers.get(REQUEST_ID_HEADER)
    if presented is not None and _VALID_REQUEST_ID.fullmatch(presented):
        return presented
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """Takes a valid ``X-Request-ID`` or makes one; returns it and binds it into the logs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(Headers(scope=scope))
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if REQUEST_ID_HEADER not in headers:
                    headers.append(REQUEST_ID_HEADER, request_id)
            await send(message)

        with bind(request_id=request_id):
            await self.app(scope, receive, send_with_id)


class RouteTemplates:
    """Maps a request to its route's path template (``/api/v1/events/{event_id}``), so metrics
    have one series per route; every unmatched path shares one label (scanners cannot blow up
    the series count). Built from the app's routes on first use."""

    def __init__(self) -> None:
        self._routes: list[tuple[re.Pattern[str], frozenset[str], str]] | None = None

    def _build(self, app: Any) -> list[tuple[re.Pattern[str], frozenset[str], str]]:
        routes = []
        for context in iter_route_contexts(app.routes):
            if context.path is None:
                continue
            pattern, _, _ = compile_path(str(context.path))
            routes.append((pattern, frozenset(context.methods or ()), str(context.path)))
        return routes

    def __call__(self, scope: Scope) -> str:
        if self._routes is None:
            self._routes = self._build(scope["app"])
        path, method = scope["path"], scope["method"]
        fallback = "unmatched"
        for pattern, methods, template in self._routes:
            if pattern.match(path):
                if method in methods:
                    return template
                fallback = template  # a 405 still belongs to the route
        return fallback


class MetricsMiddleware:
    """Counts requests by route template, method and status; times them to the first byte."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.templates = RouteTemplates()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = self.templates(scope)
        started = time.perf_counter()
        status = 500  # an exception before the response starts is answered with a 500

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                LATENCY.labels(scope["method"], route).observe(time.perf_counter() - started)
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        finally:
            REQUESTS.labels(scope["method"], route, str(status)).inc()
