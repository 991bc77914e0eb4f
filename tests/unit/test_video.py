"""Ingest reads files and streams through FFmpeg, sampled to the target rate."""

from __future__ import annotations

import itertools
import re
import time
from pathlib import Path

import pytest

from vigil_ingest.publisher import encode_jpeg
from vigil_ingest.video import SourceError, iter_frames


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


def test_unreachable_stream_fails_fast_with_the_url() -> None:
    start = time.monotonic()
    with pytest.raises(SourceError, match=re.escape("rtsp://127.0.0.1:1/none")):
        next(iter_frames("rtsp://127.0.0.1:1/none", fps=5))
    assert time.monotonic() - start < 30


def test_resolution_is_capped_keeping_aspect(testsrc_clip: Path) -> None:
    frame = next(iter_frames(str(testsrc_clip), fps=5))
    capped = encode_jpeg(frame.image, max_size=(160, 160), quality=80)
    assert (capped.width, capped.height) == (160, 120)
