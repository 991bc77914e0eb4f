"""``python -m vigil_ingest``: publish one camera's frames until its source ends or SIGTERM.

Exit status: 0 when the source ended or the process was stopped, 1 when the camera stopped on an
error (a file that cannot be read, a crashed loop), 2 for configuration to fix (one line on
stderr says what).
"""

from __future__ import annotations

import logging
import sys

from vigil_ingest.metrics import MetricsPortError
from vigil_ingest.service import run
from vigil_ingest.settings import get_settings
from vigil_ingest.sources import SourceError
from vigil_shared.kafka import KafkaUnavailableError
from vigil_shared.lifecycle import stop_on_signals
from vigil_shared.logging import bind, configure_logging

log = logging.getLogger("vigil_ingest")


def main() -> None:
    settings = get_settings()
    configure_logging("ingest", settings.common.log_level)
    stop = stop_on_signals()
    with bind(camera_id=settings.camera_id):
        try:
            finish = run(settings, stop)
        except (SourceError, KafkaUnavailableError, MetricsPortError) as exc:
            log.error(str(exc))
            print(f"ingest: {exc}", file=sys.stderr)
            sys.exit(2)
    sys.exit(1 if finish.failed else 0)


if __name__ == "__main__":
    main()
