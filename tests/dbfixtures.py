"""Database fixtures: a fresh SQLite file, or a fresh database on a real PostgreSQL server.

PostgreSQL comes from `CONCIERGE_TEST_POSTGRES_URL` (`.ci/start-postgres` starts a
throwaway server and prints one). Each test gets its own database, created from
that URL's server and dropped afterwards. Without the variable the PostgreSQL
variants skip, except in CI (`CI=true`), where a missing server is a failure: the
store must be proven on both backends before a merge.

Import the fixtures into a test module or conftest to use them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pgdatabase import fresh_database

from bot.store.database import Store

POSTGRES_ENV = "CONCIERGE_TEST_POSTGRES_URL"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def postgres_server_url() -> str:
    """The server URL from the environment; skips (or, in CI, fails) when there is none."""
    url = os.environ.get(POSTGRES_ENV, "").strip()
    if not url:
        message = (f"{POSTGRES_ENV} is not set: no PostgreSQL server to test against "
                   "(start one with `.ci/start-postgres` and export the URL it prints)")
        if in_ci():
            pytest.fail(message + "; in CI the PostgreSQL tests must run")
        pytest.skip(message)
    return url


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped after the test."""
    with fresh_database(postgres_server_url(), "concierge_t") as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'data' / 'concierge.sqlite3'}"


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each test using it runs twice: on a SQLite file and on PostgreSQL."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    """A migrated store on each backend of `db_url`, closed after the test."""
    s = Store(db_url)
    yield s
    s.close()


@pytest.fixture
def no_database_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No DATABASE_URL, data dir or hash key from the developer's environment."""
    for name in ("DATABASE_URL", "CONCIERGE_DATA_DIR", "CONCIERGE_USER_HASH_KEY"):
        monkeypatch.delenv(name, raising=False)
