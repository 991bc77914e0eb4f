"""Frames out of anything FFmpeg opens (files, RTSP, RTMP, HTTP), through PyAV.

Every blocking FFmpeg call is bounded: opening by ``open_s`` and each read by ``read_s``, so a
camera that stops sending surfaces as a ``SourceError`` the caller can reconnect on, and a stop
request never waits on a dead socket for longer than that.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

import av
from PIL import Image

from vigil_ingest.sources import Sampler, SourceError, SourceFrame, check_exists, kind_of
from vigil_shared.cameras.sources import SourceKind, redact


@dataclass(frozen=True)
class StreamOptions:
    open_s: float = 10.0
    read_s: float = 5.0
    probe_s: float = 1.0  # how long FFmpeg analyses a stream before the first frame
    rtsp_transport: Literal["udp", "tcp"] = "udp"


def _container_options(source: str, options: StreamOptions) -> dict[str, str]:
    if kind_of(source) is not SourceKind.STREAM:
        return {}
    scheme = urlsplit(source).scheme.lower()
    result = {"analyzeduration": str(int(options.probe_s * 1e6))}
    # FFmpeg's socket timeout (µs) gives a clear "timed out" error; only RTSP and HTTP have it
    # under this name (for RTMP "timeout" means listen for a publisher instead of connecting).
    if scheme in {"rtsp", "rtsps", "http", "https"}:
        result["timeout"] = str(int(options.read_s * 1e6))
    if scheme in {"rtsp", "rtsps"}:
        result["rtsp_transport"] = options.rtsp_transport
    return result


def _reason(error: av.FFmpegError) -> str:
    return str(error.strerror or error)


def _open(source: str, options: StreamOptions) -> av.container.InputContainer:
    check_exists(source)
    try:
        return av.open(
            source,
            container_options=_container_options(source, options),
            timeout=(options.open_s, options.read_s),
        )
    except av.ExitError as exc:  # PyAV's own deadline: FFmpeg had no answer in time
        raise SourceError(
            f"cannot open {redact(source)}: no answer in {options.open_s:g} s"
        ) from exc
    except av.FFmpegError as exc:
        raise SourceError(f"cannot open {redact(source)}: {_reason(exc)}") from exc
    except OSError as exc:
        raise SourceError(f"cannot open {redact(source)}: {exc}") from exc


def _read_error(source: str, exc: av.FFmpegError, options: StreamOptions) -> SourceError:
    if isinstance(exc, av.ExitError | av.error.TimeoutError):
        return SourceError(f"no frames from {redact(source)} for {options.read_s:g} s")
    return SourceError(f"reading {redact(source)} failed: {_reason(exc)}")


def iter_frames(
    source: str, *, fps: float, loop: bool = False, options: StreamOptions | None = None
) -> Generator[SourceFrame, None, None]:
    """Decode ``source`` and yield frames on a ``1/fps`` grid of source time.

    Ends when a file (``loop`` off) or a stream ends; raises ``SourceError`` when the source cannot
    be opened or read. Closing the iterator closes the container.
    """
    options = options or StreamOptions()
    sampler = Sampler(fps)
    base = 0.0
    while True:
        last = 0.0
        with _open(source, options) as container:
            if not container.streams.video:
                raise SourceError(f"{redact(source)} has no video stream")
            stream = container.streams.video[0]
            try:
                for frame in container.decode(stream):
                    last = frame.time if frame.time is not None else last
                    if not sampler.keep(base + last):
                        continue
                    # PyAV's to_image() is untyped; it returns a PIL image.
                    image: Image.Image = frame.to_image()  # type: ignore[no-untyped-call]
                    yield SourceFrame(image=image, offset_s=base + last)
            except av.FFmpegError as exc:
                raise _read_error(source, exc, options) from exc
            rate = float(stream.average_rate) if stream.average_rate else fps
        if not loop:
            return
        base += last + 1.0 / rate
