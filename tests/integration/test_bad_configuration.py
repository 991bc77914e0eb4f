"""A wrong credential, a server that is not there or a missing file: one clear line each."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy.engine import make_url

from tests.support import service_env
from vigil_api.core.settings import ApiSettings
from vigil_api.main import create_app
from vigil_shared.db.engine import DatabaseUnavailableError, make_engine, wait_for_database
from vigil_shared.kafka import KafkaUnavailableError, ensure_topics, make_producer
from vigil_shared.settings import CommonSettings, DatabaseSettings, KafkaSettings
from vigil_shared.storage import StorageError, ensure_buckets, make_s3_client

UNREACHABLE_KAFKA = {
    "VIGIL_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
    "VIGIL_KAFKA_BOOTSTRAP_TIMEOUT_MS": "2000",
}


def test_wrong_s3_secret_names_the_variables(settings: CommonSettings) -> None:
    wrong = settings.s3.model_copy(update={"secret_key": SecretStr("not-the-secret")})
    with pytest.raises(StorageError, match="VIGIL_S3_SECRET_KEY"):
        ensure_buckets(make_s3_client(wrong), wrong)


def test_s3_not_listening_names_the_endpoint(settings: CommonSettings) -> None:
    wrong = settings.s3.model_copy(update={"endpoint": "127.0.0.1:1"})
    with pytest.raises(StorageError, match=r"unreachable at 127\.0\.0\.1:1; .*VIGIL_S3_ENDPOINT"):
        ensure_buckets(make_s3_client(wrong), wrong)


def test_wrong_database_password_names_the_variable(settings: CommonSettings) -> None:
    url = make_url(settings.database.url.get_secret_value()).set(password="wrong")
    wrong = DatabaseSettings(url=SecretStr(url.render_as_string(hide_password=False)))
    engine = make_engine(wrong)
    with pytest.raises(DatabaseUnavailableError, match=r"password.*VIGIL_DATABASE_URL") as info:
        wait_for_database(engine, timeout_s=1)
    assert "wrong" not in str(info.value), "the password must not be echoed"
    engine.dispose()


def test_unreachable_kafka_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in UNREACHABLE_KAFKA.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(KafkaUnavailableError, match=r"127\.0\.0\.1:1.*VIGIL_KAFKA_BOOTSTRAP"):
        make_producer(KafkaSettings())


def test_more_replicas_than_brokers_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """The stack's single broker cannot hold a topic replicated three times."""
    monkeypatch.setenv("VIGIL_KAFKA_TOPIC_NAMESPACE", f"rf{uuid.uuid4().hex[:8]}.")
    monkeypatch.setenv("VIGIL_KAFKA_REPLICATION_FACTOR", "3")
    kafka = KafkaSettings()
    with pytest.raises(KafkaUnavailableError, match="VIGIL_KAFKA_REPLICATION_FACTOR=3; lower it"):
        ensure_topics(kafka, kafka.topics.all(), compacted=kafka.topics.compacted())


def test_api_refuses_to_start_with_wrong_s3_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VIGIL_S3_SECRET_KEY", "not-the-secret")
    with (
        pytest.raises(StorageError, match="refused the credentials"),
        TestClient(create_app(ApiSettings())),
    ):
        pass


def run_module(module: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module],
        env=service_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_ingest_with_a_missing_clip_exits_with_one_clear_line(tmp_path: Path) -> None:
    missing = tmp_path / "ucsd-ped2" / "Test001.mp4"
    result = run_module("vigil_ingest", VIGIL_INGEST_SOURCE=str(missing))
    assert result.returncode == 2
    assert f"ingest: video file '{missing}' does not exist" in result.stderr.splitlines()


def test_inference_without_kafka_exits_with_one_clear_line() -> None:
    result = run_module("vigil_inference", **UNREACHABLE_KAFKA)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("inference:")]
    assert lines == [
        "inference: Kafka is unreachable at 127.0.0.1:1; start it (scripts/stack.sh start) "
        "or set VIGIL_KAFKA_BOOTSTRAP_SERVERS"
    ]
