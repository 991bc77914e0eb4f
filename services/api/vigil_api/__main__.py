"""``python -m vigil_api``: migrate the database, then serve the API with uvicorn."""

from __future__ import annotations

import uvicorn

from vigil_api.settings import get_settings
from vigil_shared.db.migrate import upgrade


def main() -> None:
    settings = get_settings()
    upgrade(settings.common.database)
    uvicorn.run(
        "vigil_api.main:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        log_config=None,
    )


if __name__ == "__main__":
    main()
