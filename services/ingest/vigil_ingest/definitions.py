"""Camera definitions as the API stores them, and the client that reads them in fleet mode.

Ingest reads ``GET /api/v1/ingest/cameras``: the cameras with their full source (a URL's
password included, which the API's other routes never show), so the key ingest uses must hold
the operator role. The fields are checked by the camera contract (``vigil_shared.cameras``), as
the API checks them. A camera the API lists but ingest cannot take (a field out of range, a mask
that is not a polygon) is skipped with a warning instead of failing the whole fleet.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vigil_ingest.metrics import IngestMetrics
from vigil_ingest.settings import IngestSettings
from vigil_shared.cameras.fields import Fps, JpegQuality, Masks, Pixels
from vigil_shared.schemas.frames import CameraId

log = logging.getLogger(__name__)
DEFINITIONS_PATH = "/api/v1/ingest/cameras"
PAGE = 500  # the API's largest page


class DefinitionsError(RuntimeError):
    """The API did not give the camera definitions; ``fatal`` when only a person can fix it
    (a wrong key or a key without the operator role), not a network fault that may pass."""

    def __init__(self, message: str, *, fatal: bool = False) -> None:
        super().__init__(message)
        self.fatal = fatal


API_KEY_REFUSED = "api key refused"


class ApiKeyStatus:
    """Whether the API still takes ingest's key (fleet mode). A key refused after start (an
    admin revoked it) stops nothing, since the running cameras are fine, but ingest can no longer
    follow the API: a camera registered or changed meanwhile is not run. So it must be seen:
    ``/readyz`` lists it, ``vigil_ingest_api_key_refused`` is 1, and every running camera's
    status reason says ``api key refused: ...``."""

    def __init__(self, metrics: IngestMetrics) -> None:
        self._gauge = metrics.api_key_refused
        self._gauge.set(0)
        self.problem: str | None = None

    def refused(self, error: DefinitionsError) -> bool:
        """Record the refusal; True when the key was accepted until now."""
        was, self.problem = self.problem, f"{API_KEY_REFUSED}: {error}"
        self._gauge.set(1)
        return was is None

    def accepted(self) -> bool:
        """The API read the cameras again; True when it refused the key until now."""
        was, self.problem = self.problem, None
        self._gauge.set(0)
        return was is not None

    def readiness(self) -> list[str]:
        problem = self.problem
        return [problem] if problem is not None else []


class CameraDefinition(BaseModel):
    """What ingest needs of one camera; any other field the API sends is ignored, and a field
    the API does not send yet (``masks``) means none."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: CameraId
    source: str = Field(min_length=1)
    target_fps: Fps
    max_width: Pixels
    max_height: Pixels
    jpeg_quality: JpegQuality
    enabled: bool = True
    masks: Masks = ()

    def settings(self, base: IngestSettings) -> IngestSettings:
        """The one-camera settings this camera runs with: its fields over the process's."""
        return base.model_copy(
            update={
                "camera_id": self.id,
                "source": self.source,
                "fps": self.target_fps,
                "max_width": self.max_width,
                "max_height": self.max_height,
                "jpeg_quality": self.jpeg_quality,
                "masks": self.masks,
            }
        )


def make_api_client(settings: IngestSettings) -> httpx.Client:
    if settings.api_url is None or settings.api_key is None:
        raise ValueError("fleet mode needs VIGIL_INGEST_API_URL and VIGIL_INGEST_API_KEY")
    return httpx.Client(
        base_url=str(settings.api_url),
        headers={"Authorization": f"Bearer {settings.api_key.get_secret_value()}"},
        timeout=settings.api_timeout_s,
    )


def _parse(rows: list[Any]) -> list[CameraDefinition]:
    definitions = []
    for row in rows:
        try:
            definitions.append(CameraDefinition.model_validate(row))
        except ValidationError as exc:
            camera_id = row.get("id") if isinstance(row, dict) else None
            log.warning(
                "camera definition skipped: ingest cannot run it",
                extra={"camera_id": camera_id, "error": str(exc)},
            )
    return definitions


def _page(client: httpx.Client, after: str | None) -> list[Any]:
    params: dict[str, str | int] = {"limit": PAGE} | ({"after": after} if after else {})
    try:
        response = client.get(DEFINITIONS_PATH, params=params)
    except httpx.HTTPError as exc:
        raise DefinitionsError(f"cannot reach the API at {client.base_url}: {exc}") from exc
    if response.status_code in {401, 403}:
        raise DefinitionsError(
            f"the API refused VIGIL_INGEST_API_KEY ({response.status_code}: "
            f"{response.text[:300]}); give ingest a valid key with the operator role",
            fatal=True,
        )
    if response.status_code != 200:
        detail = response.text[:300]
        raise DefinitionsError(f"the API answered {response.status_code} for cameras: {detail}")
    try:
        rows = response.json()
    except ValueError as exc:
        raise DefinitionsError(f"the API's camera list is not JSON: {exc}") from exc
    if not isinstance(rows, list):
        raise DefinitionsError("the API's camera list is not a JSON array")
    return rows


def fetch_definitions(client: httpx.Client) -> list[CameraDefinition]:
    """Every camera the key may see, page by page; raises ``DefinitionsError``."""
    rows: list[Any] = []
    after: str | None = None
    while True:
        page = _page(client, after)
        rows.extend(page)
        if len(page) < PAGE:
            return _parse(rows)
        last = page[-1]
        after = last.get("id") if isinstance(last, dict) else None
        if not isinstance(after, str):
            raise DefinitionsError("the API's camera list has an entry without an id")
