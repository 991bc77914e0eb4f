"""The compose files as Docker Compose v2 reads them: resolved by compose-go, the parser Compose v2
is built on (tools/compose-config, built here with ``go build``), with ``.env.example`` filled in
as a new user would. No Docker engine is needed; what the engine alone would catch (an image that
cannot start) is tests/integration/test_images.py's part."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings

from tests.dockerfiles import read_dockerfile
from vigil_api.core.loop_settings import LoopSettings
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
    LoopSettings,
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
VIGIL_SERVICES = (
    "api",
    "event-sink",
    "camera-status",
    "retention",
    "loop",
    "inference",
    "trainer",
    "ingest",
)
# Where each process serves Prometheus metrics, as docs/operations.md#ports lists them.
METRICS_PORTS = {
    "api": ("VIGIL_API_PORT", 8000),
    "ingest": ("VIGIL_INGEST_METRICS_PORT", 9101),
    "inference": ("VIGIL_INFERENCE_METRICS_PORT", 9102),
    "trainer": ("VIGIL_TRAINER_METRICS_PORT", 9103),
    "event-sink": ("VIGIL_API_SINK_METRICS_PORT", 9104),
    "camera-status": ("VIGIL_API_CAMERA_STATUS_METRICS_PORT", 9105),
    "retention": ("VIGIL_API_RETENTION_METRICS_PORT", 9106),
    "loop": ("VIGIL_LOOP_METRICS_PORT", 9107),
}
TOOL = REPO_ROOT / "tools" / "compose-config"
KEYS = {"VIGIL_API_ADMIN_KEY": "a" * 40, "VIGIL_INGEST_API_KEY": "b" * 40}


@pytest.fixture(scope="session")
def compose_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tools/compose-config, built from its source (Go's caches make a rebuild take a second)."""
    go = shutil.which("go")
    if go is None:
        pytest.fail("Go is not installed: run scripts/stack.sh install")
    binary = tmp_path_factory.mktemp("tools") / "compose-config"
    built = subprocess.run(
        [go, "build", "-o", str(binary), "."],
        cwd=TOOL,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert built.returncode == 0, f"go build tools/compose-config failed:\n{built.stderr}"
    return binary


@pytest.fixture(scope="session")
def env_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``cp .env.example .env`` with the two required keys filled in, as the README says."""
    lines = []
    for line in (REPO_ROOT / ".env.example").read_text().splitlines():
        name = line.split("=", 1)[0]
        lines.append(f"{name}={KEYS[name]}" if name in KEYS else line)
    path = tmp_path_factory.mktemp("env") / ".env"
    path.write_text("\n".join(lines) + "\n")
    return path


def run_compose_config(
    tool: Path, *files: str, env_file: Path | None, profiles: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    # Only PATH and HOME from here: this shell's VIGIL_* (the native stack's) must not leak in.
    env = {k: os.environ[k] for k in ("PATH", "HOME") if k in os.environ}
    args = [str(tool), *(a for f in files for a in ("-f", str(REPO_ROOT / f)))]
    args += [a for p in profiles for a in ("--profile", p)]
    args += ["--env-file", str(env_file if env_file else os.devnull)]
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=60, check=False)


def resolve(
    tool: Path, env_file: Path, *files: str, profiles: tuple[str, ...] = ()
) -> dict[str, Any]:
    done = run_compose_config(tool, *files, env_file=env_file, profiles=profiles)
    assert done.returncode == 0, f"compose refused {files}:\n{done.stderr}"
    project: dict[str, Any] = yaml.safe_load(done.stdout)
    return project


@pytest.fixture(scope="session")
def project(compose_config: Path, env_file: Path) -> dict[str, Any]:
    return resolve(compose_config, env_file, "docker-compose.yml")


@pytest.fixture(scope="session")
def services(project: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = project["services"]
    return result


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


def test_compose_refuses_to_start_without_the_keys(compose_config: Path) -> None:
    done = run_compose_config(compose_config, "docker-compose.yml", env_file=None)
    assert done.returncode == 1
    assert "set VIGIL_API_ADMIN_KEY in .env" in done.stderr
    assert "set VIGIL_INGEST_API_KEY in .env" in done.stderr


def test_the_compose_version_is_stated() -> None:
    for name in ("docker-compose.yml", "docker-compose.cpu.yml", "docker-compose.cluster.yml"):
        assert "Compose v2.24 or later" in (REPO_ROOT / name).read_text(), name
    assert "Compose v2.24" in (REPO_ROOT / "docs" / "operations.md").read_text()


def test_every_image_is_pinned(services: dict[str, Any]) -> None:
    for name, service in services.items():
        image = service.get("image", "")
        assert re.fullmatch(r"[\w./-]+:[\w.-]+", image), f"{name}: image {image!r} has no tag"
        assert not image.endswith(":latest"), f"{name}: pin a version, not latest"


def test_builds_use_the_service_dockerfiles(services: dict[str, Any]) -> None:
    for name in ("api", "inference", "trainer", "ingest"):
        build = services[name]["build"]
        assert Path(build["context"]) == REPO_ROOT
        dockerfile = REPO_ROOT / build["dockerfile"]
        assert dockerfile == REPO_ROOT / "services" / name / "Dockerfile"
        assert read_dockerfile(name).extras == (name,)


def test_vigil_services_get_every_connection_setting(services: dict[str, Any]) -> None:
    known = known_env_names()
    for name in VIGIL_SERVICES:
        env = services[name]["environment"]
        missing = [v for v in CONNECTIONS if not env.get(v)]
        assert not missing, f"{name} lacks {missing}"
        unknown = sorted(k for k in env if k.startswith("VIGIL_") and k not in known)
        assert not unknown, f"{name} sets variables no settings class reads: {unknown}"
        assert env["VIGIL_KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"


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


def test_dependencies_wait_for_healthy_servers(services: dict[str, Any]) -> None:
    for name in VIGIL_SERVICES:
        for dependency, rule in services[name]["depends_on"].items():
            assert rule["condition"] == "service_healthy", f"{name} -> {dependency}"
            assert "healthcheck" in services[dependency], f"{dependency} has no healthcheck"


def test_long_running_services_have_a_healthcheck_and_come_back(
    services: dict[str, Any],
) -> None:
    for name, service in services.items():
        if name == "demo-camera":  # one-shot: registers a camera and exits
            assert service["restart"] == "no"
            continue
        assert service.get("restart") == "unless-stopped", f"{name} is not restarted"
        test = service.get("healthcheck", {}).get("test")
        assert test and test[0] in {"CMD", "CMD-SHELL"}, f"{name} has no healthcheck"


def test_metrics_ports_agree_across_settings_healthchecks_and_prometheus(
    compose_config: Path, env_file: Path
) -> None:
    monitored = resolve(compose_config, env_file, "docker-compose.yml", profiles=("monitoring",))
    services = monitored["services"]
    scrape = yaml.safe_load((REPO_ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    targets = {
        job["job_name"]: (job["dns_sd_configs"][0]["names"][0], job["dns_sd_configs"][0]["port"])
        for job in scrape["scrape_configs"]
    }
    for name, (variable, port) in METRICS_PORTS.items():
        assert services[name]["environment"][variable] == str(port), name
        assert f"http://127.0.0.1:{port}/" in " ".join(services[name]["healthcheck"]["test"])
        assert targets[f"vigil-{name}"] == (name, port)
    prometheus = services["prometheus"]
    mounts = {v["target"]: v for v in prometheus["volumes"]}
    assert Path(mounts["/etc/prometheus"]["source"]) == REPO_ROOT / "deploy" / "prometheus"


def _option(command: list[str], flag: str) -> str:
    for i, arg in enumerate(command):
        if arg == flag:
            return command[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    raise AssertionError(f"{flag} not in {command}")


def data_paths(services: dict[str, Any]) -> dict[str, str]:
    """Where each stateful server keeps its data, read from its own configuration."""
    return {
        "kafka": services["kafka"]["environment"]["KAFKA_LOG_DIRS"],
        "redis": _option(services["redis"]["command"], "--dir"),
        "postgres": services["postgres"]["environment"]["PGDATA"],
        "minio": services["minio"]["command"][services["minio"]["command"].index("server") + 1],
        "prometheus": _option(services["prometheus"]["command"], "--storage.tsdb.path"),
    }


def test_every_stateful_server_keeps_its_data_on_a_named_volume(
    compose_config: Path, env_file: Path
) -> None:
    project = resolve(compose_config, env_file, "docker-compose.yml", profiles=("monitoring",))
    services = project["services"]
    servers = {n for n, s in services.items() if not s["image"].startswith("vigil/")}
    paths = data_paths(services)
    assert set(paths) == servers, "a new server needs its data path checked here"
    for name, path in paths.items():
        volumes = [
            v
            for v in services[name].get("volumes", [])
            if v["type"] == "volume" and PurePosixPath(path).is_relative_to(v["target"])
        ]
        assert volumes, f"{name} keeps {path} in the container: it is lost when recreated"
        assert volumes[0]["source"] in project["volumes"], f"{name}: not a named volume"
    assert _option(services["redis"]["command"], "--appendonly") == "yes"


def test_kafka_is_reachable_from_the_host_on_a_second_listener(services: dict[str, Any]) -> None:
    env = services["kafka"]["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert services["kafka"]["image"].startswith("apache/kafka:4.")
    listeners = dict(item.split("://") for item in env["KAFKA_LISTENERS"].split(","))
    advertised = dict(item.split("://") for item in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    protocols = dict(
        item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    )
    assert set(advertised) | {"CONTROLLER"} == set(listeners) <= set(protocols)
    assert advertised["PLAINTEXT"] == "kafka:9092"
    assert advertised["EXTERNAL"] == "localhost:9094"
    [published] = services["kafka"]["ports"]
    assert (published["host_ip"], published["published"], published["target"]) == (
        "127.0.0.1",
        "9094",
        int(listeners["EXTERNAL"].rsplit(":", 1)[1]),
    )


def test_presigned_links_name_the_published_s3_port(services: dict[str, Any]) -> None:
    public = services["api"]["environment"]["VIGIL_S3_PUBLIC_ENDPOINT"]
    assert public == "localhost:9000"
    [published] = services["minio"]["ports"]
    assert (published["published"], published["target"]) == ("9000", 9000)
    assert services["api"]["environment"]["VIGIL_S3_ENDPOINT"] == "minio:9000"


def test_gpu_is_reserved_unless_the_cpu_override_resets_it(
    compose_config: Path, env_file: Path, services: dict[str, Any]
) -> None:
    for name in ("inference", "trainer"):
        devices = services[name]["deploy"]["resources"]["reservations"]["devices"]
        assert devices[0]["capabilities"] == ["gpu"]
    cpu = resolve(compose_config, env_file, "docker-compose.yml", "docker-compose.cpu.yml")
    for name in ("inference", "trainer"):
        assert cpu["services"][name].get("deploy") is None, f"{name} still reserves a GPU"
    assert set(cpu["services"]) == set(services)


def test_dataset_mount_is_read_only(services: dict[str, Any]) -> None:
    [mount] = services["ingest"]["volumes"]
    assert mount["target"] == "/datasets" and mount["read_only"] is True


def test_only_the_api_gets_the_admin_key(services: dict[str, Any]) -> None:
    assert services["api"]["environment"]["VIGIL_API_ADMIN_KEY"] == KEYS["VIGIL_API_ADMIN_KEY"]
    others = [n for n in services if n != "api"]
    assert not [n for n in others if "VIGIL_API_ADMIN_KEY" in services[n].get("environment", {})]


def test_ingest_reads_the_fleet_from_the_api_with_the_key_the_api_accepts(
    services: dict[str, Any],
) -> None:
    ingest = services["ingest"]["environment"]
    api = services["api"]["environment"]
    assert ingest["VIGIL_INGEST_API_URL"] == "http://api:8000"
    assert (
        ingest["VIGIL_INGEST_API_KEY"]
        == api["VIGIL_API_INGEST_KEY"]
        == KEYS["VIGIL_INGEST_API_KEY"]
    )


CLUSTER = ("docker-compose.yml", "docker-compose.cluster.yml")
KAFKA_NODES = ("kafka", "kafka-2", "kafka-3")


@pytest.fixture(scope="session")
def cluster(compose_config: Path, env_file: Path) -> dict[str, Any]:
    return resolve(compose_config, env_file, *CLUSTER)


def test_the_cluster_override_is_a_kraft_quorum_of_three(cluster: dict[str, Any]) -> None:
    services = cluster["services"]
    nodes = {name: services[name]["environment"] for name in KAFKA_NODES}
    assert {env["KAFKA_NODE_ID"] for env in nodes.values()} == {"1", "2", "3"}
    voters = {env["KAFKA_CONTROLLER_QUORUM_VOTERS"] for env in nodes.values()}
    assert voters == {"1@kafka:9093,2@kafka-2:9093,3@kafka-3:9093"}
    assert len({env["CLUSTER_ID"] for env in nodes.values()}) == 1, "one cluster id for all"
    for name, env in nodes.items():
        assert env["KAFKA_PROCESS_ROLES"] == "broker,controller", name
        listeners = dict(item.split("://") for item in env["KAFKA_LISTENERS"].split(","))
        assert listeners["CONTROLLER"] == ":9093", name
        advertised = dict(i.split("://") for i in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
        assert advertised["PLAINTEXT"] == f"{name}:9092", name
        # Kafka's own topics (offsets, transactions) survive a broker too.
        assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "3", name
        assert env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "3", name
        assert (env["KAFKA_DEFAULT_REPLICATION_FACTOR"], env["KAFKA_MIN_INSYNC_REPLICAS"]) == (
            "3",
            "2",
        )
        assert services[name]["restart"] == "unless-stopped", name
        assert services[name]["healthcheck"]["test"][0] == "CMD-SHELL", name


def test_every_broker_keeps_its_log_on_a_volume_of_its_own(cluster: dict[str, Any]) -> None:
    services = cluster["services"]
    sources = []
    for name in KAFKA_NODES:
        path = services[name]["environment"]["KAFKA_LOG_DIRS"]
        [volume] = [v for v in services[name]["volumes"] if v["target"] == path]
        assert volume["type"] == "volume" and volume["source"] in cluster["volumes"], name
        sources.append(volume["source"])
    assert len(set(sources)) == len(KAFKA_NODES), "two brokers on one volume"


def test_every_broker_is_reachable_from_the_host(cluster: dict[str, Any]) -> None:
    """A client is sent to each partition's leader, so each broker needs an external address."""
    services = cluster["services"]
    published = {}
    for name in KAFKA_NODES:
        env = services[name]["environment"]
        advertised = dict(i.split("://") for i in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
        [port] = services[name]["ports"]
        assert port["host_ip"] == "127.0.0.1" and port["target"] == 9094, name
        assert advertised["EXTERNAL"] == f"localhost:{port['published']}", name
        published[name] = port["published"]
    assert published == {"kafka": "9094", "kafka-2": "9095", "kafka-3": "9096"}


def test_the_services_use_every_broker_and_replicate_their_topics(
    cluster: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    services = cluster["services"]
    for name in VIGIL_SERVICES:
        env = services[name]["environment"]
        assert env["VIGIL_KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092,kafka-2:9092,kafka-3:9092"
        for node in KAFKA_NODES:
            assert services[name]["depends_on"][node]["condition"] == "service_healthy", name
        for variable, value in env.items():
            if variable.startswith("VIGIL_KAFKA_"):
                monkeypatch.setenv(variable, value)
        kafka = KafkaSettings()
        assert (kafka.replication_factor, kafka.min_insync) == (3, 2), name


def test_inference_and_the_trainer_run_several_instances(
    compose_config: Path, env_file: Path, cluster: dict[str, Any]
) -> None:
    for name in ("inference", "trainer"):
        service = cluster["services"][name]
        assert service["deploy"]["replicas"] == 2, name
        assert service["deploy"]["resources"]["reservations"]["devices"], f"{name}: GPU lost"
        # Replicas cannot share a container name, a host port or a static group name: theirs
        # comes from each container's own hostname.
        assert "container_name" not in service and "ports" not in service, name
        instance = service["environment"].get("VIGIL_KAFKA_GROUP_INSTANCE_ID")
        assert instance is None or "{hostname}" in instance, name
    cpu = resolve(
        compose_config, env_file, "docker-compose.yml", "docker-compose.cpu.yml", CLUSTER[1]
    )
    for name in ("inference", "trainer"):
        deploy = cpu["services"][name]["deploy"]
        assert deploy["replicas"] == 2 and not deploy.get("resources"), name
