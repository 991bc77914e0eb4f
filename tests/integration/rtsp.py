"""A real RTSP camera for ingest tests: Debian's rtsp-server-perl fed by ffmpeg, on loopback.

rtsp-server-perl takes publishers (``ffmpeg -f rtsp``) on one TCP port and readers on another,
and relays RTP over UDP from a port range it counts up from ``--rtp_start_port``; readers must
use UDP (it refuses TCP-interleaved). It runs here as a plain child process, not the systemd
unit: every server gets its own free ports, so tests and concurrent runs never meet, and it
stops cleanly on SIGINT.
"""

from __future__ import annotations

import random
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from vigil_shared.settings import default_datasets_dir

PED2_CLIP = default_datasets_dir() / "ucsd-ped2" / "test" / "Test002.mp4"


@dataclass(frozen=True)
class Clip:
    path: Path
    size: tuple[int, int]
    what: str


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: run bash scripts/stack.sh install")
    return path


def make_clip(directory: Path) -> Clip:
    """Ped2 Test002 (or FFmpeg's test source when Ped2 is absent) re-encoded with a keyframe
    every half second: a reader joining a relayed stream waits for a keyframe, and Ped2's only
    keyframe is its first."""
    out = directory / "camera.mp4"
    if PED2_CLIP.is_file():
        source, size, what = ["-i", str(PED2_CLIP)], (360, 240), "UCSD Ped2 Test002"
    else:
        source = ["-f", "lavfi", "-i", "testsrc=size=320x240:rate=10", "-t", "10"]
        size, what = (320, 240), "FFmpeg testsrc (Ped2 absent)"
    encode = ["-an", "-c:v", "libx264", "-preset", "ultrafast", "-g", "5", "-pix_fmt", "yuv420p"]
    subprocess.run(
        [tool("ffmpeg"), "-loglevel", "error", *source, *encode, str(out)], check=True, timeout=120
    )
    return Clip(out, size, what)


def free_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _udp_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_rtp_base(pairs: int = 32) -> int:
    """An even UDP port with room above it: the server hands out two ports per stream setup."""
    for _ in range(100):
        base = random.randrange(30_000, 60_000 - 2 * pairs, 2)
        if all(_udp_free(base + i) for i in range(0, 2 * pairs, 7)):
            return base
    raise RuntimeError("no free UDP range for RTP")


def _wait_for_port(port: int, *, timeout_s: float, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"rtsp-server-perl exited with {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"rtsp-server-perl did not listen on {port} within {timeout_s} s")


def _end(process: subprocess.Popen[bytes] | None, sig: signal.Signals) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


class RtspCamera:
    """One RTSP server with one publisher on path ``cam1``; both can be cut and restored."""

    path = "cam1"

    def __init__(self, clip: Clip, log_dir: Path) -> None:
        self.clip = clip
        self._log_dir = log_dir
        self.client_port = free_tcp_port()  # readers (ingest)
        self.source_port = free_tcp_port()  # publishers (ffmpeg)
        self._rtp_base = free_rtp_base()
        self._server: subprocess.Popen[bytes] | None = None
        self._publisher: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.client_port}/{self.path}"

    def start_server(self) -> None:
        # The server resets its RTP port counter to a package global (20000) whenever it has no
        # mount, whatever --rtp_start_port said; set the global too, so that concurrent servers
        # (other tests, other runs) never bind the same UDP ports.
        script = tool("rtsp-server-perl")
        boot = f'$RTSP::Server::RTP_START_PORT = {self._rtp_base}; do "{script}"; die $@ if $@'
        command = ["perl", "-MRTSP::Server", "-e", boot, "--"]
        command += ["--clientport", str(self.client_port), "--serverport", str(self.source_port)]
        command += ["--rtp_start_port", str(self._rtp_base)]
        command += ["--client_listen_address", "127.0.0.1", "--source_listen_address", "127.0.0.1"]
        with (self._log_dir / "rtsp-server.log").open("ab") as log:
            self._server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        _wait_for_port(self.client_port, timeout_s=10, process=self._server)
        _wait_for_port(self.source_port, timeout_s=10, process=self._server)

    def kill_server(self) -> None:
        """SIGKILL, as a crashed server or a switch losing power: readers are not told."""
        _end(self._server, signal.SIGKILL)

    def start_publisher(self) -> None:
        command = [tool("ffmpeg"), "-loglevel", "error", "-re", "-stream_loop", "-1"]
        command += ["-i", str(self.clip.path), "-c", "copy", "-f", "rtsp"]
        command += [f"rtsp://127.0.0.1:{self.source_port}/{self.path}"]
        with (self._log_dir / "rtsp-publisher.log").open("ab") as log:
            self._publisher = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )

    def stop_publisher(self) -> None:
        """The camera stops sending. ffmpeg leaves with an RTSP TEARDOWN: rtsp-server-perl frees
        a mount only on TEARDOWN, so a SIGKILLed publisher could never publish there again."""
        _end(self._publisher, signal.SIGINT)

    def close(self) -> None:
        _end(self._publisher, signal.SIGINT)
        _end(self._server, signal.SIGINT)  # the server's own clean stop: its main loop ends
