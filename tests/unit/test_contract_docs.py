"""The JSON Schemas published in docs/ are exactly what the code produces."""

from __future__ import annotations

import pytest

from vigil_shared.schemas.export import DEFAULT_DIR, SCHEMAS, render


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_published_schema_is_current(name: str) -> None:
    path = DEFAULT_DIR / name
    assert path.is_file(), f"{path} missing: run python -m vigil_shared.schemas.export"
    assert path.read_text() == render(SCHEMAS[name]), (
        f"{path} is stale: run python -m vigil_shared.schemas.export and review the diff"
    )
