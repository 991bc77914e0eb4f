"""Fine-tuning job specs, validated before anything is queued.

The API validates a spec with these models and the trainer validates it again on receipt, so a
task sent to the queue by any other client still cannot run with a malformed spec.
"""

from __future__ import annotations

from enum import StrEnum

from vigil_shared.schemas.one_class import DatasetRef, OneClassSpec

__all__ = ["DatasetRef", "JobSpec", "JobStatus", "OneClassSpec"]


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLING = "cancelling"
    """Cancel requested while running; the worker stops at its next step and sets CANCELLED."""
    CANCELLED = "cancelled"


JobSpec = OneClassSpec
