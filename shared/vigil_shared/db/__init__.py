"""The PostgreSQL schema (SQLAlchemy 2 models, Alembic migrations) and the session factory.

Every table module is imported here, so ``models.Base.metadata`` (migrations, the tests' clean
database) knows all of them whichever module a process imports first.
"""

from vigil_shared.db import loop_models as loop_models
from vigil_shared.db import replay_models as replay_models
