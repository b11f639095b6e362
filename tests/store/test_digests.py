"""The digest claims on SQLite and PostgreSQL: one claimer per period across processes,
takeover only from a silent worker and by one taker, writes only by the period's owner."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta

import pytest
from dbfixtures import db_url, postgres_url, sqlite_url

from bot.store.database import Store
from bot.store.digests import FAILED, SENDING, SENT, DigestLog, team_key
from bot.store.tables import utcnow

__all__ = ["db_url", "postgres_url", "sqlite_url"]

PERIOD = "weekly:2026-11-30T09:00Z"
STALE = timedelta(seconds=20)

CLAIMER = """
import sys
from bot.store.database import Store
from bot.store.digests import DigestLog
store = Store(sys.argv[1])
log = DigestLog(store)
won = [p for p in sys.argv[3:] if log.claim(p, sys.argv[2])]
store.close()
print(" ".join(won))
"""

TAKER = """
import sys
from datetime import timedelta
from bot.store.database import Store
from bot.store.digests import DigestLog
store = Store(sys.argv[1], migrate=False)
won = DigestLog(store).take_over(sys.argv[2], from_owner="dead:1:x", to_owner=sys.argv[3],
                                 stale_after=timedelta(seconds=20))
store.close()
print("won" if won else "lost")
"""


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url)
    yield s
    s.close()


def test_each_period_is_claimed_by_one_process(db_url: str) -> None:
    periods = [f"daily:2026-11-{day:02d}T08:00Z" for day in range(1, 21)]
    claimers = [subprocess.Popen([sys.executable, "-c", CLAIMER, db_url, f"host:{n}:x",
                                  *periods], stdout=subprocess.PIPE, text=True)
                for n in range(4)]
    won: list[str] = []
    for process in claimers:
        out, _ = process.communicate(timeout=120)
        assert process.returncode == 0
        won += out.split()
    assert sorted(won) == periods


def test_a_silent_workers_period_is_taken_over_by_one_process(store: Store,
                                                               db_url: str) -> None:
    log = DigestLog(store)
    now = utcnow()
    assert log.claim(PERIOD, "dead:1:x", now=now - timedelta(minutes=5))
    store.heartbeat("dead:1:x", at=now - timedelta(minutes=5))
    takers = [subprocess.Popen([sys.executable, "-c", TAKER, db_url, PERIOD, f"live:{n}:y"],
                               stdout=subprocess.PIPE, text=True) for n in range(4)]
    results = sorted(p.communicate(timeout=120)[0].strip() for p in takers)
    assert results == ["lost", "lost", "lost", "won"]
    run = log.run(PERIOD)
    assert run is not None and run.owner.startswith("live:") and run.takeovers == 1


def test_no_takeover_of_a_live_worker_or_a_young_claim(store: Store) -> None:
    log = DigestLog(store)
    now = utcnow()
    assert log.claim(PERIOD, "slow:1:x", now=now - timedelta(minutes=5))
    store.heartbeat("slow:1:x", at=now - timedelta(seconds=5))  # waiting out 429s: alive
    assert not log.take_over(PERIOD, from_owner="slow:1:x", to_owner="me:1:y",
                             stale_after=STALE, now=now)
    young = "daily:2026-11-30T08:00Z"
    assert log.claim(young, "fresh:1:x", now=now - timedelta(seconds=5))  # no heartbeat yet
    assert not log.take_over(young, from_owner="fresh:1:x", to_owner="me:1:y",
                             stale_after=STALE, now=now)
    assert log.finish(PERIOD, "slow:1:x")
    store.heartbeat("slow:1:x", at=now - timedelta(hours=1))
    assert not log.take_over(PERIOD, from_owner="slow:1:x", to_owner="me:1:y",
                             stale_after=STALE, now=now)  # finished: nothing to take


def test_deliveries_are_written_only_by_the_periods_owner(store: Store) -> None:
    log = DigestLog(store)
    now = utcnow()
    assert log.claim(PERIOD, "a:1:x", now=now - timedelta(minutes=5))
    assert log.start(PERIOD, "a:1:x", team="Network Team", recipient="U0NET1",
                     channel="D0NET1")
    assert not log.start(PERIOD, "a:1:x", team="Network Team", recipient="U0NET1",
                         channel="D0NET1")  # once
    assert not log.start(PERIOD, "b:1:y", team="Workplace", recipient="C0WORK",
                         channel="C0WORK")  # not b's period
    assert log.take_over(PERIOD, from_owner="a:1:x", to_owner="b:1:y", stale_after=STALE,
                         now=now)
    # The old owner came back: it can settle nothing now.
    assert not log.settle(PERIOD, "a:1:x", team="Network Team", recipient="U0NET1",
                          state=SENT, ts="1.2")
    [row] = log.deliveries(PERIOD)
    assert (row.team_key, row.state, row.channel, row.attempts) == (
        team_key("Network Team"), SENDING, "D0NET1", 1)
    assert log.settle(PERIOD, "b:1:y", team="Network Team", recipient="U0NET1",
                      state=SENDING, error="ratelimited", retry=True)
    assert log.deliveries(PERIOD)[0].attempts == 2
    assert log.settle(PERIOD, "b:1:y", team="Network Team", recipient="U0NET1",
                      state=FAILED, error="x" * 2000)
    [row] = log.deliveries(PERIOD)
    assert row.state == FAILED and row.error is not None and len(row.error) == 500
    assert log.finish(PERIOD, "b:1:y") and not log.finish(PERIOD, "b:1:y")
    assert not log.settle(PERIOD, "b:1:y", team="Network Team", recipient="U0NET1",
                          state=SENT)  # finished: frozen


def test_old_periods_are_forgotten(store: Store) -> None:
    log = DigestLog(store)
    now = utcnow()
    assert log.claim("weekly:2026-01-05T09:00Z", "a:1:x", now=now - timedelta(days=200))
    assert log.start("weekly:2026-01-05T09:00Z", "a:1:x", team="T", recipient="U0X",
                     channel=None, now=now - timedelta(days=200))
    assert log.claim(PERIOD, "a:1:x", now=now)
    assert log.prune(now=now) == 1
    assert log.run("weekly:2026-01-05T09:00Z") is None and log.run(PERIOD) is not None
    assert log.deliveries("weekly:2026-01-05T09:00Z") == []
