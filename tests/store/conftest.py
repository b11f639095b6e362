"""The store's tests run on both backends: `db_url` is a SQLite file, then PostgreSQL."""

from __future__ import annotations

import pytest
from dbfixtures import db_url, postgres_url, sqlite_url

__all__ = ["db_url", "postgres_url", "sqlite_url"]


@pytest.fixture(autouse=True)
def _no_database_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "CONCIERGE_DATA_DIR", "CONCIERGE_USER_HASH_KEY"):
        monkeypatch.delenv(name, raising=False)
