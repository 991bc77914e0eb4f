"""README.md's "Try it" block, run as written by bash against a real API and trainer.

The state ``scripts/up.sh`` leaves is rebuilt in a scratch folder: ``.stack/admin-key``,
``.venv/bin/vigil`` (here a script running ``python -m vigil_cli``, as the console script would),
the demo camera registered, and ``../shared`` beside it when this repository has one (then the
demo datasets come from UCSD Ped2, else from FFmpeg's scene). Two things differ, and only in
where: the API's address (a free port, not 8000, which a developer's stack may hold) and the
config file's folder (a temporary home). The one-class job runs to the end on the trainer; the
classify search is only checked to be accepted (it trains for many minutes on a CPU), then
cancelled.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from tests.integration.api_server import RunningApi, own_models_bucket, start_api
from tests.integration.conftest import ADMIN_KEY
from tests.support import ServiceProcess
from vigil_shared.db.models import Job
from vigil_shared.schemas.jobs import JobStatus
from vigil_shared.settings import REPO_ROOT

pytestmark = [pytest.mark.slow]
README_URL = "http://127.0.0.1:8000"


def try_it_block() -> str:
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("\n## Try it\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert match, "README.md's Try it section has no sh block"
    return match.group(1)


@pytest.fixture
def stack(tmp_path: Path, sessions: sessionmaker[Session]) -> Iterator[tuple[RunningApi, Path]]:
    """The API and the trainer as up.sh runs them, on this test's database, buckets and topics.

    Jobs other tests left queued (they ran no trainer) are cancelled first: the trainer would
    take them from the queue before the README's.
    """
    with sessions.begin() as session:
        session.execute(
            update(Job).where(Job.status == JobStatus.QUEUED).values(status=JobStatus.CANCELLED)
        )
    with own_models_bucket():
        api = start_api(tmp_path)
        trainer = ServiceProcess("vigil_trainer", env=api.env, log_path=tmp_path / "trainer.log")
        try:
            yield api, tmp_path
        finally:
            headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
            for job in httpx.get(f"{api.url}/api/v1/jobs", headers=headers).json()["items"]:
                if job["status"] in ("queued", "running"):
                    httpx.post(f"{api.url}/api/v1/jobs/{job['id']}/cancel", headers=headers)
            trainer.stop(timeout_s=60)
            api.process.stop()


def up_sh_state(root: Path, api: RunningApi) -> Path:
    """What scripts/up.sh leaves in a checkout: the admin key, the vigil command, a camera."""
    repo = root / "repo"
    (repo / ".stack").mkdir(parents=True)
    key = repo / ".stack" / "admin-key"
    key.write_text(ADMIN_KEY + "\n")
    key.chmod(0o600)
    vigil = repo / ".venv" / "bin" / "vigil"
    vigil.parent.mkdir(parents=True)
    vigil.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m vigil_cli "$@"\n')
    vigil.chmod(0o755)
    shared = REPO_ROOT.parent / "shared"
    if shared.is_dir():
        (root / "shared").symlink_to(shared)
    camera = {"id": "demo", "name": "Demo", "source": "rtsp://127.0.0.1:8554/demo"}
    response = httpx.post(
        f"{api.url}/api/v1/cameras",
        json=camera,
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    )
    assert response.status_code == 201, response.text
    return repo


def test_the_readme_try_it_block_runs_as_written(stack: tuple[RunningApi, Path]) -> None:
    api, root = stack
    block = try_it_block()
    assert README_URL in block, "the block no longer names the API's address"
    repo = up_sh_state(root, api)
    home = root / "home"
    env = {**api.env, "HOME": str(home), "PATH": os.environ["PATH"]}
    for name in ("VIGIL_URL", "VIGIL_API_KEY", "VIGIL_CONFIG", "XDG_CONFIG_HOME"):
        env.pop(name, None)
    script = "set -euo pipefail\n" + block.replace(README_URL, api.url)
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert (home / ".config" / "vigil" / "config.toml").is_file()

    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    jobs = httpx.get(f"{api.url}/api/v1/jobs", headers=headers).json()["items"]
    by_name = {j["name"]: j for j in jobs}
    walkway = by_name["walkway"]
    assert walkway["status"] == "succeeded", walkway["error"]
    assert by_name["walkway-classes"]["status"] in ("queued", "running")
    assignments = httpx.get(f"{api.url}/api/v1/models/assignments", headers=headers).json()
    demo = {a["scope"]: a for a in assignments}["demo"]
    assert demo["production_model_id"] == walkway["model_id"]
    cameras = httpx.get(f"{api.url}/api/v1/cameras", headers=headers).json()
    assert {"demo", "lobby"} <= {c["id"] for c in cameras}
