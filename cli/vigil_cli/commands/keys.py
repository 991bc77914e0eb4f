"""``vigil keys``: list, create (the key is shown once), revoke; admin only."""

from __future__ import annotations

from typing import Annotated

import typer

from vigil_cli.client import connect
from vigil_cli.output import Column, JsonOption, details, err_console, short_time, show, table

app = typer.Typer(name="keys", help="API keys (admin): roles and camera scopes.")

COLUMNS: list[Column] = [
    ("id", "id"),
    ("name", "name"),
    ("prefix", "prefix"),
    ("role", "role"),
    ("cameras", lambda k: k.get("camera_ids") or "all"),
    ("created", lambda k: short_time(k.get("created_at"))),
    ("expires", lambda k: short_time(k.get("expires_at"))),
    ("revoked", lambda k: short_time(k.get("revoked_at"))),
]


@app.command("list")
def list_keys(
    include_revoked: Annotated[bool, typer.Option("--all", help="Revoked keys too.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Keys by creation (never the keys themselves: only their prefixes)."""
    with connect() as api:
        keys = api.get("/api/v1/keys", include_revoked=include_revoked or None)
    show(keys, as_json, lambda: table(keys, COLUMNS, title="Keys"))


@app.command("create")
def create(
    name: Annotated[str, typer.Option(help="Who or what holds it: 'lobby screen'.")],
    role: Annotated[str, typer.Option(help="viewer, operator or admin.")] = "viewer",
    camera: Annotated[
        list[str] | None,
        typer.Option("--camera", "-c", help="Only this camera (repeatable); none: every camera."),
    ] = None,
    expires: Annotated[str | None, typer.Option(help="Expiry, an ISO time with a zone.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Create a key; it is printed once (key), keep it now."""
    body = {"name": name, "role": role, "camera_ids": camera or None, "expires_at": expires}
    with connect() as api:
        created = api.post("/api/v1/keys", body)

    def render() -> None:
        details(created, [*COLUMNS, ("key", "key")], title="Key created")
        err_console().print("the key is shown only now: keep it somewhere safe")

    show(created, as_json, render)


@app.command("revoke")
def revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (from keys list).")],
    as_json: JsonOption = False,
) -> None:
    """Revoke a key at once; it stays listed (--all) for the audit trail."""
    with connect() as api:
        revoked = api.delete(f"/api/v1/keys/{key_id}")
    show(revoked, as_json, lambda: details(revoked, COLUMNS, title="Key revoked"))
