"""API settings and keys: the admin key from the environment is refused when it is a
placeholder in production; roles are ordered; only a key's prefix is ever loggable."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from vigil_api.core.security import Role, hash_key, loggable_prefix, new_key
from vigil_api.core.settings import ApiSettings

REAL_SECRETS = {
    "VIGIL_ENV": "production",
    "VIGIL_S3_SECRET_KEY": "a-real-secret-of-some-length",
    "VIGIL_DATABASE_URL": "postgresql+psycopg://vigil:s3cr3t@db:5432/vigil",
}


@pytest.fixture(autouse=True)
def no_api_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """Integration fixtures set an admin key for the whole session; these tests set their own."""
    monkeypatch.delenv("VIGIL_API_ADMIN_KEY", raising=False)
    monkeypatch.delenv("VIGIL_API_CAMERA_FILE_ROOT", raising=False)


@pytest.fixture
def production(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name, value in REAL_SECRETS.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


@pytest.mark.parametrize("key", ["changeme", "vigil-dev-admin-key", "admin", "short-but-random-9f"])
def test_production_refuses_a_placeholder_or_short_admin_key(
    production: pytest.MonkeyPatch, key: str
) -> None:
    production.setenv("VIGIL_API_ADMIN_KEY", key)
    with pytest.raises(ValidationError, match="VIGIL_API_ADMIN_KEY is a placeholder or shorter"):
        ApiSettings()


def test_production_accepts_a_random_admin_key_or_none(production: pytest.MonkeyPatch) -> None:
    assert ApiSettings().admin_key is None
    production.setenv("VIGIL_API_ADMIN_KEY", "x7Qp2" * 8)
    settings = ApiSettings()
    assert settings.admin_key is not None
    assert "x7Qp2" not in repr(settings), "the key must not appear in a repr or a log"


def test_development_takes_any_admin_key_and_empty_means_unset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VIGIL_API_ADMIN_KEY", "dev")
    assert ApiSettings().admin_key is not None
    monkeypatch.setenv("VIGIL_API_ADMIN_KEY", "")
    assert ApiSettings().admin_key is None


def test_the_file_root_must_be_absolute(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_API_CAMERA_FILE_ROOT", "datasets")
    with pytest.raises(ValidationError, match="VIGIL_API_CAMERA_FILE_ROOT must be an absolute"):
        ApiSettings()


def test_roles_include_the_weaker_ones() -> None:
    assert Role.ADMIN.includes(Role.OPERATOR) and Role.OPERATOR.includes(Role.VIEWER)
    assert not Role.VIEWER.includes(Role.OPERATOR) and not Role.OPERATOR.includes(Role.ADMIN)


def test_keys_are_random_and_only_their_prefix_is_loggable() -> None:
    first, second = new_key(), new_key()
    assert first != second and len(first) == 47 and first.startswith("vgl_")
    assert hash_key(first) != hash_key(second) and len(hash_key(first)) == 64
    assert loggable_prefix(first) == first[:12]
    assert loggable_prefix("my-password-pasted-by-mistake") is None
    assert loggable_prefix(first + "x") is None


def test_production_refuses_a_placeholder_ingest_key_or_the_admin_key_twice(
    production: pytest.MonkeyPatch,
) -> None:
    production.setenv("VIGIL_API_INGEST_KEY", "changeme")
    with pytest.raises(ValidationError, match="VIGIL_API_INGEST_KEY is a placeholder"):
        ApiSettings()
    production.setenv("VIGIL_API_INGEST_KEY", "x7Qp2" * 8)
    production.setenv("VIGIL_API_ADMIN_KEY", "x7Qp2" * 8)
    with pytest.raises(ValidationError, match="must differ from VIGIL_API_ADMIN_KEY"):
        ApiSettings()
    production.setenv("VIGIL_API_ADMIN_KEY", "a9Zr4" * 8)
    roles = {p.name: p.role.value for p in ApiSettings().environment_keys().values()}
    assert roles == {"env-ingest": "operator", "env-admin": "admin"}
