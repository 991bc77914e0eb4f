"""A Kafka broker of a test's own, so a test can kill and restart it without disturbing the
shared one of scripts/stack.sh (same jars, its own ports and data directory)."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

from tests.integration.rtsp import free_tcp_port
from vigil_shared.settings import REPO_ROOT

CLUSTER_ID = "VmlnaWxQcml2YXRlS2Fma2E"


class PrivateKafka:
    """One KRaft node; ``kill`` is a crash (SIGKILL), ``start`` again recovers from its log."""

    def __init__(self, root: Path) -> None:
        stack = Path(os.environ.get("VIGIL_STACK_DIR", REPO_ROOT / ".stack"))
        self.libs = stack / "kafka" / "libs"
        if not self.libs.is_dir():
            raise RuntimeError(f"no Kafka jars in {self.libs}; run: bash scripts/stack.sh install")
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.port, self.controller_port = free_tcp_port(), free_tcp_port()
        self.config = root / "server.properties"
        self.log_path = root / "kafka.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._write_config()

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _write_config(self) -> None:
        self.config.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}",
                    f"listeners=PLAINTEXT://127.0.0.1:{self.port},"
                    f"CONTROLLER://127.0.0.1:{self.controller_port}",
                    f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
                    "controller.listener.names=CONTROLLER",
                    "inter.broker.listener.name=PLAINTEXT",
                    "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                    f"log.dirs={self.root / 'data'}",
                    "num.partitions=2",
                    "group.initial.rebalance.delay.ms=0",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=2",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "share.coordinator.state.topic.replication.factor=1",
                    "share.coordinator.state.topic.min.isr=1",
                    "num.network.threads=1",
                    "num.io.threads=2",
                ]
            )
            + "\n"
        )

    def _java(self, main: str, *args: str, heap: str) -> list[str]:
        return ["java", f"-Xmx{heap}", "-XX:+UseSerialGC", "-cp", f"{self.libs}/*", main, *args]

    def start(self, timeout_s: float = 120) -> None:
        if not (self.root / "data" / "meta.properties").exists():
            subprocess.run(
                self._java(
                    "kafka.tools.StorageTool",
                    *("format", "--ignore-formatted", "-t", CLUSTER_ID, "-c", str(self.config)),
                    heap="256m",
                ),
                check=True,
                capture_output=True,
            )
        log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            self._java("kafka.Kafka", str(self.config), heap="384m"),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"the test broker exited:\n{self.log_path.read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError(f"the test broker did not listen within {timeout_s:.0f}s")

    def kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(timeout=30)
        self._process = None
