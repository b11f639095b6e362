"""The store behind "claimed, not yet answered": claims with their event and owner, answer
marks, heartbeats, which claims are stale, and a takeover that one worker wins, on SQLite
and PostgreSQL, within one process and across processes; and the 0002 migration."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from dbfixtures import db_url, postgres_url, sqlite_url
from sqlalchemy import create_engine, inspect, select

from bot.store.database import Store
from bot.store.migrate import alembic_config, head_revision
from bot.store.tables import ProcessedEvent, WorkerHeartbeat, utcnow

__all__ = ["db_url", "postgres_url", "sqlite_url"]

STALE = timedelta(seconds=20)
MAX_AGE = timedelta(minutes=5)
BODY = json.dumps({"type": "event_callback", "event_id": "Ev", "event": {"type": "message"}})


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url)
    yield s
    s.close()


def row(store: Store, event_id: str) -> Any:
    with store.engine.connect() as conn:
        return conn.execute(select(ProcessedEvent).where(
            ProcessedEvent.event_id == event_id)).one()


def stale_ids(store: Store, me: str = "me", *, now: datetime | None = None,
              max_takeovers: int = 2) -> list[str]:
    return [c.event_id for c in store.stale_claims(
        me, stale_after=STALE, max_age=MAX_AGE, max_takeovers=max_takeovers, limit=100,
        now=now)]


def test_a_claim_keeps_its_event_and_owner_until_the_owner_marks_it(store: Store) -> None:
    assert store.claim_event("Ev1", body=BODY, owner="host:1:aa") is True
    assert store.claim_event("Ev1", body=BODY, owner="host:2:bb") is False
    claimed = row(store, "Ev1")
    assert (claimed.body, claimed.owner, claimed.answered_at, claimed.takeovers) == (
        BODY, "host:1:aa", None, 0)

    assert store.mark_answered("Ev1", "host:2:bb") is False  # not its claim
    assert row(store, "Ev1").answered_at is None
    assert store.mark_answered("Ev1", "host:1:aa") is True
    answered = row(store, "Ev1")
    # The stored event names the Slack user: it goes once answered.
    assert answered.answered_at is not None and answered.body is None
    assert store.mark_answered("Ev404", "host:1:aa") is False  # claimed while the db was down


def test_only_unanswered_claims_of_silent_workers_are_stale(store: Store) -> None:
    now = utcnow()

    def claim(event_id: str, owner: str | None, ago: float, body: str | None = BODY) -> None:
        assert store.claim_event(event_id, body=body, owner=owner,
                                 at=now - timedelta(seconds=ago))

    store.heartbeat("dead", at=now - timedelta(seconds=60))
    store.heartbeat("alive", at=now - timedelta(seconds=1))
    claim("EvDead", "dead", 40)
    claim("EvNoHeartbeat", "ghost", 30)  # died before its first heartbeat
    claim("EvJustClaimed", "ghost", 5)  # the claim itself shows its owner alive 5 s ago
    claim("EvSlowButAlive", "alive", 60)  # waiting out rate limits, say
    claim("EvAnswered", "dead", 50)
    store.mark_answered("EvAnswered", "dead")
    claim("EvTooOld", "dead", 6 * 60)
    claim("EvMine", "me", 30)
    claim("EvLegacy", None, 30, body=None)  # claimed before revision 0002
    claim("EvBounced", "dead", 45)
    assert store.take_over("EvBounced", from_owner="dead", to_owner="ghost")
    assert store.take_over("EvBounced", from_owner="ghost", to_owner="dead")

    assert stale_ids(store, now=now) == ["EvDead", "EvNoHeartbeat"]
    assert stale_ids(store, now=now, max_takeovers=3) == ["EvBounced", "EvDead",
                                                          "EvNoHeartbeat"]
    [dead, _] = store.stale_claims("me", stale_after=STALE, max_age=MAX_AGE, max_takeovers=2,
                                   limit=100, now=now)
    assert (dead.owner, dead.body, dead.takeovers) == ("dead", BODY, 0)
    assert abs(dead.claimed_at - (now - timedelta(seconds=40))) < timedelta(milliseconds=1)
    assert dead.claimed_at.tzinfo is not None
    # Once the silent worker beats again, its claims are its own again.
    store.heartbeat("dead", at=now)
    assert stale_ids(store, now=now) == ["EvNoHeartbeat"]


def test_a_takeover_is_won_once(store: Store) -> None:
    store.claim_event("Ev1", body=BODY, owner="dead")
    assert store.take_over("Ev1", from_owner="dead", to_owner="a") is True
    assert store.take_over("Ev1", from_owner="dead", to_owner="b") is False
    assert (row(store, "Ev1").owner, row(store, "Ev1").takeovers) == ("a", 1)
    # The old owner's late mark no longer counts; the new owner's does.
    assert store.mark_answered("Ev1", "dead") is False
    assert store.mark_answered("Ev1", "a") is True
    assert store.take_over("Ev1", from_owner="a", to_owner="b") is False  # answered


def test_claims_too_old_to_answer_lose_their_event(store: Store) -> None:
    now = utcnow()
    store.claim_event("EvOld", body=BODY, owner="dead", at=now - timedelta(minutes=6))
    store.claim_event("EvRecent", body=BODY, owner="dead", at=now - timedelta(minutes=1))
    store.claim_event("EvOldAnswered", body=BODY, owner="a", at=now - timedelta(minutes=7))
    store.mark_answered("EvOldAnswered", "a")
    assert store.expire_claims(MAX_AGE, now=now) == 1
    assert row(store, "EvOld").body is None
    assert row(store, "EvRecent").body == BODY
    assert store.expire_claims(MAX_AGE, now=now) == 0
    assert store.take_over("EvOld", from_owner="dead", to_owner="a") is False


def test_heartbeats_are_one_row_per_worker_and_pruned_with_old_events(store: Store) -> None:
    long_ago = utcnow() - timedelta(days=2)
    store.heartbeat("w1", at=long_ago)
    store.heartbeat("w2", at=long_ago)
    store.heartbeat("w2")
    store.claim_event("EvAncient", at=long_ago)
    assert store.prune_events() == 1
    with store.engine.connect() as conn:
        assert conn.execute(select(WorkerHeartbeat.worker_id)).scalars().all() == ["w2"]


TAKER = """
import sys
from datetime import timedelta
from bot.store.database import Store
store = Store(sys.argv[1], migrate=False)
me = sys.argv[2]
store.heartbeat(me)  # a live sweeper, as in production: what it takes is not stale again
print("ready", flush=True)
sys.stdin.readline()  # every taker starts at once
taken = []
while True:
    found = store.stale_claims(me, stale_after=timedelta(seconds=20),
                               max_age=timedelta(minutes=5), max_takeovers=2, limit=7)
    if not found:
        break
    taken += [c.event_id for c in found
              if store.take_over(c.event_id, from_owner=c.owner, to_owner=me)]
store.close()
print(" ".join(taken))
"""


def test_concurrent_takeovers_by_processes_take_each_event_once(db_url: str) -> None:
    events = 120
    store = Store(db_url)
    claimed_at = utcnow() - timedelta(seconds=60)
    for n in range(events):
        store.claim_event(f"Ev{n}", body=BODY, owner=f"dead{n % 3}", at=claimed_at)
    store.close()
    takers = [subprocess.Popen([sys.executable, "-c", TAKER, db_url, f"taker{t}"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
              for t in range(4)]
    for process in takers:
        assert process.stdout is not None and process.stdout.readline() == "ready\n"
    for process in takers:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    taken: dict[str, list[str]] = {}
    for n, process in enumerate(takers):
        out, _ = process.communicate(timeout=120)
        assert process.returncode == 0
        taken[f"taker{n}"] = out.split()
    everything = [e for ids in taken.values() for e in ids]
    assert sorted(everything) == sorted(f"Ev{n}" for n in range(events))
    store = Store(db_url)
    try:
        for owner, ids in taken.items():
            assert all(row(store, e).owner == owner and row(store, e).takeovers == 1
                       for e in ids)
    finally:
        store.close()


def test_a_database_at_revision_0001_upgrades_and_keeps_its_claims(db_url: str) -> None:
    engine = create_engine(db_url)
    if engine.dialect.name == "sqlite":
        Path(engine.url.database or "").parent.mkdir(parents=True, exist_ok=True)
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0001")
        conn.exec_driver_sql(
            "INSERT INTO processed_events (event_id, claimed_at) VALUES ('EvOld', ?)"
            if engine.dialect.name == "sqlite" else
            "INSERT INTO processed_events (event_id, claimed_at) VALUES ('EvOld', %s)",
            (datetime.now(UTC) - timedelta(seconds=60),))
    engine.dispose()

    store = Store(db_url)
    try:
        # Upgraded through 0002 to whatever is newest.
        assert store.schema_revision() == (head_revision(), head_revision())
        assert store.claim_event("EvOld", body=BODY, owner="a") is False
        legacy = row(store, "EvOld")
        assert (legacy.body, legacy.owner, legacy.answered_at, legacy.takeovers) == (
            None, None, None, 0)
        assert stale_ids(store) == []  # nothing to replay it from
        assert store.claim_event("EvNew", body=BODY, owner="a") is True
        indexes = {i["name"] for i in inspect(store.engine).get_indexes("processed_events")}
        assert "ix_processed_events_pending" in indexes
    finally:
        store.close()


def test_revision_0002_downgrades_and_upgrades_again(db_url: str) -> None:
    store = Store(db_url)
    store.claim_event("Ev1", body=BODY, owner="a")
    store.heartbeat("a")
    with store.engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0001")
    with store.engine.connect() as conn:
        assert not inspect(conn).has_table("worker_heartbeats")
        columns = {c["name"] for c in inspect(conn).get_columns("processed_events")}
    assert columns == {"event_id", "claimed_at"}
    applied = store.upgrade()
    assert applied[0] == "0002" and applied[-1] == head_revision()
    try:
        assert store.claim_event("Ev1") is False
        assert row(store, "Ev1").owner is None
    finally:
        store.close()
