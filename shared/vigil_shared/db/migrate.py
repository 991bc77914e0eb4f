"""Bring the database schema to the newest migration (``python -m vigil_shared.db.migrate``)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from vigil_shared.db.engine import make_engine, wait_for_database
from vigil_shared.settings import DatabaseSettings

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def alembic_config(settings: DatabaseSettings) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolation would eat a '%' in a URL-encoded password.
    config.set_main_option("sqlalchemy.url", settings.url.get_secret_value().replace("%", "%%"))
    return config


def upgrade(settings: DatabaseSettings) -> None:
    engine = make_engine(settings)
    try:
        wait_for_database(engine)
    finally:
        engine.dispose()
    command.upgrade(alembic_config(settings), "head")


if __name__ == "__main__":
    upgrade(DatabaseSettings())
