"""API settings, from the environment (``VIGIL_API_*``)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from vigil_shared.settings import CommonSettings


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VIGIL_API_", extra="ignore", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    sink_group_id: str = "vigil-event-sink"
    common: CommonSettings = Field(default_factory=CommonSettings)


@lru_cache
def get_settings() -> ApiSettings:
    return ApiSettings()
