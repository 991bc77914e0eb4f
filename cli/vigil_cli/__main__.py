"""``python -m vigil_cli``: the same as the ``vigil`` console script."""

from __future__ import annotations

from vigil_cli.main import app

if __name__ == "__main__":
    app(prog_name="vigil")
