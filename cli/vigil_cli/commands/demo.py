"""``vigil demo datasets``: the README's datasets, built and uploaded through the API."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer

from vigil_cli.client import CliError, ExitCode, connect
from vigil_cli.commands.datasets import VERSION_COLUMNS, upload_archive
from vigil_cli.demo_data import DemoDataError, build
from vigil_cli.output import Column, JsonOption, err_console, show, table

app = typer.Typer(name="demo", help="Demo data for trying Vigil out.")


@app.command("datasets")
def datasets(
    ped2: Annotated[
        Path, typer.Option(help="UCSD Ped2 (from the repository root: beside it, in ../shared).")
    ] = Path("../shared/datasets/ucsd-ped2"),
    as_json: JsonOption = False,
) -> None:
    """Upload walkway-normal (normal clips, for one_class) and walkway-labeled (normal and
    abnormal frames, for classify), from UCSD Ped2 or, without it, FFmpeg's test scene."""
    with tempfile.TemporaryDirectory(prefix="vigil-demo-") as work:
        try:
            source, sets = build(ped2, Path(work))
        except DemoDataError as exc:
            raise CliError(str(exc), ExitCode.ERROR) from exc
        if not as_json:
            err_console().print(f"demo datasets from {source}")
        with connect() as api:
            created = [
                upload_archive(
                    api, name=s.name, archive=s.archive, description=s.description, quiet=as_json
                )
                for s in sets
            ]
    columns: list[Column] = [("dataset", "name"), *VERSION_COLUMNS, ("new", "created")]
    result = {"source": source, "datasets": created}
    show(result, as_json, lambda: table(created, columns, title="Demo datasets"))
