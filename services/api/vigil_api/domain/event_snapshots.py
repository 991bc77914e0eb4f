"""Presigned links (S3 signature V4, query string), signed locally and fast: snapshots, and
every other link the API hands out (model downloads).

A page of events carries up to 500 links. The ``minio`` client signs one in about 0.3-0.8 ms
(it rebuilds the signing key and the URL machinery every time), which alone would take a
filtered page past its latency goal; here the signing key is derived once per page and each
link costs one SHA-256 and one HMAC. The links are the ones ``minio`` makes (a unit test
compares them byte for byte).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import quote

from vigil_shared.settings import S3Settings

ALGORITHM = "AWS4-HMAC-SHA256"


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


@dataclass(frozen=True)
class Presigner:
    """Signs GET links to objects of one bucket, all with one request time."""

    endpoint: str
    secure: bool
    access_key: str
    secret_key: str
    region: str
    bucket: str
    now: datetime
    expires: timedelta
    _signing_key: bytes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        key = _hmac(f"AWS4{self.secret_key}".encode(), self._day)
        for part in (self.region, "s3", "aws4_request"):
            key = _hmac(key, part)
        object.__setattr__(self, "_signing_key", key)

    @classmethod
    def for_bucket(
        cls, s3: S3Settings, bucket: str, *, now: datetime, expires: timedelta
    ) -> Presigner:
        """Links at the public S3 endpoint (``VIGIL_S3_PUBLIC_ENDPOINT``): they are followed by
        browsers and tools outside the deployment, which cannot resolve its internal name."""
        return cls(
            endpoint=s3.link_endpoint,
            secure=s3.link_secure,
            access_key=s3.access_key,
            secret_key=s3.secret_key.get_secret_value(),
            region=s3.region,
            bucket=bucket,
            now=now,
            expires=expires,
        )

    @classmethod
    def for_snapshots(cls, s3: S3Settings, *, now: datetime, expires: timedelta) -> Presigner:
        return cls.for_bucket(s3, s3.snapshots_bucket, now=now, expires=expires)

    @property
    def _day(self) -> str:
        return self.now.strftime("%Y%m%d")

    def url(self, key: str) -> str:
        stamp = self.now.strftime("%Y%m%dT%H%M%SZ")
        scope = f"{self._day}/{self.region}/s3/aws4_request"
        path = quote(f"/{self.bucket}/{key}", safe="/~")
        query = "&".join(
            f"{name}={quote(value, safe='~')}"
            for name, value in (
                ("X-Amz-Algorithm", ALGORITHM),
                ("X-Amz-Credential", f"{self.access_key}/{scope}"),
                ("X-Amz-Date", stamp),
                ("X-Amz-Expires", str(int(self.expires.total_seconds()))),
                ("X-Amz-SignedHeaders", "host"),
            )
        )
        canonical = f"GET\n{path}\n{query}\nhost:{self.endpoint}\n\nhost\nUNSIGNED-PAYLOAD"
        digest = hashlib.sha256(canonical.encode()).hexdigest()
        to_sign = f"{ALGORITHM}\n{stamp}\n{scope}\n{digest}"
        signature = hmac.new(self._signing_key, to_sign.encode(), hashlib.sha256).hexdigest()
        scheme = "https" if self.secure else "http"
        return f"{scheme}://{self.endpoint}{path}?{query}&X-Amz-Signature={signature}"
