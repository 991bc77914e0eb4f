"""Who is calling: the key of a request, checked once, then its role and camera scope.

Every ``/api/v1`` router is included with ``authenticated`` as a dependency (``main.py``), so a
route without a role of its own still needs a valid key; routes that change or manage things
ask for more with ``OperatorDep``/``AdminDep``. A failure is logged with the key's prefix at
most, never the key. A stored key's last use is recorded (to the minute), and a request that
lasts (a live stream) re-checks its key as it goes (``still_valid``).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import Counter
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from vigil_api.core.deps import ClientsDep, SessionDep
from vigil_api.core.security import Principal, Role, hash_key, loggable_prefix
from vigil_shared.db.models import ApiKey

log = logging.getLogger("vigil_api.auth")
AUTH_FAILURES = Counter(
    "vigil_api_auth_failures", "Requests refused by authentication or authorization", ["reason"]
)
# A key's last use is written at most this often: a write per request would cost more than the
# request, and an admin asking "is this key in use?" needs minutes, not milliseconds.
LAST_USED_RESOLUTION = timedelta(minutes=1)
HOW_TO_AUTHENTICATE = "send the key as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"

bearer_scheme = HTTPBearer(auto_error=False, description="An API key as a bearer token.")
header_scheme = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key.")


class InvalidKeyError(Exception):
    """The presented key is unknown, revoked or expired (the reason is for logs only)."""


def find_principal(
    *, session: Session, key: str, environment_keys: Mapping[str, Principal], now: datetime
) -> Principal:
    """The holder of ``key``; raises ``InvalidKeyError`` naming why it is refused."""
    digest = hash_key(key)
    for env_key, principal in environment_keys.items():
        if hmac.compare_digest(digest, hash_key(env_key)):
            return principal
    row = session.scalar(select(ApiKey).where(ApiKey.key_sha256 == digest))
    if row is None:
        raise InvalidKeyError("unknown")
    refused = _refusal(row, now)
    if refused is not None:
        raise InvalidKeyError(refused)
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
        session.execute(update(ApiKey).where(ApiKey.id == row.id).values(last_used_at=now))
        session.commit()
    scope = None if row.camera_ids is None else frozenset(row.camera_ids)
    return Principal(
        key_id=row.id, prefix=row.prefix, name=row.name, role=Role(row.role), camera_ids=scope
    )


def _refusal(row: ApiKey, now: datetime) -> str | None:
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at is not None and row.expires_at <= now:
        return "expired"
    return None


def still_valid(*, session: Session, principal: Principal, now: datetime) -> bool:
    """Whether the key a long request (a live stream) was opened with is still accepted: not
    revoked, not expired. Keys from the environment last as long as the process."""
    if principal.key_id is None:
        return True
    row = session.get(ApiKey, principal.key_id)
    return row is not None and _refusal(row, now) is None


def _unauthorized(request: Request, reason: str, *, key_prefix: str | None) -> HTTPException:
    AUTH_FAILURES.labels(reason=reason).inc()
    client = request.client.host if request.client else None
    log.warning(
        "authentication failed",
        extra={
            "reason": reason,
            "key_prefix": key_prefix,
            "path": request.url.path,
            "client": client,
        },
    )
    if reason == "missing":
        challenge = 'Bearer realm="vigil"'
        detail = f"this route needs an API key: {HOW_TO_AUTHENTICATE}"
    else:
        challenge = 'Bearer realm="vigil", error="invalid_token"'
        detail = "the API key is not valid (unknown, revoked or expired); ask an admin for one"
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail, {"WWW-Authenticate": challenge})


def forbidden(request: Request, principal: Principal, reason: str, detail: str) -> HTTPException:
    """A 403 for a valid key that may not do this; logged with the key's prefix."""
    AUTH_FAILURES.labels(reason=reason).inc()
    log.warning(
        "authorization refused",
        extra={"reason": reason, "key_prefix": principal.prefix, "path": request.url.path},
    )
    return HTTPException(status.HTTP_403_FORBIDDEN, detail)


def authenticated(
    request: Request,
    clients: ClientsDep,
    session: SessionDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    header: Annotated[str | None, Depends(header_scheme)],
) -> Principal:
    presented = {k for k in (bearer.credentials if bearer else None, header) if k}
    if not presented:
        raise _unauthorized(request, "missing", key_prefix=None)
    if len(presented) > 1:
        raise _unauthorized(request, "two different keys", key_prefix=None)
    key = presented.pop()
    try:
        return find_principal(
            session=session,
            key=key,
            environment_keys=clients.settings.environment_keys(),
            now=datetime.now(UTC),
        )
    except InvalidKeyError as exc:
        raise _unauthorized(request, str(exc), key_prefix=loggable_prefix(key)) from exc


class Require:
    """A dependency: a key with at least ``role``; ``fleet_wide`` also refuses camera scopes.

    A class rather than a closure so the role a route needs can be read back from the app's
    route table (the auth coverage test walks it, so a new route is checked without a list).
    """

    def __init__(self, role: Role, *, fleet_wide: bool = False) -> None:
        self.role = role
        self.fleet_wide = fleet_wide

    def __call__(
        self, request: Request, principal: Annotated[Principal, Depends(authenticated)]
    ) -> Principal:
        if not principal.role.includes(self.role):
            detail = f"this needs the {self.role} role; this key has {principal.role}"
            raise forbidden(request, principal, "role", detail)
        if self.fleet_wide and principal.scoped:
            detail = "this concerns the whole fleet; a camera-scoped key may not use it"
            raise forbidden(request, principal, "scope", detail)
        return principal


def require(role: Role, *, fleet_wide: bool = False) -> Require:
    return Require(role, fleet_wide=fleet_wide)


ViewerDep = Annotated[Principal, Depends(require(Role.VIEWER))]
OperatorDep = Annotated[Principal, Depends(require(Role.OPERATOR))]
AdminDep = Annotated[Principal, Depends(require(Role.ADMIN))]
FleetViewerDep = Annotated[Principal, Depends(require(Role.VIEWER, fleet_wide=True))]
FleetOperatorDep = Annotated[Principal, Depends(require(Role.OPERATOR, fleet_wide=True))]
