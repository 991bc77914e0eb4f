"""Object storage behind the S3 API on the native stack (scripts/stack.sh): SeaweedFS's master,
volume and filer serve no object and take no write without the stack's credentials, only the
S3 API with its keys does, and the stack's secret files are readable by their owner alone.

The ports and the stack directory come from ``.stack/env`` (``VIGIL_STACK_DIR``,
``VIGIL_S3_{MASTER,VOLUME,FILER}_PORT``), with scripts/stack.sh's defaults.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import os
import socket
import ssl
import stat
import subprocess
import time
import tomllib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from minio import Minio

from vigil_shared.settings import REPO_ROOT, CommonSettings

HOST = "127.0.0.1"
STACK_DIR = Path(os.environ.get("VIGIL_STACK_DIR", REPO_ROOT / ".stack"))
SECURITY_DIR = STACK_DIR / "s3" / "security"
WEED = STACK_DIR / "tools" / "venv" / "bin" / "weed"
PORTS = {
    "master": int(os.environ.get("VIGIL_S3_MASTER_PORT", "19333")),
    "volume": int(os.environ.get("VIGIL_S3_VOLUME_PORT", "18080")),
    "filer": int(os.environ.get("VIGIL_S3_FILER_PORT", "18888")),
}
# The HTTP/2 connection preface a gRPC client opens with, then an empty SETTINGS frame.
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


@dataclass(frozen=True)
class StoredObject:
    bucket: str
    key: str
    data: bytes

    def read_through_s3(self, s3: Minio) -> bytes:
        response = s3.get_object(self.bucket, self.key)
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()


@pytest.fixture
def stored(s3: Minio, settings: CommonSettings) -> Iterator[StoredObject]:
    """An object written through the S3 API with the stack's keys."""
    bucket = settings.s3.datasets_bucket
    key = f"stack-security/{uuid.uuid4().hex}.bin"
    data = b"model weights nobody may read " + os.urandom(512)
    s3.put_object(bucket, key, io.BytesIO(data), len(data))
    yield StoredObject(bucket=bucket, key=key, data=data)
    s3.remove_object(bucket, key)


def url(server: str, path: str) -> str:
    return f"http://{HOST}:{PORTS[server]}{path}"


def request(
    method: str,
    target: str,
    *,
    headers: dict[str, str] | None = None,
    content: bytes | None = None,
    files: dict[str, tuple[str, bytes]] | None = None,
) -> httpx.Response | None:
    """The response, or None when nothing listens there."""
    try:
        return httpx.request(
            method, target, headers=headers, content=content, files=files, timeout=10
        )
    except httpx.TransportError:
        return None


def status(response: httpx.Response | None) -> int | None:
    return None if response is None else response.status_code


def refused(response: httpx.Response | None, secret: bytes = b"") -> bool:
    """Nothing listens, or an error that does not carry the secret."""
    if response is None:
        return True
    return response.status_code >= 400 and not (secret and secret in response.content)


def chunk_file_id(stored: StoredObject) -> str:
    """Where SeaweedFS keeps the object's bytes, asked with the stack's own credentials."""
    if not WEED.is_file():
        pytest.fail(f"no weed binary at {WEED}: run bash scripts/stack.sh install")
    shell = subprocess.run(
        [
            str(WEED),
            f"-config_dir={SECURITY_DIR}",
            "shell",
            f"-master={HOST}:{PORTS['master']}",
            f"-filer={HOST}:{PORTS['filer']}",
        ],
        input=f"fs.meta.cat /buckets/{stored.bucket}/{stored.key}\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    start = shell.stdout.find("{")
    assert start >= 0, shell.stdout + shell.stderr
    entry, _ = json.JSONDecoder().raw_decode(shell.stdout[start:])
    chunks = entry["chunks"]
    assert len(chunks) == 1, entry
    file_id: str = chunks[0]["fileId"]
    return file_id


def volume_token(file_id: str, key: str) -> str:
    """A volume server read token as the master mints it: HS256 over the file id."""

    def part(raw: bytes) -> bytes:
        return base64.urlsafe_b64encode(raw).rstrip(b"=")

    header = part(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = part(json.dumps({"fid": file_id, "exp": int(time.time()) + 10}).encode())
    signature = part(hmac.new(key.encode(), header + b"." + claims, hashlib.sha256).digest())
    return (header + b"." + claims + b"." + signature).decode()


def read_signing_key() -> str:
    config = tomllib.loads((SECURITY_DIR / "security.toml").read_text())
    key: str = config["jwt"]["signing"]["read"]["key"]
    return key


def test_the_filer_and_the_master_give_nothing_without_credentials(
    stored: StoredObject, s3: Minio, settings: CommonSettings
) -> None:
    path = f"/buckets/{stored.bucket}/{stored.key}"
    assert refused(request("GET", url("filer", path)), stored.data)
    assert refused(request("GET", url("filer", f"/buckets/{stored.bucket}/")), stored.key.encode())
    for method in ("PUT", "POST"):
        assert refused(request(method, url("filer", path), content=b"overwritten"))
    filer_socket = STACK_DIR / "s3" / "filer.sock"
    if filer_socket.exists():  # the filer's HTTP on a unix socket (stack dirs under 80 bytes)
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(filer_socket))) as local:
            assert refused(local.get(f"http://filer{path}"), stored.data)
            assert refused(local.put(f"http://filer{path}", content=b"overwritten"))

    file_id = chunk_file_id(stored)
    for target in (f"/dir/lookup?fileId={file_id}", "/dir/assign"):
        response = request("GET", url("master", target))
        assert response is None or "authorization" not in response.headers, target
        assert refused(response, file_id.encode()), target

    assert stored.read_through_s3(s3) == stored.data
    anonymous = request("GET", f"http://{settings.s3.endpoint}/{stored.bucket}/{stored.key}")
    assert status(anonymous) == 403 and refused(anonymous, stored.data)


def test_the_volume_server_serves_and_takes_a_blob_only_with_a_token(
    stored: StoredObject, s3: Minio
) -> None:
    file_id = chunk_file_id(stored)
    blob = url("volume", f"/{file_id}")
    forged = volume_token(file_id, "not-the-stack-key")
    for headers in ({}, {"X-Forwarded-For": "10.0.0.1"}, {"Authorization": f"Bearer {forged}"}):
        for method in ("GET", "HEAD"):
            response = request(method, blob, headers=headers)
            assert status(response) == 401 and refused(response, stored.data), (method, headers)
    upload = {"file": ("x.bin", b"overwritten")}
    assert status(request("POST", blob, files=upload)) == 401
    assert status(request("PUT", blob, files=upload)) == 401
    assert status(request("DELETE", blob)) == 401

    # The same address with a token from the stack's key serves the blob: the refusals above
    # were the token's doing, not a wrong file id.
    signed = {"Authorization": f"Bearer {volume_token(file_id, read_signing_key())}"}
    response = request("GET", blob, headers=signed)
    assert status(response) == 200 and response is not None and response.content == stored.data
    assert stored.read_through_s3(s3) == stored.data


def grpc_answer(target: str | int, context: ssl.SSLContext | None) -> bytes:
    """What a gRPC port (or weed's unix socket) sends back to a client's connection preface."""
    if isinstance(target, int):
        raw = socket.create_connection((HOST, target), timeout=10)
    else:
        raw = socket.socket(socket.AF_UNIX)
        raw.settimeout(10)
        raw.connect(target)
    with raw:
        try:
            conn = raw if context is None else context.wrap_socket(raw)
            conn.sendall(H2_PREFACE)
            return conn.recv(64)
        except (ssl.SSLError, ConnectionError):
            return b""


def tls_context(*, with_stack_certificate: bool) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    if with_stack_certificate:
        context.load_cert_chain(SECURITY_DIR / "grpc.crt", SECURITY_DIR / "grpc.key")
    return context


def test_the_grpc_ports_demand_the_stack_certificate(settings: CommonSettings) -> None:
    s3_port = int(settings.s3.endpoint.rsplit(":", 1)[1])
    grpc_ports = {name: port + 10_000 for name, port in {**PORTS, "s3": s3_port}.items()}
    for name, port in grpc_ports.items():
        assert grpc_answer(port, None) == b"", f"{name} gRPC answers plaintext"
        assert grpc_answer(port, tls_context(with_stack_certificate=False)) == b"", name
        # The control: with the certificate the same port speaks HTTP/2 (a SETTINGS frame).
        answer = grpc_answer(port, tls_context(with_stack_certificate=True))
        assert answer[3:4] == b"\x04", f"{name} gRPC on {port} did not answer the stack's client"
        unix = Path(f"/tmp/seaweedfs-{name}-grpc-{port}.sock")
        if unix.exists():  # weed's own unix socket for local clients
            assert grpc_answer(str(unix), None) == b"", f"{unix} answers plaintext"


def test_the_stack_secrets_are_readable_by_their_owner_only() -> None:
    secrets = [
        STACK_DIR / "env",
        STACK_DIR / "s3" / "identities.json",
        SECURITY_DIR / "security.toml",
        SECURITY_DIR / "grpc.key",
    ]
    # Made by scripts/up.sh, when it ran.
    secrets += [
        path for path in (STACK_DIR / "admin-key", STACK_DIR / "ingest-key") if path.exists()
    ]
    for path in secrets:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o077 == 0, f"{path} is mode {mode:o}"
    assert stat.S_IMODE(SECURITY_DIR.stat().st_mode) & 0o077 == 0
