"""Migrations build exactly the schema the ORM models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect

from vigil_shared.db.models import Base


def test_migrations_match_the_models(engine: Engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], f"models and migrations differ; add a migration: {diff}"


def test_schema_has_the_registry_event_camera_and_key_tables(engine: Engine) -> None:
    tables = {"jobs", "models", "events", "cameras", "api_keys", "alembic_version"}
    assert tables <= set(inspect(engine).get_table_names())
