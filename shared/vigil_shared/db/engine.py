"""Engine and session factory, built once per process and passed to whoever needs them."""

from __future__ import annotations

import time

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from vigil_shared.settings import DatabaseSettings


class DatabaseUnavailableError(RuntimeError):
    """PostgreSQL could not be reached or refused the login."""


def make_engine(settings: DatabaseSettings) -> Engine:
    return create_engine(
        settings.url.get_secret_value(),
        pool_size=settings.pool_size,
        pool_pre_ping=True,
        connect_args={"connect_timeout": 5},
    )


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def wait_for_database(engine: Engine, *, timeout_s: float = 30) -> None:
    """Retry until PostgreSQL answers, then fail with one line naming what to fix."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return
        except OperationalError as exc:
            if time.monotonic() > deadline:
                reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
                raise DatabaseUnavailableError(
                    f"PostgreSQL at {engine.url.render_as_string(hide_password=True)} is not "
                    f"usable ({reason}); start it or fix VIGIL_DATABASE_URL"
                ) from exc
            time.sleep(1)
