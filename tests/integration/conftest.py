"""Integration fixtures: the real servers from scripts/stack.sh, isolated per test run.

Tests use their own PostgreSQL database (``vigil_test_<pid>``), Redis database (1-15), S3
buckets and a Kafka topic namespace per test, so they never read or disturb a running
development stack or another test run. Every table is emptied before each test
(``clean_database``), so no test sees another's rows. Every test here is marked
``integration`` by the collection hook in ``tests/conftest.py``.
"""

from __future__ import annotations

import os
import uuid
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from kafka import KafkaAdminClient
from kafka.errors import KafkaError
from minio import Minio
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from tests.support import ServiceProcess, service_env
from vigil_api.core.settings import ApiSettings
from vigil_api.main import create_app
from vigil_shared.db.engine import make_engine, make_session_factory
from vigil_shared.db.migrate import upgrade
from vigil_shared.db.models import Base
from vigil_shared.kafka import ensure_topics
from vigil_shared.settings import CommonSettings, DatabaseSettings, KafkaSettings
from vigil_shared.storage import ensure_buckets, make_s3_client
from vigil_shared.topics import Topics

# One database per test run, so concurrent runs against one stack do not drop each other's.
TEST_DATABASE = f"vigil_test_{os.getpid()}"
# The API's bootstrap admin key in tests; the ``api`` client sends it with every request.
ADMIN_KEY = f"test-admin-{uuid.uuid4().hex}"


# pytest-xdist's worker ("gw0", "gw1"...), when the run is spread over processes; each has its
# own database (its pid), Redis database and buckets (retention deletes what its database does
# not know of: another worker's objects would be orphans to it).
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
_WORKER_SUFFIX = f"-{_WORKER}" if _WORKER else ""


def _redis_database() -> int:
    """Redis database 1-15, so that one run's Celery queue is not drained by another run's
    worker: by pid, or under xdist by the run's id plus the worker's number (distinct for up to
    15 workers of one run)."""
    if not _WORKER:
        return 1 + os.getpid() % 15
    run = zlib.crc32(os.environ.get("PYTEST_XDIST_TESTRUNUID", "").encode())
    return 1 + (run + int(_WORKER.removeprefix("gw"))) % 15


def _admin_url(url: str) -> str:
    admin = make_url(url).set(drivername="postgresql", database="postgres")
    return admin.render_as_string(hide_password=False)


def _recreate_database(url: str) -> str:
    with psycopg.connect(_admin_url(url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{TEST_DATABASE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{TEST_DATABASE}"')
    return make_url(url).set(database=TEST_DATABASE).render_as_string(hide_password=False)


def _drop_database(url: str) -> None:
    with psycopg.connect(_admin_url(url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{TEST_DATABASE}" WITH (FORCE)')


@pytest.fixture(scope="session", autouse=True)
def test_environment() -> Iterator[None]:
    """Point every setting at the test database, Redis db and buckets, then migrate."""
    base = CommonSettings()
    redis_url = base.redis.url.rsplit("/", 1)[0] + f"/{_redis_database()}"
    try:
        database_url = _recreate_database(base.database.url.get_secret_value())
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable ({exc}); run: bash scripts/stack.sh start")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VIGIL_DATABASE_URL", database_url)
        patch.setenv("VIGIL_REDIS_URL", redis_url)
        patch.setenv("VIGIL_S3_DATASETS_BUCKET", f"vigil-test-datasets{_WORKER_SUFFIX}")
        patch.setenv("VIGIL_S3_MODELS_BUCKET", f"vigil-test-models{_WORKER_SUFFIX}")
        patch.setenv("VIGIL_LOG_LEVEL", "INFO")
        patch.setenv("VIGIL_API_ADMIN_KEY", ADMIN_KEY)
        upgrade(DatabaseSettings())
        yield
    _drop_database(base.database.url.get_secret_value())


@pytest.fixture
def topics(monkeypatch: pytest.MonkeyPatch) -> Iterator[Topics]:
    """A fresh topic namespace for this test, created on the broker and deleted after it.

    Deleted because a whole run creates thousands of partitions: kept, they exhaust the
    single test broker's heap (it died of it once, mid-run, with 16k partitions).
    """
    namespace = f"t{uuid.uuid4().hex[:10]}."
    monkeypatch.setenv("VIGIL_KAFKA_TOPIC_NAMESPACE", namespace)
    settings = KafkaSettings()
    ensure_topics(settings, settings.topics.all(), compacted=settings.topics.compacted())
    yield settings.topics
    delete_namespace_topics(settings, namespace)


def delete_namespace_topics(settings: KafkaSettings, namespace: str) -> None:
    """Best effort: a broker a test stopped on purpose may not answer, and that is no failure."""
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=settings.bootstrap_servers.split(","),
            client_id="vigil-tests-cleanup",
            bootstrap_timeout_ms=5000,
            request_timeout_ms=10000,
        )
    except KafkaError:
        return
    try:
        mine = [t for t in admin.list_topics() if t.startswith(namespace)]
        if mine:
            admin.delete_topics(mine, timeout_ms=10000)
    except KafkaError:
        pass
    finally:
        admin.close()


@pytest.fixture
def kafka_settings(topics: Topics) -> KafkaSettings:
    return KafkaSettings()


@pytest.fixture
def settings() -> CommonSettings:
    return CommonSettings()


@pytest.fixture(scope="session")
def engine(test_environment: None) -> Iterator[Engine]:
    engine = make_engine(DatabaseSettings())
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def sessions(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@pytest.fixture(autouse=True)
def clean_database(engine: Engine) -> None:
    """Empty every table before the test.

    Truncation, not a rolled-back transaction: the rows a test checks are written by the API's
    own engine (built in its lifespan), by consumers on their own sessions and by services run
    as processes, none of which could join one test transaction. Before, not after, so a test
    that failed half-way leaves its rows to look at and still cannot disturb the next one.
    """
    tables = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
    try:
        with engine.begin() as conn:
            conn.execute(text("SET LOCAL lock_timeout = '10s'"))
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    except OperationalError as exc:
        pytest.fail(
            "could not empty the test database: a connection still holds a lock on a table "
            f"(a service, consumer or session an earlier test started and did not close): {exc}"
        )


@pytest.fixture
def s3(settings: CommonSettings) -> Minio:
    client = make_s3_client(settings.s3)
    ensure_buckets(client, settings.s3)
    return client


@pytest.fixture
def api() -> Iterator[TestClient]:
    """The API, called with the admin key (see test_api_auth.py for the other keys)."""
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with TestClient(create_app(ApiSettings()), headers=headers) as client:
        yield client


@pytest.fixture
def anonymous(api: TestClient) -> TestClient:
    """The same running API, called without a key."""
    return TestClient(api.app)


IssueKey = Callable[..., str]


@pytest.fixture
def issue_key(api: TestClient) -> IssueKey:
    """Create a key through the API with the admin key; returns the plaintext key."""

    def issue(role: str, camera_ids: list[str] | None = None, name: str = "test key") -> str:
        body = {"name": name, "role": role, "camera_ids": camera_ids}
        response = api.post("/api/v1/keys", json=body)
        assert response.status_code == 201, response.text
        key: str = response.json()["key"]
        return key

    return issue


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


StartService = Callable[..., ServiceProcess]


@pytest.fixture
def start_service(tmp_path: Path) -> Iterator[StartService]:
    """Start services as processes; every one still running is stopped after the test."""
    started: list[ServiceProcess] = []

    def start(module: str, **env: str) -> ServiceProcess:
        log_path = tmp_path / f"{module}-{len(started)}.log"
        service = ServiceProcess(module, env=service_env(**env), log_path=log_path)
        started.append(service)
        return service

    yield start
    for service in started:
        service.stop()
