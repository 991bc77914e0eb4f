"""Celery task and queue names: the contract between the API, which sends training jobs, and the
trainer, which runs them. Tasks are sent by name, so neither side imports the other; both take
the names from here, as they take Kafka topic names from ``topics.py``.
"""

from __future__ import annotations

from typing import Final

TASK_QUEUE: Final = "vigil.training"
"""The queue of training jobs; the trainer's workers drain it, one job at a time each."""

RUN_JOB_TASK: Final = "vigil.trainer.run_job"
"""Runs one job: keyword ``job_id`` (the ``jobs`` row's id, also the Celery task id)."""

RUN_REPLAY_TASK: Final = "vigil.trainer.run_replay"
"""Runs one replay: keyword ``replay_id`` (the ``replays`` row's id); on the same queue."""
