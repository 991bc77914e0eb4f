"""The push endpoint: ``POST /push/{camera_id}`` with a JPEG or PNG body and the camera's token.

Every refusal says what to fix and publishes nothing: 401 for an unknown camera or a wrong
token (alike, so callers cannot probe which cameras exist), 413 for a body or picture over the
limits, 415 for a body that is not declared JPEG or PNG, 400 for one that does not decode as
what it claims, 429 while the camera's buffer is full. The token is read from the
``Authorization`` header only, never logged, and compared by hash in constant time.
"""

from __future__ import annotations

import io
import logging
import socket
import threading
from typing import Annotated

import uvicorn
from fastapi import FastAPI, Header, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from PIL import Image
from pydantic import BaseModel

from vigil_ingest.metrics import IngestMetrics
from vigil_ingest.push import PushOutcome, PushRoutes
from vigil_shared.schemas.frames import CameraId

log = logging.getLogger(__name__)
FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG"}
MAX_PIXELS = 8192 * 8192  # the largest frame the frame contract allows


class PushPortError(RuntimeError):
    """The push port cannot be bound; the message names the setting to change."""


class PushAccepted(BaseModel):
    camera_id: str
    outcome: PushOutcome


def _refuse(code: int, detail: str, metrics: IngestMetrics, outcome: str) -> HTTPException:
    metrics.push_requests.labels(outcome).inc()
    headers = {"WWW-Authenticate": "Bearer"} if code == status.HTTP_401_UNAUTHORIZED else None
    return HTTPException(code, detail, headers=headers)


async def _read_body(request: Request, *, max_bytes: int, metrics: IngestMetrics) -> bytes:
    too_large = f"the upload is over the {max_bytes} byte limit (VIGIL_INGEST_PUSH_MAX_BYTES)"
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise _refuse(413, too_large, metrics, "too_large")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > max_bytes:  # a chunked upload that lied or said nothing
            raise _refuse(413, too_large, metrics, "too_large")
    return bytes(body)


def decode(body: bytes, *, expected: str) -> Image.Image:
    """The picture in ``body``, fully decoded; ``ValueError`` says why it is not usable."""
    try:
        with Image.open(io.BytesIO(body), formats=[expected]) as image:
            if image.width * image.height > MAX_PIXELS:
                raise OverflowError(f"{image.width}x{image.height} is over {MAX_PIXELS} pixels")
            image.load()
            return image
    except (OSError, SyntaxError, Image.DecompressionBombError) as exc:
        # UnidentifiedImageError and truncated data are OSErrors; PIL raises SyntaxError too.
        raise ValueError(f"the body is not a readable {expected} picture ({exc})") from exc


def _token(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def create_push_app(*, routes: PushRoutes, max_bytes: int, metrics: IngestMetrics) -> FastAPI:
    app = FastAPI(title="Vigil ingest push endpoint", version="0.1.0")

    @app.post("/push/{camera_id}", status_code=status.HTTP_202_ACCEPTED)
    async def push(
        camera_id: CameraId,
        request: Request,
        authorization: Annotated[str | None, Header()] = None,
        content_type: Annotated[str | None, Header()] = None,
    ) -> PushAccepted:
        capture = routes.authorise(camera_id, _token(authorization))
        if capture is None:
            detail = (
                f"no push camera {camera_id} takes this token: send 'Authorization: Bearer "
                "<token>' with the token whose sha256 is in the camera's push:// source"
            )
            raise _refuse(401, detail, metrics, "unauthorised")
        media = (content_type or "").partition(";")[0].strip().lower()
        if media not in FORMATS:
            detail = f"Content-Type {media or 'none'} is not accepted; send image/jpeg or image/png"
            raise _refuse(415, detail, metrics, "unsupported_type")
        body = await _read_body(request, max_bytes=max_bytes, metrics=metrics)
        try:
            image = await run_in_threadpool(decode, body, expected=FORMATS[media])
        except OverflowError as exc:
            raise _refuse(413, f"the picture is too large: {exc}", metrics, "too_large") from exc
        except ValueError as exc:
            raise _refuse(400, str(exc), metrics, "bad_image") from exc
        outcome = await run_in_threadpool(capture.offer, image)
        if outcome is PushOutcome.BUSY:
            metrics.push_requests.labels("busy").inc()
            raise HTTPException(
                status.HTTP_429_TOO_MANY_REQUESTS,
                f"camera {camera_id} has frames waiting to be published; retry in a second",
                headers={"Retry-After": "1"},
            )
        metrics.push_requests.labels(outcome.value).inc()
        return PushAccepted(camera_id=camera_id, outcome=outcome)

    return app


class PushServer:
    """Serves the push app on its own thread; ``close()`` stops it."""

    def __init__(self, app: FastAPI, *, host: str, port: int) -> None:
        self._socket = socket.socket(
            socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM
        )
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._socket.bind((host, port))
        except OSError as exc:
            self._socket.close()
            raise PushPortError(
                f"cannot serve the push endpoint on {host}:{port} ({exc.strerror}); "
                "set VIGIL_INGEST_PUSH_PORT to a free port, or unset it"
            ) from exc
        self.port: int = self._socket.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name="push", daemon=True
        )

    def start(self) -> None:
        self._thread.start()
        log.info("push endpoint served", extra={"port": self.port})

    def close(self, *, timeout_s: float = 5) -> None:
        self._server.should_exit = True
        self._thread.join(timeout_s)
        self._socket.close()
