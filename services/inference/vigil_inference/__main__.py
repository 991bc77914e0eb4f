"""``python -m vigil_inference``: consume frames, emit anomaly events, stop cleanly on SIGTERM."""

from __future__ import annotations

import logging
import sys

from vigil_inference.service import build_worker
from vigil_inference.settings import get_settings
from vigil_shared.kafka import KafkaUnavailableError
from vigil_shared.lifecycle import stop_on_signals
from vigil_shared.logging import configure_logging
from vigil_shared.metrics import MetricsPortError
from vigil_shared.storage import StorageError
from vigil_shared.vision.backbones import WeightsError

log = logging.getLogger("vigil_inference")


def main() -> None:
    settings = get_settings()
    configure_logging("inference", settings.common.log_level)
    stop = stop_on_signals()
    try:
        worker = build_worker(settings)
    except (KafkaUnavailableError, StorageError, WeightsError, MetricsPortError) as exc:
        print(f"inference: {exc}", file=sys.stderr)
        sys.exit(2)
    group = settings.common.kafka.consumer_group(settings.group_id)
    log.info("inference started", extra={"group_id": group})
    worker.run(stop)
    log.info(
        "inference stopped",
        extra={"frames": worker.frames_scored, "events": worker.events_emitted},
    )


if __name__ == "__main__":
    main()
