"""Live and stored events: a card per event with its snapshot and review buttons, a filtered
list a page at a time, one event's detail."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse

from vigil_api.console.backend import ApiDep
from vigil_api.console.render import PrincipalDep, render

router = APIRouter(prefix="/console/ui/events", include_in_schema=False)
PAGE = 25


def _aware(local: str | None) -> str | None:
    """A ``datetime-local`` field (no zone) read as UTC, which the API asks for."""
    if not local:
        return None
    return datetime.fromisoformat(local).replace(tzinfo=UTC).isoformat()


@router.get("", response_class=HTMLResponse)
async def event_list(
    request: Request,
    api: ApiDep,
    principal: PrincipalDep,
    camera_id: Annotated[str | None, Query()] = None,
    started_from: Annotated[str | None, Query()] = None,
    started_to: Annotated[str | None, Query()] = None,
    min_score: Annotated[str | None, Query()] = None,
    status: Annotated[str | None, Query()] = None,
    review: Annotated[str | None, Query()] = None,
    cursor: Annotated[str | None, Query()] = None,
) -> HTMLResponse:
    filters = {
        "camera_id": camera_id,
        "started_from": started_from,
        "started_to": started_to,
        "min_score": min_score,
        "status": status,
        "review": review,
    }
    page = await api.get(
        "/api/v1/events",
        **(filters | {"started_from": _aware(started_from), "started_to": _aware(started_to)}),
        cursor=cursor,
        limit=PAGE,
    )
    more = {k: v for k, v in filters.items() if v} | {"cursor": page["next_cursor"]}
    return render(request, "fragments/events.html", principal, page=page, more=more)


@router.get("/{event_id}", response_class=HTMLResponse)
async def event_detail(
    request: Request, event_id: uuid.UUID, api: ApiDep, principal: PrincipalDep
) -> HTMLResponse:
    event = await api.get(f"/api/v1/events/{event_id}")
    return render(request, "fragments/event_detail.html", principal, event=event)


@router.get("/{event_id}/card", response_class=HTMLResponse)
async def event_card(
    request: Request, event_id: uuid.UUID, api: ApiDep, principal: PrincipalDep
) -> HTMLResponse:
    event = await api.get(f"/api/v1/events/{event_id}")
    return render(request, "fragments/event_card.html", principal, event=event)


@router.post("/{event_id}/review", response_class=HTMLResponse)
async def review(
    request: Request,
    event_id: uuid.UUID,
    api: ApiDep,
    principal: PrincipalDep,
    verdict: Annotated[str, Form()],
    label: Annotated[str, Form()] = "",
    view: Annotated[str, Form()] = "card",
) -> HTMLResponse:
    """Record a verdict (the API checks the role), then show the event again."""
    body = {"verdict": verdict, "label": label.strip() or None}
    event = await api.send("POST", f"/api/v1/events/{event_id}/feedback", body)
    name = "event_detail" if view == "detail" else "event_card"
    return render(request, f"fragments/{name}.html", principal, event=event)
