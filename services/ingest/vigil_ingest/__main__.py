"""``python -m vigil_ingest``: publish camera frames until SIGTERM (or the one source ends).

With ``VIGIL_INGEST_API_URL`` set it runs every enabled camera the API defines and follows
their changes (fleet mode); otherwise the one camera ``VIGIL_INGEST_*`` describes.

Exit status: 0 when the source ended or the process was stopped, 1 when the camera stopped on an
error (a file that cannot be read, a crashed loop), 2 for configuration to fix (one line on
stderr says what).
"""

from __future__ import annotations

import logging
import sys

from pydantic import ValidationError

from vigil_ingest.definitions import DefinitionsError
from vigil_ingest.metrics import MetricsPortError
from vigil_ingest.push_server import PushPortError
from vigil_ingest.service import run, run_fleet
from vigil_ingest.settings import IngestSettings, get_settings
from vigil_ingest.sources import SourceError
from vigil_shared.kafka import KafkaUnavailableError
from vigil_shared.lifecycle import stop_on_signals
from vigil_shared.logging import bind, configure_logging

log = logging.getLogger("vigil_ingest")
CONFIGURATION_ERRORS = (
    SourceError,
    KafkaUnavailableError,
    MetricsPortError,
    PushPortError,
    DefinitionsError,
)


def _run(settings: IngestSettings) -> int:
    stop = stop_on_signals()
    if settings.fleet:
        log.info("fleet mode", extra={"api_url": str(settings.api_url)})
        run_fleet(settings, stop)
        return 0
    with bind(camera_id=settings.camera_id):
        finish = run(settings, stop)
    return 1 if finish.failed else 0


def _settings_problems(error: ValidationError) -> str:
    """One line naming each variable to fix, as the operator sets them."""
    problems = []
    for item in error.errors():
        parts = [part for part in item["loc"] if isinstance(part, str)]
        # The shared settings (``common``) are VIGIL_*, not VIGIL_INGEST_COMMON_*.
        prefix = "VIGIL_" if parts[:1] == ["common"] else "VIGIL_INGEST_"
        field = "_".join(parts[1:] if parts[:1] == ["common"] else parts)
        message = item["msg"].removeprefix("Value error, ")
        problems.append(f"{prefix}{field.upper()}: {message}" if field else message)
    return "; ".join(problems)


def main() -> None:
    try:
        settings = get_settings()
    except ValidationError as exc:
        print(f"ingest: invalid settings: {_settings_problems(exc)}", file=sys.stderr)
        sys.exit(2)
    configure_logging("ingest", settings.common.log_level)
    try:
        status = _run(settings)
    except CONFIGURATION_ERRORS as exc:
        log.error(str(exc))
        print(f"ingest: {exc}", file=sys.stderr)
        sys.exit(2)
    sys.exit(status)


if __name__ == "__main__":
    main()
