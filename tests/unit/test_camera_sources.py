"""Camera source checks: which URLs and paths a camera may be registered with, and redaction."""

from __future__ import annotations

import re

import pytest

from vigil_api.domain.camera_sources import check_source, file_outside_root
from vigil_shared.cameras.sources import redact


@pytest.mark.parametrize(
    "source",
    [
        "rtsp://10.0.0.7:554/Streaming/Channels/101",
        "RTSPS://cam.example.com/main",
        "rtmp://media.local/live/lobby",
        "http://cam.local/mjpg/video.mjpg",
        "https://user:pass@cam.example.com/stream.m3u8",
        "rtsp://[fe80::1]:8554/main",
        "/datasets/ucsd-ped2/test/Test002.mp4",
    ],
)
def test_streams_and_absolute_paths_are_accepted(source: str) -> None:
    assert check_source(source) == source


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("javascript:alert(1)", "scheme 'javascript' is not allowed"),
        ("data:video/mp4;base64,AAAA", "scheme 'data' is not allowed"),
        ("gopher://old.example.com/", "scheme 'gopher' is not allowed"),
        ("relative/clip.mp4", "is not allowed"),
        ("http:///no-host", "the URL has no host"),
        ("rtsp://[fe80::1/main", "not a valid URL"),
        ("rtsp://cam/main\n", "control characters"),
        ("/data/../../etc/shadow", "'..'"),
    ],
)
def test_other_sources_are_refused_with_the_reason(source: str, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        check_source(source)


def test_file_sources_need_a_root_and_must_stay_under_it() -> None:
    assert file_outside_root("rtsp://cam/main", None) is None
    assert "VIGIL_API_CAMERA_FILE_ROOT" in (file_outside_root("/x.mp4", None) or "")
    assert file_outside_root("/datasets/a/b.mp4", "/datasets") is None
    assert file_outside_root("/datasets-private/b.mp4", "/datasets") is not None


@pytest.mark.parametrize(
    ("source", "shown"),
    [
        ("rtsp://admin:hunter2@cam:554/main", "rtsp://admin:***@cam:554/main"),
        ("rtsp://admin@cam/main", "rtsp://admin@cam/main"),
        ("https://cam/x?token=1", "https://cam/x?token=1"),
        ("/datasets/clip.mp4", "/datasets/clip.mp4"),
    ],
)
def test_passwords_are_redacted(source: str, shown: str) -> None:
    assert redact(source) == shown
