"""Every image, installed as its Dockerfile installs it and started for real.

For each image, the Dockerfile's ``COPY`` steps are repeated into an empty folder and its install
steps into a clean virtualenv (``python -m venv``, no system site-packages): ``pip install
uv==<pin>``, then ``uv pip install ".[<service>]"``. The image passes ``--no-cache-dir``,
``--no-cache`` and ``--system``; here the caches are used, and the virtualenv's python stands in
for the system's. ``scripts/bootstrap.sh`` installs the development environment with the same
uv, so its cache (``~/.cache/uv``) already holds torch: uv links it into each virtualenv in
seconds instead of downloading gigabytes. Then every module of the service is imported there
(torch only in the images that score or train), and each process the image runs is started
against the real servers far enough to show it works: the API answers ``/readyz``, the event
sink and camera status serve their metrics, ingest publishes frames, inference scores frames
from the frames topic into an event, and the trainer's Celery worker runs a quick one_class job
and registers its model. The issue this guards against: the ingest image imported ``httpx``,
which only the ``dev`` extra installed, and could not start.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from minio import Minio
from sqlalchemy.orm import Session, sessionmaker

from tests.dockerfiles import read_dockerfile
from tests.factories import (
    add_job,
    quick_one_class_spec,
    scene_dataset,
    scene_jpeg,
    send_frame,
    send_job,
)
from tests.integration.conftest import ADMIN_KEY
from tests.integration.rtsp import free_tcp_port
from tests.support import ServiceProcess, read_topic, wait_until
from vigil_shared.db.models import Job, Model
from vigil_shared.kafka import make_producer
from vigil_shared.schemas.events import EventMessage
from vigil_shared.schemas.jobs import JobStatus
from vigil_shared.settings import REPO_ROOT, CommonSettings, KafkaSettings
from vigil_shared.topics import Topics

pytestmark = [pytest.mark.slow]
INSTALL_TIMEOUT_S = 900
# What the images pass to keep no cache and to install into the system python; here the caches
# are the point (uv links torch from its cache in seconds), and the virtualenv stands in for the
# system python.
IMAGE_ONLY = {"--no-cache-dir", "--no-cache", "--system"}


def install_image(service: str, root: Path) -> Path:
    """The image's files and its install steps in a clean virtualenv; returns its python."""
    dockerfile = read_dockerfile(service)
    app = root / "app"
    for source, destination in dockerfile.copies:
        copy = app / destination
        copy.parent.mkdir(parents=True, exist_ok=True)
        path = REPO_ROOT / source
        if path.is_dir():
            shutil.copytree(path, copy, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, copy)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    for install in dockerfile.installs:
        args = [a for a in install.args if a not in IMAGE_ONLY]
        # In the image, pip's uv lands on PATH and installs into the system python: here, the
        # virtualenv's are both.
        tool = [str(venv / "bin" / "uv"), "pip"] if install.uv else [str(python), "-m", "pip"]
        target = ["--python", str(python)] if install.uv else []
        done = subprocess.run(
            [*tool, "install", "--quiet", *target, *args],
            cwd=app,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT_S,
            check=False,
        )
        assert done.returncode == 0, (
            f"{' '.join(tool)} install {' '.join(args)} failed:\n" + (done.stderr[-3000:])
        )
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


def import_every_module(python: Path, package: str, tmp_path: Path, *, torch: bool) -> None:
    """Import every module of ``package`` with the image's python; ``torch``: whether the image
    is one that scores or trains (the others must not even import it)."""
    code = (
        "import importlib, pkgutil, sys\n"
        f"import {package}\n"
        f"assert '/site-packages/' in {package}.__file__, {package}.__file__\n"
        f"for m in pkgutil.walk_packages({package}.__path__, '{package}.'):\n"
        "    importlib.import_module(m.name)\n"
        f"assert ('torch' in sys.modules) is {torch}, 'torch imported: {not torch}'\n"
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
    import_every_module(python, "vigil_api", tmp_path, torch=False)
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
    import_every_module(python, "vigil_ingest", tmp_path, torch=False)
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


def test_the_inference_image_scores_frames_into_events(
    tmp_path: Path, start_in: Start, kafka_settings: KafkaSettings, topics: Topics
) -> None:
    python = install_image("inference", tmp_path / "image")
    import_every_module(python, "vigil_inference", tmp_path, torch=True)
    camera = f"image-{uuid.uuid4().hex[:8]}"
    producer = make_producer(kafka_settings)
    for seq in range(6):
        send_frame(producer, topics.frames, camera_id=camera, seq=seq, payload=scene_jpeg(seq))
    producer.flush()
    producer.close()
    port = free_tcp_port()
    inference = start_in(
        python,
        "vigil_inference",
        VIGIL_INFERENCE_GROUP_ID=f"inference-{camera}",
        VIGIL_INFERENCE_DEVICE="cpu",
        VIGIL_INFERENCE_METRICS_PORT=str(port),
        VIGIL_INFERENCE_WARMUP_FRAMES="3",
        VIGIL_INFERENCE_WARMUP_IMAGE_SIZE="64",
        VIGIL_INFERENCE_THRESHOLD="0",  # every scored frame is hot: the 3 after the warm-up open
        VIGIL_INFERENCE_SNAPSHOTS="false",
    )

    def opened() -> list[EventMessage]:
        inference.assert_running()
        records = read_topic(kafka_settings, topics.events, count=1, timeout_s=2)
        return [EventMessage.model_validate_json(r.value) for r in records]

    event = wait_until(opened, timeout_s=180, what=f"an event of {camera} from inference")[0]
    assert (event.camera_id, event.phase, event.model.kind) == (camera, "start", "warmup")
    metrics = fetch(f"http://127.0.0.1:{port}/metrics") or ""
    assert f'vigil_inference_frames_total{{camera_id="{camera}"}}' in metrics
    assert fetch(f"http://127.0.0.1:{port}/readyz") is not None, "inference is not ready"
    assert inference.stop() == 0, inference.log()[-3000:]


def test_the_trainer_image_runs_a_job_from_the_queue(
    tmp_path: Path,
    start_in: Start,
    s3: Minio,
    settings: CommonSettings,
    sessions: sessionmaker[Session],
) -> None:
    python = install_image("trainer", tmp_path / "image")
    import_every_module(python, "vigil_trainer", tmp_path, torch=True)
    dataset = scene_dataset(s3, settings.s3.datasets_bucket)
    port = free_tcp_port()
    worker = start_in(
        python, "vigil_trainer", VIGIL_TRAINER_DEVICE="cpu", VIGIL_TRAINER_METRICS_PORT=str(port)
    )
    job_id = add_job(sessions, spec=quick_one_class_spec(dataset))
    send_job(job_id)

    def finished() -> Job | None:
        worker.assert_running()
        with sessions() as session:
            job = session.get(Job, job_id)
            done = job is not None and job.status not in {JobStatus.QUEUED, JobStatus.RUNNING}
            return job if done else None

    job = wait_until(finished, timeout_s=240, what=f"job {job_id} on the image's worker")
    assert job.status == JobStatus.SUCCEEDED, job.error
    with sessions() as session:
        model = session.get(Model, job.model_id)
        assert model is not None and (model.task, model.stage) == ("one_class", "candidate")
    metrics = fetch(f"http://127.0.0.1:{port}/metrics") or ""
    assert 'vigil_trainer_jobs{status="succeeded"} 1.0' in metrics
    assert worker.stop() == 0, worker.log()[-3000:]
