"""``vigil``: the command tree, ``login``, and one place where failures become exit codes."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from typer._click import Context  # typer vendors click; its groups are invoked with this
from typer.core import TyperGroup

from vigil_cli import config
from vigil_cli.client import ApiClient, CliError, ExitCode, busy_retry_s
from vigil_cli.commands import cameras, datasets, demo, events, gate, jobs, keys, models, replays
from vigil_cli.output import JsonOption, emit_json


class VigilGroup(TyperGroup):
    """Every command runs inside this: a ``CliError`` prints its message on stderr and exits
    with its code (see ``ExitCode``), never a traceback."""

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except CliError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(int(exc.code)) from exc
        except config.ConfigError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(int(ExitCode.ERROR)) from exc


app = typer.Typer(
    cls=VigilGroup,
    name="vigil",
    help="Operate Vigil from a shell: cameras, events, datasets, jobs, models, the gate, "
    "replays and keys.\n\n"
    "Exit codes: 0 ok, 1 other refusal, 2 usage, 3 API unreachable, 4 key refused (401/403), "
    "5 not found, 6 invalid request (400/411/413/422), 7 server error, 8 watched job or replay "
    "failed.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
for module in (cameras, events, datasets, jobs, models, gate, replays, keys, demo):
    app.add_typer(module.app)


def read_key(key_file: Path | None) -> str:
    if key_file is None:
        return str(typer.prompt("API key", hide_input=True)).strip()
    source = sys.stdin.read() if str(key_file) == "-" else key_file.read_text()
    return source.strip()


@app.command()
def login(
    url: Annotated[
        str | None,
        typer.Option(help="The API's address (default: VIGIL_URL, the file's, or local)."),
    ] = None,
    key_file: Annotated[
        Path | None,
        typer.Option(help="Read the key from this file ('-': stdin) instead of a prompt."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Check a key against the API and keep it, with the URL, in the config file (mode 600).

    The key is never an argument: arguments are visible to every user in ps.
    """
    current = config.load()
    chosen = config.Config(url=(url or current.url).rstrip("/"), key=read_key(key_file))
    if not chosen.key:
        raise CliError("the key is empty", ExitCode.USAGE)
    with ApiClient(chosen, retry_for_s=busy_retry_s()) as api:
        api.get("/api/v1/models", limit=1)  # any key (a viewer's too) may read this
    path = config.save(chosen)
    if as_json:
        emit_json({"url": chosen.url, "config": str(path)})
    else:
        typer.echo(f"logged in to {chosen.url}; URL and key kept in {path} (mode 600)")
