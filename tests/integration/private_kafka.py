"""A Kafka cluster of a test's own, so a test can kill and restart brokers without disturbing the
shared one of scripts/stack.sh (same jars, its own ports and data directories).

One node by default (as the stack's); ``brokers=3`` gives three combined broker-controller
nodes forming the KRaft quorum, with the replication the settings ask for on a cluster
(``KafkaSettings.replication_factor`` 3, ``min.insync.replicas`` 2).
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from tests.integration.rtsp import free_tcp_port
from vigil_shared.settings import REPO_ROOT

CLUSTER_ID = "VmlnaWxQcml2YXRlS2Fma2E"
# A crashed broker is fenced (its partitions led elsewhere, dropped from the ISRs) after this
# long without a heartbeat to the controller; Kafka's default is 9 s.
BROKER_SESSION_MS = 6_000


def stack_libs() -> Path:
    stack = Path(os.environ.get("VIGIL_STACK_DIR", REPO_ROOT / ".stack"))
    libs = stack / "kafka" / "libs"
    if not libs.is_dir():
        raise RuntimeError(f"no Kafka jars in {libs}; run: bash scripts/stack.sh install")
    return libs


def java(libs: Path, main: str, *args: str, heap: str) -> list[str]:
    return ["java", f"-Xmx{heap}", "-XX:+UseSerialGC", "-cp", f"{libs}/*", main, *args]


class KafkaNode:
    """One KRaft node (broker and controller); ``kill`` is a crash (SIGKILL), ``start`` again
    recovers from its log."""

    def __init__(self, root: Path, *, node_id: int, libs: Path) -> None:
        self.root, self.node_id, self.libs = root, node_id, libs
        root.mkdir(parents=True, exist_ok=True)
        self.port, self.controller_port = free_tcp_port(), free_tcp_port()
        self.config = root / "server.properties"
        self.log_path = root / "kafka.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def voter(self) -> str:
        return f"{self.node_id}@127.0.0.1:{self.controller_port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def write_config(self, *, voters: str, replicas: int) -> None:
        insync = max(1, replicas - 1)
        lines = [
            "process.roles=broker,controller",
            f"node.id={self.node_id}",
            f"controller.quorum.voters={voters}",
            f"listeners=PLAINTEXT://{self.address},CONTROLLER://127.0.0.1:{self.controller_port}",
            f"advertised.listeners=PLAINTEXT://{self.address}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            f"log.dirs={self.root / 'data'}",
            "num.partitions=2",
            "group.initial.rebalance.delay.ms=0",
            f"default.replication.factor={replicas}",
            f"min.insync.replicas={insync}",
            f"offsets.topic.replication.factor={replicas}",
            "offsets.topic.num.partitions=2",
            f"transaction.state.log.replication.factor={replicas}",
            f"transaction.state.log.min.isr={insync}",
            f"share.coordinator.state.topic.replication.factor={replicas}",
            f"share.coordinator.state.topic.min.isr={insync}",
            "num.network.threads=1",
            "num.io.threads=2",
        ]
        if replicas > 1:
            lines += [
                f"broker.session.timeout.ms={BROKER_SESSION_MS}",
                "broker.heartbeat.interval.ms=1000",
            ]
        self.config.write_text("\n".join(lines) + "\n")

    def launch(self) -> None:
        """Start the process (formatting its log directory the first time); returns at once."""
        if self.running:
            return
        if not (self.root / "data" / "meta.properties").exists():
            subprocess.run(
                java(
                    self.libs,
                    "kafka.tools.StorageTool",
                    *("format", "--ignore-formatted", "-t", CLUSTER_ID, "-c", str(self.config)),
                    heap="256m",
                ),
                check=True,
                capture_output=True,
            )
        log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            java(self.libs, "kafka.Kafka", str(self.config), heap="384m"),
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def wait_listening(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                tail = self.log_path.read_text()[-2000:]
                raise RuntimeError(f"test broker {self.node_id} exited:\n{tail}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError(f"test broker {self.node_id} did not listen in time")

    def kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(timeout=30)
        self._process = None


class PrivateKafka:
    """``brokers`` KRaft nodes on free ports under ``root``; ``kill`` crashes them all,
    ``start`` (re)starts whichever is not running, ``nodes[i].kill()`` crashes one."""

    def __init__(self, root: Path, *, brokers: int = 1) -> None:
        libs = stack_libs()
        self.nodes = [
            KafkaNode(root / f"node-{i}" if brokers > 1 else root, node_id=i, libs=libs)
            for i in range(1, brokers + 1)
        ]
        self.replicas = min(brokers, 3)
        voters = ",".join(node.voter for node in self.nodes)
        for node in self.nodes:
            node.write_config(voters=voters, replicas=self.replicas)

    @property
    def bootstrap(self) -> str:
        return ",".join(node.address for node in self.nodes)

    @property
    def live_bootstrap(self) -> str:
        """The addresses of the nodes running now."""
        return ",".join(node.address for node in self.nodes if node.running)

    def client_env(self) -> dict[str, str]:
        """What a service needs to use this cluster, with topics replicated across it."""
        return {
            "VIGIL_KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "VIGIL_KAFKA_REPLICATION_FACTOR": str(self.replicas),
        }

    def start(self, timeout_s: float = 180) -> None:
        """Start every node that is not running; return once each listens and, on a cluster,
        once every node is registered (a topic with replication 3 can then be created)."""
        deadline = time.monotonic() + timeout_s
        for node in self.nodes:
            node.launch()
        for node in self.nodes:
            node.wait_listening(deadline)
        if len(self.nodes) > 1:
            self._wait_registered(deadline)

    def _wait_registered(self, deadline: float) -> None:
        brokers = 0
        while time.monotonic() < deadline:
            try:
                admin = KafkaAdminClient(bootstrap_servers=self.bootstrap.split(","))
                try:
                    brokers = len(admin.describe_cluster()["brokers"])
                finally:
                    admin.close()
            except KafkaError:
                brokers = 0
            if brokers == len(self.nodes):
                return
            time.sleep(1)
        raise RuntimeError(f"{brokers} of {len(self.nodes)} test brokers registered in time")

    def kill(self) -> None:
        for node in self.nodes:
            node.kill()
