"""The store behind event dedupe: one claimer per event id, across processes."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.store import Store, database_url

CLAIMER = """
import sys
from bot.store import Store
store = Store(sys.argv[1])
won = [str(n) for n in range(int(sys.argv[2])) if store.claim_event(f"Ev{n}")]
store.close()
print(" ".join(won))
"""


def test_first_claim_wins(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    try:
        assert store.claim_event("Ev1") is True
        assert store.claim_event("Ev1") is False
        assert store.claim_event("Ev2") is True
    finally:
        store.close()


def test_each_event_is_claimed_once_across_processes(tmp_path: Path) -> None:
    # No schema yet: the processes also race to create the table, as workers booting
    # together would.
    url = f"sqlite:///{tmp_path / 'shared.sqlite3'}"
    events = 200
    claimers = [subprocess.Popen([sys.executable, "-c", CLAIMER, url, str(events)],
                                 stdout=subprocess.PIPE, text=True) for _ in range(6)]
    won: list[str] = []
    for process in claimers:
        out, _ = process.communicate(timeout=60)
        assert process.returncode == 0
        won += out.split()
    assert sorted(won, key=int) == [str(n) for n in range(events)]


def test_old_claims_are_pruned(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite3'}")
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
    assert database_url({"DATABASE_URL": "postgres://u:p@db/concierge"}) == (
        "postgresql://u:p@db/concierge")
    store = Store.from_env({"CONCIERGE_DATA_DIR": str(tmp_path / "new")})
    try:
        assert store.claim_event("Ev1")
        assert (tmp_path / "new" / "concierge.sqlite3").is_file()
    finally:
        store.close()


@pytest.mark.parametrize("url", ["not a url", "nosuchdb://x/y"])
def test_bad_database_url_names_the_variable(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Store(url)
    assert caught.value.setting == "DATABASE_URL"
