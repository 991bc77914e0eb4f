"""Request ids, request metrics and request bodies' limits, as plain ASGI middleware.

Plain ASGI (not ``BaseHTTPMiddleware``) so the route runs in the same task: the log context
bound here reaches every line the request logs, including those from the thread pool, and
streamed responses (the live event stream) are passed through untouched.

Bodies are checked where they arrive, by wrapping ``receive``: their size is counted chunk by
chunk, so neither ``Transfer-Encoding: chunked`` nor a small ``Content-Length`` gets more than
the route's limit past it, and a JSON body is checked whole (depth, NUL, numbers:
``vigil_shared.schemas.inputs.json_problem``) before FastAPI parses it.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import Message as MimeHeader
from typing import Any

from fastapi.routing import iter_route_contexts
from prometheus_client import Counter, Histogram
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vigil_api.core.problems import (
    REQUEST_ID_HEADER,
    BodyTooLargeError,
    InvalidBodyError,
    problem,
)
from vigil_shared.logging import bind
from vigil_shared.schemas.inputs import json_problem

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


@dataclass(frozen=True)
class BodyLimit:
    """The most bytes a route's request body may have, and the 413's detail when one has more
    (what the limit is, the setting, and what to do)."""

    max_bytes: int
    detail: str


class BodyLimitMiddleware:
    """Refuses a request body over its route's limit with a 413 problem: at once when its
    declared length is over, otherwise as soon as the bytes received pass the limit, so the
    route never gets (nor spools to disk) a byte past it.

    ``routes`` maps (method, route template) to a limit; every other route has ``default``.
    """

    def __init__(
        self, app: ASGIApp, *, default: BodyLimit, routes: Mapping[tuple[str, str], BodyLimit]
    ) -> None:
        self.app = app
        self.default = default
        self.routes = dict(routes)
        self.templates = RouteTemplates()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.routes.get((scope["method"], self.templates(scope)), self.default)
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > limit.max_bytes:
            await _too_large(scope, receive, send, limit)
            return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit.max_bytes:
                    raise BodyTooLargeError(limit.detail)
            return message

        async def send_started(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, send_started)
        except BodyTooLargeError:
            # Routes answer it as a problem; this is for one read outside a route's handlers.
            if started:
                raise
            await _too_large(scope, receive, send, limit)


async def _too_large(scope: Scope, receive: Receive, send: Send, limit: BodyLimit) -> None:
    response = problem(Request(scope), 413, limit.detail, {"Connection": "close"})
    await response(scope, receive, send)


class JsonBodyGuardMiddleware:
    """Reads a JSON request body whole (its size is already bounded by ``BodyLimitMiddleware``)
    and refuses it with a 422 problem naming where it is at fault, before FastAPI's parser (which
    recurses, and would take 100 000 nested arrays down with a ``RecursionError``) sees it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _may_be_json(Headers(scope=scope)):
            await self.app(scope, receive, send)
            return
        read = False

        async def checked() -> Message:
            nonlocal read
            if read:  # the body was handed over; what follows is a disconnect
                return await receive()
            read = True
            chunks = []
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    return message
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    break
            body = b"".join(chunks)
            refused = json_problem(body) if body else None
            if refused is not None:
                raise InvalidBodyError(*refused)
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, checked, send)


def _may_be_json(headers: Headers) -> bool:
    """What FastAPI would parse as JSON: ``application/json``, ``application/*+json``, or a
    body without a content type."""
    content_type = headers.get("content-type")
    if content_type is None:
        return True
    header = MimeHeader()
    header["content-type"] = content_type
    subtype = header.get_content_subtype()
    return header.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )
