"""Ingest reads files and streams through FFmpeg, sampled to the target rate."""

from __future__ import annotations

import itertools
import re
import socket
import time
from pathlib import Path

import pytest

from vigil_ingest.publisher import cap_resolution
from vigil_ingest.sources import SourceError
from vigil_ingest.video import StreamOptions, iter_frames


def test_file_is_sampled_to_the_target_fps(testsrc_clip: Path) -> None:
    frames = list(iter_frames(str(testsrc_clip), fps=5))
    assert len(frames) == 15  # 3 s at 10 fps, kept every other frame
    offsets = [f.offset_s for f in frames]
    assert offsets == sorted(offsets)
    assert all(0.19 < b - a < 0.21 for a, b in itertools.pairwise(offsets))


def test_loop_continues_with_increasing_offsets(testsrc_clip: Path) -> None:
    frames = []
    for frame in iter_frames(str(testsrc_clip), fps=2, loop=True):
        frames.append(frame)
        if len(frames) == 10:
            break
    offsets = [f.offset_s for f in frames]
    assert offsets == sorted(offsets) and offsets[-1] > 3.0


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        next(iter_frames(str(tmp_path / "missing.mp4"), fps=5))


def test_unreachable_stream_fails_fast_with_the_url_and_the_cause() -> None:
    start = time.monotonic()
    expected = "cannot open rtsp://127.0.0.1:1/none: Connection refused"
    with pytest.raises(SourceError, match=re.escape(expected)):
        next(iter_frames("rtsp://127.0.0.1:1/none", fps=5))
    assert time.monotonic() - start < 30


def test_a_password_in_the_url_never_reaches_the_message() -> None:
    with pytest.raises(SourceError) as info:
        next(iter_frames("rtsp://admin:hunter2@127.0.0.1:1/none", fps=5))
    assert "hunter2" not in str(info.value)
    assert "rtsp://admin:***@127.0.0.1:1/none" in str(info.value)


def test_http_server_that_never_answers_times_out_with_a_clear_reason() -> None:
    with socket.socket() as listener:  # accepts connections, never says a word
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/cam.mjpg"
        start = time.monotonic()
        with pytest.raises(SourceError, match=re.escape(url)):
            next(iter_frames(url, fps=5, options=StreamOptions(open_s=1, read_s=1)))
    assert time.monotonic() - start < 10


def test_resolution_is_capped_keeping_aspect(testsrc_clip: Path) -> None:
    frame = next(iter_frames(str(testsrc_clip), fps=5))
    capped = cap_resolution(frame.image, max_size=(160, 160))
    assert (capped.width, capped.height) == (160, 120)
