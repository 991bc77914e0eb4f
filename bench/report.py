"""How a benchmark hands over its figures: printed for the reader, and kept as JSON beside the
docs that quote them (``bench/results/``), so a figure in ``docs/`` can be traced to its run."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any


def emit(report: dict[str, Any], path: Path | None) -> None:
    text = json.dumps(report, indent=2)
    print(text)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")


def run_and_emit(
    run: Callable[[argparse.Namespace], dict[str, Any]], args: argparse.Namespace
) -> dict[str, Any]:
    """A bench's ``main``: its report printed, and written to ``--json`` when given."""
    report = run(args)
    emit(report, args.json)
    return report
