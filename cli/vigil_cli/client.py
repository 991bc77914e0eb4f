"""The API over HTTP, and its errors as exit codes a script can act on.

Every failed call becomes a ``CliError`` carrying the problem details the API answered
(RFC 9457: ``title``, ``status``, ``detail``, field ``errors``, ``request_id``) and an exit
code by kind, so ``vigil ... || case $? in 4) ...`` can tell a bad key from a missing camera.

A 503 or 429 that carries ``Retry-After`` is the API saying "busy, come back then" (every
dataset-version build slot taken, every event stream open), having done nothing; the client
waits as asked and sends the request again, for up to ``VIGIL_BUSY_RETRY_S`` seconds in all,
so a script uploading alongside others is not failed by a queue.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import IntEnum
from typing import Any

import httpx

from vigil_cli.config import Config, load

USER_AGENT = "vigil-cli/0.1"
BUSY_RETRY_VARIABLE = "VIGIL_BUSY_RETRY_S"
DEFAULT_BUSY_RETRY_S = 300.0
"""Long enough for two or three uploads ahead in the API's build slots; 0 turns retries off."""
BUSY_STATUSES = frozenset({429, 503})
MIN_WAIT_S = 1.0
"""A "retry at once" (``Retry-After: 0``) still waits this long: a busy API is not hammered."""


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
    """``jobs watch``: the job ended failed or cancelled; ``replays watch``: the replay failed."""


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


def retry_after_s(
    status: int, headers: Mapping[str, str], now: datetime | None = None
) -> float | None:
    """How long a busy answer asks the client to wait (RFC 9110 ``Retry-After``: seconds or an
    HTTP date); None when the answer is not "busy, retry" or does not say when."""
    if status not in BUSY_STATUSES:
        return None
    value = headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def busy_retry_s(environ: Mapping[str, str] | None = None) -> float:
    """``VIGIL_BUSY_RETRY_S``: how long in all to keep retrying busy answers (0: never)."""
    raw = (os.environ if environ is None else environ).get(BUSY_RETRY_VARIABLE, "").strip()
    if not raw:
        return DEFAULT_BUSY_RETRY_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise CliError(
            f"{BUSY_RETRY_VARIABLE}={raw!r} is not a number of seconds (0 or more)", ExitCode.USAGE
        )
    return value


def say_waiting(response: httpx.Response, wait_s: float) -> None:
    problem = problem_of(response)
    print(
        f"the API is busy ({response.status_code}: {problem.get('detail')}); "
        f"retrying in {wait_s:.0f} s",
        file=sys.stderr,
    )


class ApiClient:
    """One connection pool to the API, the key sent with every request."""

    def __init__(
        self,
        config: Config,
        *,
        timeout_s: float = 30.0,
        retry_for_s: float = DEFAULT_BUSY_RETRY_S,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        on_wait: Callable[[httpx.Response, float], None] = say_waiting,
    ) -> None:
        if not config.key:
            raise CliError("no API key: run `vigil login` (or set VIGIL_API_KEY)", ExitCode.AUTH)
        self.url = config.url
        self.http = httpx.Client(
            base_url=config.url,
            headers={"Authorization": f"Bearer {config.key}", "User-Agent": USER_AGENT},
            timeout=timeout_s,
            transport=transport,
        )
        self.retry_for_s = retry_for_s
        self.sleep = sleep
        self.clock = clock
        self.on_wait = on_wait

    def waited(self, response: httpx.Response, deadline: float) -> bool:
        """Whether a busy ``response`` was waited out (so the request goes again): only while
        the wait it asks for ends before ``deadline``."""
        asked_s = retry_after_s(response.status_code, response.headers)
        if asked_s is None:
            return False
        wait_s = max(asked_s, MIN_WAIT_S)
        if self.clock() + wait_s > deadline:
            return False
        self.on_wait(response, wait_s)
        self.sleep(wait_s)
        return True

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.http.close()

    def fetch(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A 2xx answer (busy answers waited out); ``CliError`` for anything else. A file in
        ``files`` is sent again from its start on each try."""
        deadline = self.clock() + self.retry_for_s
        while True:
            try:
                response = self.http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                raise self.unreachable(exc) from exc
            if not response.is_error:
                return response
            if not self.waited(response, deadline):
                raise error_from(response)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """The decoded JSON of a 2xx answer (None when it has no body), as ``fetch``."""
        response = self.fetch(method, path, **kwargs)
        return response.json() if response.content else None

    def get(self, path: str, **params: Any) -> Any:
        return self.call("GET", path, params=_clean(params))

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        if body is not None:
            kwargs["json"] = body
        return self.call("POST", path, **kwargs)

    def patch(self, path: str, body: Any) -> Any:
        return self.call("PATCH", path, json=body)

    def delete(self, path: str, **params: Any) -> Any:
        return self.call("DELETE", path, params=_clean(params))

    @contextmanager
    def stream(
        self, path: str, *, params: Mapping[str, Any], headers: Mapping[str, str]
    ) -> Iterator[httpx.Response]:
        """A streamed GET (busy answers waited out); the read timeout outlasts the server's
        15 s keep-alives."""
        timeout = httpx.Timeout(30.0, read=60.0)
        deadline = self.clock() + self.retry_for_s
        try:
            while True:
                with self.http.stream(
                    "GET", path, params=_clean(dict(params)), headers=dict(headers), timeout=timeout
                ) as response:
                    if not response.is_error:
                        yield response
                        return
                    response.read()
                    if not self.waited(response, deadline):
                        raise error_from(response)
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
    return ApiClient(load(), retry_for_s=busy_retry_s())


def _clean(params: Mapping[str, Any]) -> dict[str, Any]:
    """Query parameters without the options left unset."""
    return {k: v for k, v in params.items() if v is not None and v != [] and v != ()}
