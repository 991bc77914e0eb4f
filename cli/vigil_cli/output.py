"""What a command prints: the API's JSON as is with ``--json`` (for scripts), else a table.

Data goes to stdout and nothing else does; errors and progress go to stderr, so
``vigil ... --json | jq`` always reads JSON.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

JsonOption = Annotated[
    bool, typer.Option("--json", help="Print the API's JSON (for scripts) instead of a table.")
]
Column = tuple[str, str | Callable[[Mapping[str, Any]], Any]]
"""A header and the field it shows (a dotted path) or a function of the row."""


def console() -> Console:
    return Console(highlight=False, soft_wrap=False)


def err_console() -> Console:
    return Console(stderr=True, highlight=False)


def emit_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=False))


def emit_json_line(data: Any) -> None:
    """One JSON document per line, flushed: for streams (``events tail``, ``jobs logs -f``)."""
    typer.echo(json.dumps(data, separators=(",", ":")))


def field(row: Mapping[str, Any], path: str) -> Any:
    value: Any = row
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, list | tuple):
        return ", ".join(text(v) for v in value) or "-"
    if isinstance(value, Mapping):
        return " ".join(f"{k}={text(v)}" for k, v in value.items()) or "-"
    return str(value)


def short_time(value: Any) -> str:
    """An API timestamp to the second, in the viewer's zone."""
    if not isinstance(value, str):
        return text(value)
    try:
        return datetime.fromisoformat(value).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return value


def table(rows: Iterable[Mapping[str, Any]], columns: Sequence[Column], *, title: str) -> None:
    grid = Table(title=title, title_justify="left")
    for header, _ in columns:
        grid.add_column(header, overflow="fold")
    count = 0
    for row in rows:
        count += 1
        grid.add_row(
            *(text(field(row, get) if isinstance(get, str) else get(row)) for _, get in columns)
        )
    if count == 0:
        err_console().print(f"no {title.lower()}")
        return
    console().print(grid)


def details(row: Mapping[str, Any], fields: Sequence[Column], *, title: str) -> None:
    """One object as a two-column table of its fields."""
    grid = Table(title=title, title_justify="left", show_header=False)
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    for name, get in fields:
        grid.add_row(name, text(field(row, get) if isinstance(get, str) else get(row)))
    console().print(grid)


def show(data: Any, as_json: bool, render: Callable[[], None]) -> None:
    """``--json``: the data as JSON; otherwise ``render()``, the human view."""
    if as_json:
        emit_json(data)
    else:
        render()
