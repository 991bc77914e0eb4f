"""``python -m vigil_trainer``: a Celery worker draining the training queue.

``python -m vigil_trainer import-weights --arch resnet18 --file w.pth --source "<where from>"``
validates a weights file against the architecture and stores it in the registry.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vigil_shared.logging import configure_logging
from vigil_shared.metrics import MetricsPortError, serve_metrics
from vigil_shared.queues import TASK_QUEUE
from vigil_shared.storage import ensure_buckets, make_s3_client
from vigil_shared.vision.backbones import WeightsError
from vigil_shared.vision.catalog import CATALOG
from vigil_trainer.settings import TrainerSettings, get_settings
from vigil_trainer.weights import import_weights


def run_worker(settings: TrainerSettings) -> None:
    from vigil_trainer.metrics import trainer_registry
    from vigil_trainer.worker import create_app

    if settings.metrics_port is not None:
        port, variable = settings.metrics_port, "VIGIL_TRAINER_METRICS_PORT"
        try:
            serve_metrics(trainer_registry(settings), port, variable=variable)
        except MetricsPortError as exc:
            print(f"trainer: {exc}", file=sys.stderr)
            sys.exit(2)
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


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m vigil_trainer")
    commands = parser.add_subparsers(dest="command")
    imp = commands.add_parser("import-weights", help="store pretrained weights in the registry")
    imp.add_argument("--arch", required=True, choices=sorted(CATALOG))
    imp.add_argument("--file", required=True, type=Path, help=".pth/.pt state dict or .safetensors")
    imp.add_argument("--source", required=True, help="where the file came from (URL, vendor)")
    return parser.parse_args(argv)


def run_import(settings: TrainerSettings, args: argparse.Namespace) -> int:
    s3 = make_s3_client(settings.common.s3)
    ensure_buckets(s3, settings.common.s3)
    try:
        record = import_weights(
            s3,
            bucket=settings.common.s3.models_bucket,
            arch=args.arch,
            path=args.file,
            source=args.source,
        )
    except WeightsError as exc:
        print(f"import-weights: {exc}", file=sys.stderr)
        return 2
    print(f"imported {record.architecture} weights sha256 {record.sha256} ({record.source})")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    settings = get_settings()
    configure_logging("trainer", settings.common.log_level)
    if args.command == "import-weights":
        return run_import(settings, args)
    run_worker(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
