"""One module per area of the API, each a ``typer.Typer`` mounted by ``vigil_cli.main``."""
