"""The API as a real server process on a free port (``python -m vigil_api``, as up.sh runs it),
for clients that must talk HTTP to it: the CLI and the README's commands."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support import ServiceProcess, service_env, wait_until
from vigil_shared.kafka import ensure_topics
from vigil_shared.settings import KafkaSettings, S3Settings
from vigil_shared.storage import make_s3_client


@dataclass(frozen=True)
class RunningApi:
    url: str
    process: ServiceProcess
    env: dict[str, str]
    """The environment it runs with (test database, buckets, topic namespace), for the other
    services a test starts beside it."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _ready(url: str, process: ServiceProcess) -> bool:
    process.assert_running()
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def start_api(log_dir: Path, **overrides: str) -> RunningApi:
    """Start the API in a topic namespace of its own (created first) and wait until ready."""
    namespace = f"t{uuid.uuid4().hex[:10]}."
    kafka = KafkaSettings(topic_namespace=namespace)
    ensure_topics(kafka, kafka.topics.all(), compacted=kafka.topics.compacted())
    port = free_port()
    env = service_env(VIGIL_KAFKA_TOPIC_NAMESPACE=namespace, VIGIL_API_PORT=str(port), **overrides)
    process = ServiceProcess("vigil_api", env=env, log_path=log_dir / "api.log")
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: _ready(url, process), timeout_s=90, what="the API to answer /readyz")
    return RunningApi(url=url, process=process, env=env)


@contextmanager
def own_models_bucket() -> Iterator[str]:
    """A models bucket for this module alone (``VIGIL_S3_MODELS_BUCKET`` while it runs): other
    tests import weights into the shared test bucket, and weights decide whether a job is
    accepted. Emptied and removed afterwards."""
    bucket = f"vigil-test-models-{uuid.uuid4().hex[:8]}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VIGIL_S3_MODELS_BUCKET", bucket)
        yield bucket
    s3 = make_s3_client(S3Settings())
    if s3.bucket_exists(bucket):
        for obj in s3.list_objects(bucket, recursive=True):
            s3.remove_object(bucket, obj.object_name or "")
        s3.remove_bucket(bucket)
