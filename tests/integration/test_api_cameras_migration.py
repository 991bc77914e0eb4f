"""Migration 0004 moves each camera's model into ``model_assignments`` (one source of truth)
and back on downgrade, without losing an assignment."""

from __future__ import annotations

import os
from collections.abc import Iterator

import psycopg
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

from vigil_shared.db.migrate import alembic_config
from vigil_shared.settings import DatabaseSettings

MODEL = (
    "INSERT INTO models (id, name, task, architecture, stage, artifact_key, artifact_sha256, "
    "manifest_key, dataset_sha256, threshold, metrics) VALUES ('m1', 'n', 'one_class', 'a', "
    "'candidate', 'k', '0', 'k', '0', 0.5, '{}')"
)
CAMERA = (
    "INSERT INTO cameras (id, name, source, target_fps, max_width, max_height, jpeg_quality, "
    "enabled, model_id) VALUES ('{id}', 'c', 'rtsp://x/y', 5, 640, 480, 85, true, {model})"
)


def _plain(url: str, database: str) -> str:
    return (
        make_url(url)
        .set(drivername="postgresql", database=database)
        .render_as_string(hide_password=False)
    )


@pytest.fixture
def scratch() -> Iterator[tuple[Config, str]]:
    """An empty database of its own (migrations run down and up), dropped afterwards."""
    base = DatabaseSettings().url.get_secret_value()
    name = f"vigil_migration_{os.getpid()}"
    admin = _plain(base, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(base).set(database=name).render_as_string(hide_password=False)
    yield alembic_config(DatabaseSettings(url=url)), _plain(base, name)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_camera_models_move_to_assignments_and_back(scratch: tuple[Config, str]) -> None:
    config, url = scratch
    command.upgrade(config, "0003")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(MODEL)
        conn.execute(CAMERA.format(id="with-model", model="'m1'"))
        conn.execute(CAMERA.format(id="without", model="NULL"))
    command.upgrade(config, "0004")
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute("SELECT scope, production_model_id FROM model_assignments").fetchall()
        masks = conn.execute("SELECT DISTINCT masks FROM cameras").fetchall()
    assert rows == [("with-model", "m1")] and masks == [([],)]
    command.downgrade(config, "0003")
    with psycopg.connect(url, autocommit=True) as conn:
        cameras = conn.execute("SELECT id, model_id FROM cameras ORDER BY id").fetchall()
    assert cameras == [("with-model", "m1"), ("without", None)]
