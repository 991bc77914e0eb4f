"""Settings refuse unsafe or malformed configuration with messages naming the variable."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from vigil_shared.settings import CommonSettings, KafkaSettings
from vigil_shared.topics import Topics


def test_production_refuses_placeholder_s3_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_ENV", "production")
    with pytest.raises(ValidationError, match="VIGIL_S3_SECRET_KEY"):
        CommonSettings()


def test_production_refuses_placeholder_database_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VIGIL_ENV", "production")
    monkeypatch.setenv("VIGIL_S3_SECRET_KEY", "a-real-secret-of-some-length")
    with pytest.raises(ValidationError, match="VIGIL_DATABASE_URL"):
        CommonSettings()


def test_production_accepts_real_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_ENV", "production")
    monkeypatch.setenv("VIGIL_S3_SECRET_KEY", "a-real-secret-of-some-length")
    monkeypatch.setenv("VIGIL_DATABASE_URL", "postgresql+psycopg://vigil:s3cr3t@db:5432/vigil")
    assert CommonSettings().database.url.get_secret_value().endswith("@db:5432/vigil")


def test_topic_namespace_prefixes_every_topic(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_KAFKA_TOPIC_NAMESPACE", "site-a.")
    topics = KafkaSettings().topics
    assert topics.frames == "site-a.vigil.frames.v1"
    assert all(t.startswith("site-a.vigil.") for t in topics.all())
    assert Topics().events == "vigil.events.v2"


def test_malformed_topic_namespace_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_KAFKA_TOPIC_NAMESPACE", "no dot")
    with pytest.raises(ValidationError, match="topic_namespace"):
        KafkaSettings()


@pytest.mark.parametrize(("replicas", "expected"), [("1", 1), ("2", 1), ("3", 2), ("5", 4)])
def test_one_broker_may_fail_without_stopping_writes_by_default(
    monkeypatch: pytest.MonkeyPatch, replicas: str, expected: int
) -> None:
    monkeypatch.setenv("VIGIL_KAFKA_REPLICATION_FACTOR", replicas)
    assert KafkaSettings().min_insync == expected


def test_min_insync_replicas_beyond_the_replicas_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VIGIL_KAFKA_REPLICATION_FACTOR", "3")
    monkeypatch.setenv("VIGIL_KAFKA_MIN_INSYNC_REPLICAS", "2")
    assert KafkaSettings().min_insync == 2
    monkeypatch.setenv("VIGIL_KAFKA_MIN_INSYNC_REPLICAS", "4")
    with pytest.raises(ValidationError, match="VIGIL_KAFKA_MIN_INSYNC_REPLICAS"):
        KafkaSettings()
