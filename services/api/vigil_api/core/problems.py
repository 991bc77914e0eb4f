"""Errors in one shape: RFC 9457 problem details (``application/problem+json``).

Every problem names the request (``request_id``, also in the ``X-Request-ID`` header and in
every log line of the request) so a user's report can be matched with the server's logs.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from vigil_api.domain.registry_stages import AssignmentPublishError

PROBLEM_TYPE = "application/problem+json"
REQUEST_ID_HEADER = "X-Request-ID"
log = logging.getLogger("vigil_api")


class FieldError(BaseModel):
    field: str = Field(examples=["query.limit"])
    message: str = Field(examples=["Input should be less than or equal to 500"])


class Problem(BaseModel):
    """RFC 9457 problem details, with the request id and (for 422) the fields at fault."""

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str = Field(examples=["Not Found"])
    status: int = Field(ge=400, le=599, examples=[404])
    detail: str = Field(examples=["event 1b4e28ba-2fa1-11d2-883f-0016d3cca427 does not exist"])
    instance: str | None = Field(default=None, description="The path of the failed request.")
    request_id: str | None = Field(default=None, examples=["5f0c7a4e9d2b4c8a8e1f3a6b7c9d0e12"])
    errors: list[FieldError] | None = Field(default=None, description="Only on 422.")


_EXAMPLES: dict[int, str] = {
    400: "the request cannot be served as sent; the detail says what to change",
    401: "this route needs an API key: send the key as 'Authorization: Bearer <key>'",
    403: "this needs the operator role; this key has viewer",
    404: "event 1b4e28ba-2fa1-11d2-883f-0016d3cca427 does not exist",
    409: "camera lobby-north already exists",
    413: "the request body is larger than 1048576 bytes (VIGIL_API_BODY_MAX_BYTES)",
    422: "query.limit: Input should be less than or equal to 500",
    503: "too many open event streams; retry in a few seconds",
}


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for these error codes; ``document`` gives each the problem
    schema and an example."""
    return {code: {"description": _title(code)} for code in codes}


def _example(code: int) -> dict[str, Any]:
    return {
        "type": "about:blank",
        "title": _title(code),
        "status": code,
        "detail": _EXAMPLES.get(code, _title(code)),
        "instance": "/api/v1/events",
        "request_id": "5f0c7a4e9d2b4c8a8e1f3a6b7c9d0e12",
    }


def document(app: FastAPI) -> None:
    """Make the OpenAPI document say what the API does: every error of an ``/api/`` route is a
    problem (``application/problem+json``), including FastAPI's own 422, which it would
    otherwise describe as its default validation-error shape; a route with a path parameter
    can answer 404, one with a body 400 (not parseable) and 413 (over its size limit)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        problem_schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(problem_schema.pop("$defs", {}))
        components["Problem"] = problem_schema
        for path, operations in schema["paths"].items():
            if not path.startswith("/api/"):
                continue
            for operation in operations.values():
                if "{" in path:  # whatever the path names may not exist (or not for this key)
                    operation["responses"].setdefault("404", {"description": _title(404)})
                if "requestBody" in operation:  # a body that is not JSON, or is too large
                    operation["responses"].setdefault("400", {"description": _title(400)})
                    operation["responses"].setdefault("413", {"description": _title(413)})
                for code, response in operation["responses"].items():
                    if code.startswith(("4", "5")):
                        response["content"] = {
                            PROBLEM_TYPE: {
                                "schema": {"$ref": "#/components/schemas/Problem"},
                                "example": _example(int(code)),
                            }
                        }
        for unused in ("HTTPValidationError", "ValidationError"):
            components.pop(unused, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


class BodyTooLargeError(HTTPException):
    """A request body over its route's limit, raised as its bytes arrive (``middleware.py``).

    An ``HTTPException`` so that FastAPI, which turns any other error while reading a body into
    a 400, passes it on to the problem handlers."""

    def __init__(self, detail: str) -> None:
        super().__init__(413, detail)


class InvalidBodyError(HTTPException):
    """A 422 for a body refused before any model sees it (a JSON document too deep, a NUL),
    raised while the body is read, where only ``HTTPException``s pass through FastAPI."""

    def __init__(self, location: tuple[str | int, ...], message: str) -> None:
        self.field = ".".join(str(part) for part in ("body", *location))
        super().__init__(422, f"{self.field}: {message}")
        self.message = message


def request_id_of(request: Request) -> str | None:
    request_id: str | None = getattr(request.state, "request_id", None)
    return request_id


def problem(
    request: Request,
    status: int,
    detail: str,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    request_id = request_id_of(request)
    body = {
        "type": "about:blank",
        "title": _title(status),
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        "request_id": request_id,
        **extra,
    }
    all_headers = dict(headers or {})
    if request_id is not None:
        all_headers[REQUEST_ID_HEADER] = request_id
    return JSONResponse(body, status_code=status, media_type=PROBLEM_TYPE, headers=all_headers)


def invalid_field(location: tuple[str, ...], message: str) -> RequestValidationError:
    """A 422 for one field that only the domain can check (e.g. a model that must exist)."""
    return RequestValidationError([{"loc": location, "msg": message, "type": "value_error"}])


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    # Headers carry meaning in some errors (WWW-Authenticate on a 401), so they pass through.
    return problem(request, exc.status_code, str(exc.detail), exc.headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()
    ]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return problem(request, 422, detail, errors=errors)


async def _invalid_body(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InvalidBodyError)
    errors = [{"field": exc.field, "message": exc.message}]
    return problem(request, 422, str(exc.detail), errors=errors)


async def _unpublished(request: Request, exc: Exception) -> JSONResponse:
    # Any route that changes an assignment publishes it before committing; when Kafka does not
    # acknowledge, nothing was stored and the caller may simply retry.
    return problem(request, 503, str(exc))


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    # The traceback goes to the log with the request id; the caller gets the id, not internals.
    log.error(
        "unhandled error",
        exc_info=exc,
        extra={"request_id": request_id_of(request), "path": request.url.path},
    )
    detail = "an unexpected error; report the request id to the operators"
    return problem(request, 500, detail)


def _title(status: int) -> str:
    return HTTPStatus(status).phrase


def install(app: FastAPI) -> None:
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(InvalidBodyError, _invalid_body)
    app.add_exception_handler(AssignmentPublishError, _unpublished)
    app.add_exception_handler(Exception, _unexpected_error)
    document(app)
