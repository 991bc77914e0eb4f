"""The PostgreSQL schema (SQLAlchemy 2 models, Alembic migrations) and the session factory."""
