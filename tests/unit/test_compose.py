"""docker-compose.yml is checked statically (no Docker engine here): it parses, images are
pinned, builds point at real Dockerfiles, and every VIGIL_ variable is one the settings read."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings

from vigil_api.core.settings import ApiSettings
from vigil_inference.settings import InferenceSettings
from vigil_ingest.settings import IngestSettings
from vigil_shared.settings import (
    REPO_ROOT,
    CommonSettings,
    DatabaseSettings,
    KafkaSettings,
    RedisSettings,
    S3Settings,
)
from vigil_trainer.settings import TrainerSettings

SETTINGS: tuple[type[BaseSettings], ...] = (
    CommonSettings,
    KafkaSettings,
    S3Settings,
    DatabaseSettings,
    RedisSettings,
    ApiSettings,
    IngestSettings,
    InferenceSettings,
    TrainerSettings,
)
CONNECTIONS = (
    "VIGIL_KAFKA_BOOTSTRAP_SERVERS",
    "VIGIL_REDIS_URL",
    "VIGIL_DATABASE_URL",
    "VIGIL_S3_ENDPOINT",
    "VIGIL_S3_ACCESS_KEY",
    "VIGIL_S3_SECRET_KEY",
)
VIGIL_SERVICES = ("api", "event-sink", "camera-status", "inference", "trainer", "ingest")


class _ComposeLoader(yaml.SafeLoader):
    pass


_ComposeLoader.add_constructor("!reset", lambda loader, node: None)


def known_env_names() -> set[str]:
    names = set()
    for cls in SETTINGS:
        prefix = str(cls.model_config.get("env_prefix", ""))
        for name, field in cls.model_fields.items():
            nested = isinstance(field.annotation, type) and issubclass(
                field.annotation, BaseSettings
            )
            if not nested:
                names.add((prefix + name).upper())
    return names


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.load((REPO_ROOT / name).read_text(), Loader=_ComposeLoader)
    return data


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load("docker-compose.yml")


def test_every_image_is_pinned(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        image = service.get("image", "")
        assert re.fullmatch(r"[\w./-]+:[\w.-]+", image), f"{name}: image {image!r} has no tag"
        assert not image.endswith(":latest"), f"{name}: pin a version, not latest"


def test_builds_use_the_service_dockerfiles(compose: dict[str, Any]) -> None:
    for name in ("api", "inference", "trainer", "ingest"):
        build = compose["services"][name]["build"]
        dockerfile = REPO_ROOT / build["dockerfile"]
        assert dockerfile == REPO_ROOT / "services" / name / "Dockerfile"
        assert dockerfile.is_file()
        assert f"vigil_{name}" in dockerfile.read_text()


def test_vigil_services_get_every_connection_setting(compose: dict[str, Any]) -> None:
    known = known_env_names()
    for name in VIGIL_SERVICES:
        env = compose["services"][name]["environment"]
        missing = [v for v in CONNECTIONS if v not in env]
        assert not missing, f"{name} lacks {missing}"
        unknown = sorted(k for k in env if k.startswith("VIGIL_") and k not in known)
        assert not unknown, f"{name} sets variables no settings class reads: {unknown}"


def test_env_example_names_only_known_settings() -> None:
    names = [
        line.split("=", 1)[0]
        for line in (REPO_ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    vigil = {n for n in names if n.startswith("VIGIL_")}
    unknown = sorted(vigil - known_env_names())
    assert not unknown, f".env.example sets variables no settings class reads: {unknown}"
    compose_only = sorted(set(names) - vigil)
    text = (REPO_ROOT / "docker-compose.yml").read_text()
    unused = [n for n in compose_only if "${" + n not in text]
    assert not unused, f".env.example sets variables docker-compose.yml never uses: {unused}"
    assert set(CONNECTIONS) <= set(names)


def test_dependencies_wait_for_healthy_servers(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in VIGIL_SERVICES:
        for dependency, rule in services[name]["depends_on"].items():
            assert rule["condition"] == "service_healthy", f"{name} -> {dependency}"
            assert "healthcheck" in services[dependency], f"{dependency} has no healthcheck"


def test_gpu_is_reserved_for_inference_and_trainer(compose: dict[str, Any]) -> None:
    for name in ("inference", "trainer"):
        devices = compose["services"][name]["deploy"]["resources"]["reservations"]["devices"]
        assert devices[0]["capabilities"] == ["gpu"]
    cpu = load("docker-compose.cpu.yml")
    assert set(cpu["services"]) == {"inference", "trainer"}


def test_kafka_runs_in_kraft_mode(compose: dict[str, Any]) -> None:
    env = compose["services"]["kafka"]["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert compose["services"]["kafka"]["image"].startswith("apache/kafka:4.")


def test_dataset_mount_is_read_only(compose: dict[str, Any]) -> None:
    assert any(v.endswith(":/datasets:ro") for v in compose["services"]["ingest"]["volumes"])


def test_only_the_api_gets_the_admin_key_and_never_a_default(compose: dict[str, Any]) -> None:
    services = compose["services"]
    admin_key = services["api"]["environment"]["VIGIL_API_ADMIN_KEY"]
    assert admin_key.startswith("${VIGIL_API_ADMIN_KEY:?"), "compose must refuse to run without it"
    others = [n for n in services if n != "api"]
    assert not [n for n in others if "VIGIL_API_ADMIN_KEY" in services[n].get("environment", {})]


def test_ingest_reads_the_fleet_from_the_api_with_the_key_the_api_accepts(
    compose: dict[str, Any],
) -> None:
    ingest = compose["services"]["ingest"]["environment"]
    api = compose["services"]["api"]["environment"]
    assert ingest["VIGIL_INGEST_API_URL"] == "http://api:8000"
    assert ingest["VIGIL_INGEST_API_KEY"].startswith("${VIGIL_INGEST_API_KEY:?")
    assert api["VIGIL_API_INGEST_KEY"] == ingest["VIGIL_INGEST_API_KEY"]
