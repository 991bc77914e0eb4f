"""The torch-free images, installed as their Dockerfiles install them and started for real.

For each image, the Dockerfile's ``COPY`` steps are repeated into an empty folder and its
``pip install`` into a clean virtualenv (``python -m venv``, no system site-packages; pip's cache
is used, where the Dockerfile passes ``--no-cache-dir`` to keep the image small). Then every
module of the service is imported there, and each process the image runs is started against the
real servers far enough to show it works: the API answers ``/readyz``, the event sink and camera
status serve their metrics, ingest publishes frames. The issue this guards against: the ingest
image imported ``httpx``, which only the ``dev`` extra installed, and could not start.

The torch images (inference, trainer) are checked by tests/unit/test_dependencies.py instead,
against their declared extras: installing torch into a fresh virtualenv per run takes gigabytes.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.dockerfiles import read_dockerfile
from tests.integration.conftest import ADMIN_KEY
from tests.integration.rtsp import free_tcp_port
from tests.support import ServiceProcess, read_topic, wait_until
from vigil_shared.settings import REPO_ROOT, KafkaSettings
from vigil_shared.topics import Topics

pytestmark = [pytest.mark.slow]
INSTALL_TIMEOUT_S = 900


def install_image(service: str, root: Path) -> Path:
    """The image's files and its ``pip install`` in a clean virtualenv; returns its python."""
    dockerfile = read_dockerfile(service)
    app = root / "app"
    for source, destination in dockerfile.copies:
        target = app / destination
        target.parent.mkdir(parents=True, exist_ok=True)
        path = REPO_ROOT / source
        if path.is_dir():
            shutil.copytree(path, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, target)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    args = [a for a in dockerfile.pip_args if a != "--no-cache-dir"]
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", *args],
        cwd=app,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, f"pip install {' '.join(args)} failed:\n{done.stderr[-3000:]}"
    return python


def clean_env(**overrides: str) -> dict[str, str]:
    """This environment (the test servers' settings) without the checkout on PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    env.update(overrides)
    return env


def run_python(python: Path, code: str, tmp_path: Path) -> str:
    done = subprocess.run(
        [str(python), "-c", code],
        cwd=tmp_path,  # not the checkout: its folders must not stand in for the installed code
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def import_every_module(python: Path, package: str, tmp_path: Path) -> None:
    code = (
        "import importlib, pkgutil, sys\n"
        f"import {package}\n"
        f"assert '/site-packages/' in {package}.__file__, {package}.__file__\n"
        f"for m in pkgutil.walk_packages({package}.__path__, '{package}.'):\n"
        "    importlib.import_module(m.name)\n"
        "assert 'torch' not in sys.modules, 'a torch-free image imported torch'\n"
        "print('ok')\n"
    )
    assert run_python(python, code, tmp_path).strip() == "ok"


Start = Callable[..., ServiceProcess]


@pytest.fixture
def start_in(tmp_path: Path) -> Iterator[Start]:
    """Start a module with another python (the image's); each is stopped after the test."""
    started: list[ServiceProcess] = []

    def start(python: Path, module: str, **env: str) -> ServiceProcess:
        log_path = tmp_path / f"{module}-{len(started)}.log"
        service = ServiceProcess(
            module, env=clean_env(**env), log_path=log_path, python=str(python)
        )
        started.append(service)
        return service

    yield start
    for service in started:
        service.stop()


def fetch(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            body: bytes = response.read()
            return body.decode()
    except OSError:
        return None


def test_the_api_image_serves_and_runs_its_consumers(
    tmp_path: Path, start_in: Start, topics: Topics
) -> None:
    python = install_image("api", tmp_path / "image")
    import_every_module(python, "vigil_api", tmp_path)
    port, sink_port, status_port = free_tcp_port(), free_tcp_port(), free_tcp_port()
    api = start_in(python, "vigil_api", VIGIL_API_PORT=str(port), VIGIL_API_ADMIN_KEY=ADMIN_KEY)
    sink = start_in(
        python, "vigil_api.consumers.sink_main", VIGIL_API_SINK_METRICS_PORT=str(sink_port)
    )
    status = start_in(
        python,
        "vigil_api.consumers.camera_status_main",
        VIGIL_API_CAMERA_STATUS_METRICS_PORT=str(status_port),
    )
    for process, url, expected in (
        (api, f"http://127.0.0.1:{port}/readyz", '"ready":true'),
        (sink, f"http://127.0.0.1:{sink_port}/metrics", 'consumer="event-sink"'),
        (status, f"http://127.0.0.1:{status_port}/metrics", 'consumer="camera-status"'),
    ):

        def answered(process: ServiceProcess = process, url: str = url) -> str | None:
            process.assert_running()
            return fetch(url)

        body = wait_until(answered, timeout_s=90, what=f"{process.module} at {url}")
        assert expected in body
    for process in (sink, status):
        assert process.stop() == 0, process.log()[-3000:]
    # Uvicorn shuts down cleanly, then re-raises the signal so its exit says what stopped it.
    assert api.stop() in {0, -signal.SIGTERM}, api.log()[-3000:]
    assert "Application shutdown complete" in api.log()


def test_the_ingest_image_publishes_frames(
    tmp_path: Path, start_in: Start, topics: Topics, testsrc_clip: Path
) -> None:
    python = install_image("ingest", tmp_path / "image")
    import_every_module(python, "vigil_ingest", tmp_path)
    ingest = start_in(
        python,
        "vigil_ingest",
        VIGIL_INGEST_CAMERA_ID="image-test",
        VIGIL_INGEST_SOURCE=str(testsrc_clip),
        VIGIL_INGEST_MAX_FRAMES="4",
        VIGIL_INGEST_REALTIME="false",
    )
    code = ingest.process.wait(timeout=120)
    assert code == 0, ingest.log()[-3000:]
    records = read_topic(KafkaSettings(), topics.frames, count=4)
    assert [r.key for r in records] == [b"image-test"] * 4
