"""Fixtures shared by every test: paths, the Ped2 dataset, small generated clips."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from vigil_shared.settings import default_datasets_dir

PED2 = default_datasets_dir() / "ucsd-ped2"


@pytest.fixture(scope="session")
def ped2() -> Path:
    """The UCSD Ped2 copy beside the repository; tests that need it skip when it is absent."""
    if not (PED2 / "labels.json").is_file():
        pytest.skip(f"UCSD Ped2 not found at {PED2} (it is read from ../shared/datasets)")
    return PED2


@pytest.fixture(scope="session")
def testsrc_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3-second 10 fps clip from FFmpeg's test source, for tests that need any video."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        pytest.fail("ffmpeg is not installed: run scripts/stack.sh install")
    path = tmp_path_factory.mktemp("clips") / "testsrc.mp4"
    subprocess.run(
        [
            ffmpeg,
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x240:rate=10",
            "-t",
            "3",
            "-pix_fmt",
            "yuv420p",
            "-c:v",
            "libx264",
            str(path),
        ],
        check=True,
    )
    return path
