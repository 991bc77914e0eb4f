"""Fixtures shared by every test: paths, the Ped2 dataset, small generated clips; and the
markers that follow from where a test lives and what it needs."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from vigil_shared.settings import default_datasets_dir

PED2 = default_datasets_dir() / "ucsd-ped2"
INTEGRATION = Path(__file__).parent / "integration"


@pytest.hookimpl(tryfirst=True)  # before pytest's own hook deselects by ``-m``
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test under ``tests/integration`` ``integration`` (a ``pytestmark`` in a
    conftest marks nothing), and skip ``gpu`` tests where torch sees no CUDA device."""
    for item in items:
        if item.path.is_relative_to(INTEGRATION):
            item.add_marker(pytest.mark.integration)
    gpu = [item for item in items if item.get_closest_marker("gpu") is not None]
    if gpu and not _cuda_available():
        skip = pytest.mark.skip(reason="needs a CUDA device: torch.cuda.is_available() is False")
        for item in gpu:
            item.add_marker(skip)


def _cuda_available() -> bool:
    import torch  # here, not at the top: most runs collect no gpu test and need no torch

    return bool(torch.cuda.is_available())


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
