"""A site whose normal footage is one long recording (one group) is fitted: the job cuts it into
groups of ``segment_s`` for its split, where without the cut it is refused for want of a
second group."""

from __future__ import annotations

import pytest
from minio import Minio
from sqlalchemy.orm import Session, sessionmaker

from tests.integration.test_one_class_scene_kinds import SMALL, _jpeg, walkway
from tests.integration.test_registry_fusion import manifest_of, run
from vigil_shared.datasets import DatasetManifest, NewImage, write_dataset
from vigil_shared.schemas.jobs import JobStatus
from vigil_shared.settings import CommonSettings

pytestmark = pytest.mark.slow


def one_recording(s3: Minio, bucket: str) -> DatasetManifest:
    """Four stretches of the walkway, one after the other, as one group (one recording)."""
    frames = [frame for seed in range(1, 5) for frame in walkway(seed)]
    images = [
        NewImage(data=_jpeg(frame), extension=".jpg", group="walkway-cam", sequence=t)
        for t, frame in enumerate(frames)
    ]
    return write_dataset(s3, bucket, name="walkway-one-recording", images=images, source="import")


def test_one_long_recording_is_cut_into_groups_and_fitted(
    s3: Minio, settings: CommonSettings, sessions: sessionmaker[Session]
) -> None:
    dataset = one_recording(s3, settings.s3.datasets_bucket)
    seconds = len(dataset.items) / 10  # no capture times: taken at 10 fps
    ref = {"name": dataset.name, "version": dataset.version}
    base = SMALL | {"name": "walkway", "task": "one_class", "dataset": ref}

    uncut = run(s3, settings, sessions, base | {"segment_s": None})
    assert uncut.status == JobStatus.FAILED
    assert uncut.error is not None and "1 group(s) of normal frames" in uncut.error

    job = run(s3, settings, sessions, base | {"segment_s": 5})
    assert job.status == JobStatus.SUCCEEDED and job.model_id is not None, job.error
    metrics = manifest_of(s3, settings, job.model_id).metrics
    pieces = int(seconds // 5)
    assert metrics["n_clips_segmented"] == 1
    assert metrics["n_holdout_clips"] == pieces  # every piece calibrates, cross-fitted
    assert metrics["expected_false_alarms_per_hour"] > 0
