"""``python -m vigil_ingest``: publish one camera's frames until the source ends or SIGTERM."""

from __future__ import annotations

import logging
import sys
import threading
import time

from vigil_ingest.publisher import FramePublisher, capture_time
from vigil_ingest.settings import IngestSettings, get_settings
from vigil_ingest.video import SourceError, iter_frames, pace
from vigil_shared.kafka import KafkaUnavailableError, ensure_topics, make_producer
from vigil_shared.lifecycle import stop_on_signals
from vigil_shared.logging import bind, configure_logging
from vigil_shared.schemas.frames import utc_now

log = logging.getLogger("vigil_ingest")


def run(settings: IngestSettings, stop: threading.Event) -> int:
    """Publish frames; returns how many were published."""
    if not settings.source:
        raise SourceError("no source: set VIGIL_INGEST_SOURCE to a video file or stream URL")
    ensure_topics(settings.common.kafka, settings.common.kafka.topics.all())
    producer = make_producer(settings.common.kafka)
    publisher = FramePublisher(
        producer,
        topic=settings.common.kafka.topics.frames,
        camera_id=settings.camera_id,
        max_size=(settings.max_width, settings.max_height),
        quality=settings.jpeg_quality,
    )
    start_wall, start_mono = utc_now(), time.monotonic()
    try:
        for frame in iter_frames(settings.source, fps=settings.fps, loop=settings.loop):
            if stop.is_set():
                break
            if settings.realtime:
                pace(start_mono, frame.offset_s)
            publisher.publish(frame.image, capture_time(start_wall, frame.offset_s))
            if settings.max_frames is not None and publisher.seq >= settings.max_frames:
                break
    finally:
        producer.flush(timeout=30)
        producer.close(timeout=10)
    log.info("source finished", extra={"frames": publisher.seq})
    return publisher.seq


def main() -> None:
    settings = get_settings()
    configure_logging("ingest", settings.common.log_level)
    stop = stop_on_signals()
    with bind(camera_id=settings.camera_id):
        try:
            run(settings, stop)
        except (SourceError, KafkaUnavailableError) as exc:
            log.error(str(exc))
            print(f"ingest: {exc}", file=sys.stderr)
            sys.exit(2)


if __name__ == "__main__":
    main()
