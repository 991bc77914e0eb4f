"""Per-epoch checkpoints, so a job whose worker is killed resumes at the next epoch.

A checkpoint is a safetensors blob (model, optimizer state, best weights so far) and a JSON
state (epoch, history, early-stopping counters, the blob's sha256, a fingerprint of the spec).
The JSON is written last and names the blob's sha256, so a kill between the two writes leaves
a pair that does not match: it is ignored and training restarts from the last good point.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from minio import Minio
from minio.error import S3Error
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from vigil_shared.storage import IntegrityError, get_bytes, put_bytes

log = logging.getLogger("vigil_trainer")


@dataclass(frozen=True)
class Checkpoint:
    epoch: int
    """The last completed epoch (0-based); training resumes at ``epoch + 1``."""
    tensors: dict[str, torch.Tensor]
    state: dict[str, Any] = field(default_factory=dict)


class CheckpointStore(Protocol):
    def load(self) -> Checkpoint | None: ...

    def save(self, checkpoint: Checkpoint) -> None: ...

    def delete(self) -> None: ...


class MemoryCheckpointStore:
    """For tests and benchmarks: keeps the latest checkpoint in memory (copied)."""

    def __init__(self) -> None:
        self.latest: Checkpoint | None = None
        self.saves = 0

    def load(self) -> Checkpoint | None:
        return self.latest

    def save(self, checkpoint: Checkpoint) -> None:
        tensors = {k: v.detach().clone() for k, v in checkpoint.tensors.items()}
        self.latest = Checkpoint(
            checkpoint.epoch, tensors, json.loads(json.dumps(checkpoint.state))
        )
        self.saves += 1

    def delete(self) -> None:
        self.latest = None


class S3CheckpointStore:
    """``jobs/<job_id>/checkpoint.safetensors`` and ``checkpoint.json`` in one bucket."""

    def __init__(self, s3: Minio, *, bucket: str, job_id: str) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.blob_key = f"jobs/{job_id}/checkpoint.safetensors"
        self.state_key = f"jobs/{job_id}/checkpoint.json"

    def load(self) -> Checkpoint | None:
        try:
            state = json.loads(get_bytes(self.s3, self.bucket, self.state_key))
            blob = get_bytes(self.s3, self.bucket, self.blob_key, sha256=state["blob_sha256"])
        except S3Error as exc:
            if exc.code == "NoSuchKey":
                return None
            raise
        except IntegrityError:
            log.warning("checkpoint blob and state do not match (killed mid-save); ignored")
            return None
        return Checkpoint(epoch=int(state["epoch"]), tensors=load_safetensors(blob), state=state)

    def save(self, checkpoint: Checkpoint) -> None:
        tensors = {k: v.detach().contiguous().cpu() for k, v in checkpoint.tensors.items()}
        blob = save_safetensors(tensors)
        sha = put_bytes(self.s3, self.bucket, self.blob_key, blob, "application/octet-stream")
        state = {**checkpoint.state, "epoch": checkpoint.epoch, "blob_sha256": sha}
        put_bytes(
            self.s3, self.bucket, self.state_key, json.dumps(state).encode(), "application/json"
        )

    def delete(self) -> None:
        for key in (self.state_key, self.blob_key):
            self.s3.remove_object(self.bucket, key)
