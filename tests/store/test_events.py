"""The store behind event dedupe and the reload generation: one winner per event id and
every bump counted, across processes, on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from dbfixtures import db_url, postgres_url, sqlite_url

from bot.errors import ConfigError
from bot.store.database import Store, database_url

CLAIMER = """
import sys
from bot.store.database import Store
store = Store(sys.argv[1])
won = [str(n) for n in range(int(sys.argv[2])) if store.claim_event(f"Ev{n}")]
store.close()
print(" ".join(won))
"""

# Fixtures used by the tests below (imported, so pytest finds them).
__all__ = ["db_url", "postgres_url", "sqlite_url"]

BUMPER = """
import sys
from bot.store.database import Store
store = Store(sys.argv[1])
for _ in range(int(sys.argv[2])):
    store.bump_generation()
store.close()
"""


def test_first_claim_wins(db_url: str) -> None:
    store = Store(db_url)
    try:
        assert store.claim_event("Ev1") is True
        assert store.claim_event("Ev1") is False
        assert store.claim_event("Ev2") is True
    finally:
        store.close()


def test_each_event_is_claimed_once_across_processes(db_url: str) -> None:
    # No schema yet: the processes also race to migrate, as workers booting together would.
    events = 100
    claimers = [subprocess.Popen([sys.executable, "-c", CLAIMER, db_url, str(events)],
                                 stdout=subprocess.PIPE, text=True) for _ in range(4)]
    won: list[str] = []
    for process in claimers:
        out, _ = process.communicate(timeout=120)
        assert process.returncode == 0
        won += out.split()
    assert sorted(won, key=int) == [str(n) for n in range(events)]


def test_concurrent_generation_bumps_all_count(db_url: str) -> None:
    bumpers = [subprocess.Popen([sys.executable, "-c", BUMPER, db_url, "20"])
               for _ in range(4)]
    for process in bumpers:
        assert process.wait(timeout=120) == 0
    store = Store(db_url)
    try:
        assert store.generation() == 80
    finally:
        store.close()


def test_old_claims_are_pruned(db_url: str) -> None:
    store = Store(db_url)
    try:
        store.claim_event("Ev1")
        assert store.prune_events(older_than=timedelta(days=1)) == 0
        assert store.prune_events(older_than=timedelta(seconds=-1)) == 1
        assert store.claim_event("Ev1") is True
    finally:
        store.close()


def test_default_database_is_a_sqlite_file_in_the_data_dir(tmp_path: Path) -> None:
    assert database_url({}) == "sqlite:///data/concierge.sqlite3"
    assert database_url({"CONCIERGE_DATA_DIR": str(tmp_path)}) == (
        f"sqlite:///{tmp_path}/concierge.sqlite3")
    store = Store.from_env({"CONCIERGE_DATA_DIR": str(tmp_path / "new")})
    try:
        assert store.claim_event("Ev1")
        assert (tmp_path / "new" / "concierge.sqlite3").is_file()
    finally:
        store.close()


@pytest.mark.parametrize("given", ["postgres://u:p@db/concierge",
                                   "postgresql://u:p@db/concierge"])
def test_a_bare_postgres_url_uses_the_installed_driver(given: str) -> None:
    # Hosting platforms hand out driverless URLs; SQLAlchemy would look for psycopg2.
    assert database_url({"DATABASE_URL": given}) == "postgresql+psycopg://u:p@db/concierge"
    assert database_url({"DATABASE_URL": "postgresql+asyncpg://db/x"}) == (
        "postgresql+asyncpg://db/x")


@pytest.mark.parametrize("url", ["not a url", "nosuchdb://x/y"])
def test_bad_database_url_names_the_variable(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Store(url)
    assert caught.value.setting == "DATABASE_URL"
