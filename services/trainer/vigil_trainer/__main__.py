"""``python -m vigil_trainer``: a Celery worker draining the training queue."""

from __future__ import annotations

from vigil_shared.logging import configure_logging
from vigil_trainer.settings import TASK_QUEUE, get_settings
from vigil_trainer.worker import create_app


def main() -> None:
    settings = get_settings()
    configure_logging("trainer", settings.common.log_level)
    app = create_app(settings)
    app.worker_main(
        [
            "worker",
            f"--concurrency={settings.concurrency}",
            f"--queues={TASK_QUEUE}",
            "--pool=prefork",
            f"--loglevel={settings.common.log_level}",
            "--without-gossip",
            "--without-mingle",
        ]
    )


if __name__ == "__main__":
    main()
