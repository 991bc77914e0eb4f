"""How the console reads and changes things: through the API's own JSON routes, in process.

A console page is rendered from what the JSON API answers to the same key: every rule of role
and camera scope, every check of input and every problem is the API's, applied once. The call
goes through the app itself (``httpx.ASGITransport``), not the network, with the caller's key
forwarded as it came; a refusal comes back as ``ApiProblemError`` with the title and detail.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

import httpx
from fastapi import Depends, Request

# The key travels in one of these (core/auth.py); the console's script sends X-API-Key.
KEY_HEADERS = ("authorization", "x-api-key")


class ApiProblemError(Exception):
    """The API refused or failed a call: its status and problem details."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(f"{status} {title}: {detail}")
        self.status = status
        self.title = title
        self.detail = detail


@dataclass(frozen=True)
class ConsoleApi:
    client: httpx.AsyncClient

    async def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = await self.client.request(method, path, **kwargs)
        if response.is_success:
            return response
        raise _problem(response)

    async def get(self, path: str, **params: Any) -> Any:
        query = {k: v for k, v in params.items() if v not in (None, "", [])}
        return (await self.call("GET", path, params=query)).json()

    async def send(self, method: str, path: str, body: Any) -> Any:
        return (await self.call(method, path, json=body)).json()


def _problem(response: httpx.Response) -> ApiProblemError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    title = str(body.get("title") or response.reason_phrase)
    detail = str(body.get("detail") or response.text[:300])  # a 422's names its fields
    return ApiProblemError(response.status_code, title, detail)


async def console_api(request: Request) -> AsyncIterator[ConsoleApi]:
    headers = {name: request.headers[name] for name in KEY_HEADERS if name in request.headers}
    transport = httpx.ASGITransport(app=request.app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://console.internal", headers=headers, timeout=60
    ) as client:
        yield ConsoleApi(client)


ApiDep = Annotated[ConsoleApi, Depends(console_api)]
