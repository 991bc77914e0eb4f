"""``python -m vigil_api``: migrate the database, then serve the API with uvicorn."""

from __future__ import annotations

from types import FrameType

import uvicorn
from fastapi import FastAPI

from vigil_api.core.settings import get_settings
from vigil_api.main import create_app
from vigil_shared.db.migrate import upgrade


class ApiServer(uvicorn.Server):
    """Uvicorn waits for open responses before it stops; live event streams never finish on
    their own, so SIGTERM also tells them to end."""

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self._app = app

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        streams = getattr(self._app.state, "event_streams", None)  # None: not started yet
        if streams is not None:
            streams.stopping.set()
        super().handle_exit(sig, frame)


def main() -> None:
    settings = get_settings()
    upgrade(settings.common.database)
    app = create_app(settings)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_config=None)
    ApiServer(config, app).run()


if __name__ == "__main__":
    main()
