"""The API over HTTP, and its errors as exit codes a script can act on.

Every failed call becomes a ``CliError`` carrying the problem details the API answered
(RFC 9457: ``title``, ``status``, ``detail``, field ``errors``, ``request_id``) and an exit
code by kind, so ``vigil ... || case $? in 4) ...`` can tell a bad key from a missing camera.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from enum import IntEnum
from typing import Any

import httpx

from vigil_cli.config import Config, load

USER_AGENT = "vigil-cli/0.1"


class ExitCode(IntEnum):
    OK = 0
    ERROR = 1
    """Any other refusal (409 conflict, ...)."""
    USAGE = 2
    """The command line itself is wrong (typer's own code)."""
    UNREACHABLE = 3
    AUTH = 4
    """401 (no key, or a key the API does not take) or 403 (this key may not do that)."""
    NOT_FOUND = 5
    INVALID = 6
    """400, 411, 413, 422: the request was refused as sent; the detail says what to change."""
    SERVER = 7
    """5xx: the API or one of its servers failed; the request id leads to its logs."""
    JOB_FAILED = 8
    """``jobs watch``: the job ended failed or cancelled."""


class CliError(Exception):
    """A failure to report in one or two lines, then exit with ``code``."""

    def __init__(self, message: str, code: ExitCode, problem: Mapping[str, Any] | None = None):
        super().__init__(message)
        self.code = code
        self.problem = dict(problem or {})


def exit_code_for(status: int) -> ExitCode:
    if status in (401, 403):
        return ExitCode.AUTH
    if status == 404:
        return ExitCode.NOT_FOUND
    if status in (400, 411, 413, 422):
        return ExitCode.INVALID
    if status >= 500:
        return ExitCode.SERVER
    return ExitCode.ERROR


def problem_of(response: httpx.Response) -> dict[str, Any]:
    """The problem document, or one made from whatever the server sent (a proxy's page)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "status" in body:
        return body
    text = response.text.strip()[:300] or response.reason_phrase
    return {"title": response.reason_phrase, "status": response.status_code, "detail": text}


def error_from(response: httpx.Response) -> CliError:
    problem = problem_of(response)
    status = int(problem.get("status") or response.status_code)
    message = f"{problem.get('title', response.reason_phrase)} ({status}): {problem.get('detail')}"
    if status == 401:
        message += "\n  (run `vigil login`, or set VIGIL_API_KEY, with a valid key)"
    if problem.get("request_id"):
        message += f"\n  request id: {problem['request_id']}"
    return CliError(message, exit_code_for(status), problem)


class ApiClient:
    """One connection pool to the API, the key sent with every request."""

    def __init__(self, config: Config, *, timeout_s: float = 30.0) -> None:
        if not config.key:
            raise CliError("no API key: run `vigil login` (or set VIGIL_API_KEY)", ExitCode.AUTH)
        self.url = config.url
        self.http = httpx.Client(
            base_url=config.url,
            headers={"Authorization": f"Bearer {config.key}", "User-Agent": USER_AGENT},
            timeout=timeout_s,
        )

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.http.close()

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """The decoded JSON of a 2xx answer; ``CliError`` for anything else."""
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise self.unreachable(exc) from exc
        if response.is_error:
            raise error_from(response)
        return response.json() if response.content else None

    def get(self, path: str, **params: Any) -> Any:
        return self.call("GET", path, params=_clean(params))

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        if body is not None:
            kwargs["json"] = body
        return self.call("POST", path, **kwargs)

    def patch(self, path: str, body: Any) -> Any:
        return self.call("PATCH", path, json=body)

    def delete(self, path: str) -> Any:
        return self.call("DELETE", path)

    @contextmanager
    def stream(
        self, path: str, *, params: Mapping[str, Any], headers: Mapping[str, str]
    ) -> Iterator[httpx.Response]:
        """A streamed GET; the read timeout outlasts the server's 15 s keep-alives."""
        timeout = httpx.Timeout(30.0, read=60.0)
        try:
            with self.http.stream(
                "GET", path, params=_clean(dict(params)), headers=dict(headers), timeout=timeout
            ) as response:
                if response.is_error:
                    response.read()
                    raise error_from(response)
                yield response
        except httpx.TransportError as exc:
            raise self.unreachable(exc) from exc

    def unreachable(self, exc: Exception) -> CliError:
        return CliError(
            f"cannot reach the API at {self.url} ({exc}); is it running? "
            "(`vigil login --url ...` or VIGIL_URL say where it is)",
            ExitCode.UNREACHABLE,
        )


def connect() -> ApiClient:
    """A client for the configured API (``vigil login``, or VIGIL_URL and VIGIL_API_KEY)."""
    return ApiClient(load())


def _clean(params: Mapping[str, Any]) -> dict[str, Any]:
    """Query parameters without the options left unset."""
    return {k: v for k, v in params.items() if v is not None and v != [] and v != ()}
