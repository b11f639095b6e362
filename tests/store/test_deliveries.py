"""One worker's part in "claimed, not yet answered" (`bot.store.takeover.Deliveries`) on a real
store: claims and marks through the best-effort guard, marks kept while the database is
down, heartbeats, the sweep that takes over a dead worker's events and only those, and
what a lookup in Slack decides before a taken-over event is replayed (the lookup is a
stand-in here; tests/slack has the real one against the fake Web API).

Time is a fake monotonic clock and explicit claim times: nothing here waits for a timer.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from dbfixtures import db_url, postgres_url, sqlite_url
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from bot.store.database import Store
from bot.store.recorder import BestEffort
from bot.store.tables import ProcessedEvent, utcnow
from bot.store.takeover import (
    Deliveries,
    InSlack,
    Lookup,
    TakeoverSettings,
    event_id_of,
    new_worker_id,
)

__all__ = ["db_url", "postgres_url", "sqlite_url"]

SETTINGS = TakeoverSettings(stale_after=20.0)


def event(event_id: str, channel: str = "D0ALICE") -> dict[str, Any]:
    return {"token": "legacy-secret", "type": "event_callback", "event_id": event_id,
            "team_id": "T0TEAM",
            "event": {"type": "message", "channel_type": "im", "channel": channel,
                      "user": "U0ALICE", "text": "my laptop is old", "ts": "1700000000.1"}}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Replays:
    """Stands in for the Bolt app: remembers what it was asked to replay."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, event_id: str, body: dict[str, Any]) -> None:
        self.seen.append((event_id, body))


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url)
    yield s
    s.close()


def worker(store: Store, name: str, clock: FakeClock | None = None) -> Deliveries:
    clock = clock or FakeClock()
    return Deliveries(BestEffort(store, clock=clock), SETTINGS, worker_id=name, clock=clock)


def row(store: Store, event_id: str) -> Any:
    with store.engine.connect() as conn:
        return conn.execute(select(ProcessedEvent).where(
            ProcessedEvent.event_id == event_id)).one()


def orphan(store: Store, event_id: str, owner: str = "deadhost:7:0bad", *,
           seconds_ago: float = 60, channel: str = "D0ALICE") -> None:
    """A claim its owner made and never answered: the owner died after the ack."""
    body = {k: v for k, v in event(event_id, channel).items() if k != "token"}
    assert store.claim_event(event_id, body=json.dumps(body), owner=owner,
                             at=utcnow() - timedelta(seconds=seconds_ago))


@contextmanager
def database_down(url: str) -> Iterator[None]:
    """The database refuses work: SQLite is locked by another connection (writes fail after
    the busy timeout); PostgreSQL refuses connections and drops the open ones."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        lock = sqlite3.connect(parsed.database or "", isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        return
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{parsed.database}" ALLOW_CONNECTIONS false'))
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = :name"), {"name": parsed.database})
        yield
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{parsed.database}" ALLOW_CONNECTIONS true'))
        admin.dispose()


def test_worker_ids_differ_per_process_start() -> None:
    first, second = new_worker_id(), new_worker_id()
    assert first != second
    host, pid, nonce = first.rsplit(":", 2)
    assert host and pid.isdigit() and len(nonce) == 8


def test_event_ids_come_from_event_callbacks_only() -> None:
    assert event_id_of(event("Ev1")) == "Ev1"
    assert event_id_of({"type": "block_actions", "event_id": "Ev1"}) is None
    assert event_id_of({"type": "event_callback", "event_id": ""}) is None
    assert event_id_of({"type": "event_callback", "event_id": 7}) is None


def test_a_claim_stores_the_event_without_its_token_until_finished(store: Store) -> None:
    me = worker(store, "w1")
    assert me.claim("Ev1", event("Ev1")) is True
    assert me.claim("Ev1", event("Ev1")) is False
    stored = json.loads(row(store, "Ev1").body)
    assert "token" not in stored
    assert stored == {k: v for k, v in event("Ev1").items() if k != "token"}
    me.finished("Ev1")
    assert row(store, "Ev1").answered_at is not None and row(store, "Ev1").body is None


def test_a_dead_workers_event_is_taken_over_and_replayed_once(store: Store) -> None:
    orphan(store, "Ev1")
    clock_a, clock_b = FakeClock(), FakeClock()
    a, b = worker(store, "a", clock_a), worker(store, "b", clock_b)
    replays_a, replays_b = Replays(), Replays()
    # Just started: a worker judges nobody dead before its own heartbeats have held for
    # the takeover time (after an outage, live workers must have had time to beat again).
    assert a.tick(replays_a) == [] and b.tick(replays_b) == []
    assert not a.may_sweep
    clock_a.now += SETTINGS.stale_after
    clock_b.now += SETTINGS.stale_after
    assert a.tick(replays_a) == ["Ev1"]
    assert b.tick(replays_b) == []  # a is alive and owns it now
    assert replays_a.seen == [("Ev1", {k: v for k, v in event("Ev1").items() if k != "token"})]
    assert replays_b.seen == []
    assert (row(store, "Ev1").owner, row(store, "Ev1").takeovers) == ("a", 1)
    a.finished("Ev1")  # what Bolt's completion hook does once the replayed answer is sent
    assert row(store, "Ev1").answered_at is not None
    assert a.tick(replays_a) == [] and b.tick(replays_b) == []


def test_a_slow_answer_of_a_live_worker_is_not_taken_over(store: Store) -> None:
    slow = worker(store, "slow")
    assert slow.claim("EvSlow", event("EvSlow"))
    with store.engine.begin() as conn:  # claimed a minute ago, still waiting out 429s
        conn.execute(ProcessedEvent.__table__.update().values(
            claimed_at=utcnow() - timedelta(seconds=60)))
    assert slow.beat()
    clock = FakeClock()
    sweeper = worker(store, "sweeper", clock)
    sweeper.beat()
    clock.now += SETTINGS.stale_after
    replays = Replays()
    assert sweeper.may_sweep and sweeper.tick(replays) == []
    assert replays.seen == []
    slow.finished("EvSlow")
    assert row(store, "EvSlow").answered_at is not None


def test_a_replay_that_fails_counts_as_finished(store: Store,
                                                caplog: pytest.LogCaptureFixture) -> None:
    orphan(store, "Ev1")
    clock = FakeClock()
    me = worker(store, "me", clock)
    me.beat()
    clock.now += SETTINGS.stale_after

    def broken(event_id: str, body: dict[str, Any]) -> None:
        raise RuntimeError("no listener")

    with caplog.at_level(logging.ERROR, logger="concierge.takeover"):
        assert me.tick(broken) == ["Ev1"]
    assert "could not replay event Ev1" in caplog.text
    # Marked, so that no sweep replays it again and again.
    assert row(store, "Ev1").answered_at is not None
    assert me.tick(broken) == []


def test_too_old_events_are_dropped_not_answered(store: Store) -> None:
    orphan(store, "EvOld", seconds_ago=6 * 60)
    clock = FakeClock()
    me = worker(store, "me", clock)
    me.beat()
    clock.now += SETTINGS.stale_after
    replays = Replays()
    assert me.tick(replays) == []
    assert replays.seen == [] and row(store, "EvOld").body is None


def test_a_mark_the_database_missed_is_written_at_the_next_beat(store: Store,
                                                                 db_url: str) -> None:
    clock = FakeClock()
    me = worker(store, "me", clock)
    assert me.claim("Ev1", event("Ev1"))
    replays = Replays()
    with database_down(db_url):
        me.finished("Ev1")  # the guard logs the outage; the listener thread goes on
        assert me.pending_marks == 1
        assert me.tick(replays) == []  # no heartbeat: nothing taken over, nothing raised
        assert not me.may_sweep
    assert row(store, "Ev1").answered_at is None
    # The guard still backs off from the database (its clock has not moved); the
    # takeover thread does not, so the mark is written at the first beat after the outage.
    assert me.tick(replays) == []
    assert me.pending_marks == 0
    assert row(store, "Ev1").answered_at is not None
    assert replays.seen == []


def test_an_unreachable_database_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    # Nothing listens on port 1: every connection is refused at once.
    down = Store("postgresql+psycopg://concierge@127.0.0.1:1/concierge", migrate=False)
    me = Deliveries(BestEffort(down, schema_ready=False), SETTINGS, worker_id="me")
    replays = Replays()
    try:
        with caplog.at_level(logging.INFO):
            assert me.claim("Ev1", event("Ev1")) is True  # answer rather than drop
            me.finished("Ev1")
            assert me.beat() is False
            assert me.tick(replays) == []
            assert me.tick(replays) == []
    finally:
        down.close()
    assert me.pending_marks == 1 and replays.seen == []
    heartbeat_warnings = [r for r in caplog.records if r.name == "concierge.takeover"
                          and r.levelno >= logging.WARNING]
    assert len(heartbeat_warnings) == 1  # once per outage, not once per beat


def test_marks_waiting_for_the_database_are_bounded(monkeypatch: pytest.MonkeyPatch,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr("bot.store.takeover.MAX_PENDING_MARKS", 3)
    down = Store("postgresql+psycopg://concierge@127.0.0.1:1/concierge", migrate=False)
    me = Deliveries(BestEffort(down, schema_ready=False), SETTINGS, worker_id="me")
    try:
        with caplog.at_level(logging.WARNING, logger="concierge.takeover"):
            for n in range(6):
                me.finished(f"Ev{n}")
    finally:
        down.close()
    assert me.pending_marks == 3
    assert len([r for r in caplog.records if "forgetting the oldest" in r.getMessage()]) == 1


# --- looking in Slack before replaying ------------------------------------------------------


class Answers:
    """Stands in for the Slack lookup: says what it is told to, in turn, and remembers
    which thread asked."""

    def __init__(self, *said: InSlack) -> None:
        self.said = list(said)
        self.asked: list[tuple[str, str]] = []

    def __call__(self, event_id: str, body: dict[str, Any]) -> InSlack:
        self.asked.append((event_id, threading.current_thread().name))
        return self.said.pop(0)


def sweeper(store: Store, lookup: Lookup, *,
            executor: ThreadPoolExecutor | None = None) -> tuple[Deliveries, Replays]:
    clock = FakeClock()
    me = Deliveries(BestEffort(store, clock=clock), SETTINGS, worker_id="me", clock=clock,
                    lookup=lookup, executor=executor)
    me.beat()
    clock.now += SETTINGS.stale_after
    return me, Replays()


def test_an_event_whose_answer_is_in_slack_is_marked_not_replayed(
        store: Store, caplog: pytest.LogCaptureFixture) -> None:
    orphan(store, "Ev1")
    me, replays = sweeper(store, Answers(InSlack.YES))
    with caplog.at_level(logging.WARNING, logger="concierge.takeover"):
        assert me.tick(replays) == ["Ev1"]
    assert replays.seen == []
    claim = row(store, "Ev1")
    assert (claim.owner, claim.takeovers, claim.body) == ("me", 1, None)
    assert claim.answered_at is not None
    assert "the answer of worker deadhost:7:0bad is already in Slack" in caplog.text
    assert me.tick(replays) == [] and replays.seen == []


@pytest.mark.parametrize("found", [InSlack.NO, InSlack.CANNOT_TELL])
def test_an_event_whose_answer_is_not_in_slack_is_replayed_once(store: Store,
                                                                 found: InSlack) -> None:
    orphan(store, "Ev1")
    answers = Answers(found)
    me, replays = sweeper(store, answers)
    assert me.tick(replays) == ["Ev1"]
    assert [event_id for event_id, _ in replays.seen] == ["Ev1"]
    assert [event_id for event_id, _ in answers.asked] == ["Ev1"]
    assert me.tick(replays) == [] and len(replays.seen) == 1


def test_a_failed_lookup_is_tried_again_at_the_next_beats(store: Store) -> None:
    orphan(store, "Ev1")
    orphan(store, "Ev2")
    answers = Answers(InSlack.LOOKUP_FAILED, InSlack.LOOKUP_FAILED,  # Ev1, Ev2
                      InSlack.YES, InSlack.LOOKUP_FAILED,  # Ev1 found; Ev2 fails again
                      InSlack.LOOKUP_FAILED)  # Ev2, the last attempt: replayed anyway
    me, replays = sweeper(store, answers)
    assert me.tick(replays) == ["Ev1", "Ev2"]
    assert me.unsettled == 2 and replays.seen == []
    assert row(store, "Ev1").answered_at is None  # ours now, waiting for a lookup
    assert me.tick(replays) == []
    assert me.unsettled == 1 and replays.seen == []
    assert row(store, "Ev1").answered_at is not None
    assert me.tick(replays) == []
    assert me.unsettled == 0
    # Three failures: answered rather than lost, at worst a second time.
    assert [event_id for event_id, _ in replays.seen] == ["Ev2"]
    assert [event_id for event_id, _ in answers.asked] == ["Ev1", "Ev2", "Ev1", "Ev2", "Ev2"]
    assert answers.said == []


def test_a_lookup_that_raises_is_replayed(store: Store,
                                          caplog: pytest.LogCaptureFixture) -> None:
    orphan(store, "Ev1")

    def broken(event_id: str, body: dict[str, Any]) -> InSlack:
        raise KeyError("a bug")

    me, replays = sweeper(store, broken)
    with caplog.at_level(logging.ERROR, logger="concierge.takeover"):
        assert me.tick(replays) == ["Ev1"]
    assert "looking up the answer to event Ev1 failed" in caplog.text
    assert [event_id for event_id, _ in replays.seen] == ["Ev1"]


def test_lookups_that_keep_failing_past_the_max_age_answer_nothing(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    orphan(store, "Ev1")
    me, replays = sweeper(store, Answers(InSlack.LOOKUP_FAILED))
    assert me.tick(replays) == ["Ev1"] and me.unsettled == 1
    later = utcnow() + SETTINGS.max_age
    monkeypatch.setattr("bot.store.takeover.utcnow", lambda: later)
    assert me.tick(replays) == []
    assert me.unsettled == 0 and replays.seen == []


def test_lookups_run_off_the_heartbeat_thread(store: Store) -> None:
    orphan(store, "Ev1")
    release = threading.Event()
    asked: list[str] = []

    def slow(event_id: str, body: dict[str, Any]) -> InSlack:
        asked.append(threading.current_thread().name)
        release.wait(30)  # a Web API waiting out a rate limit
        return InSlack.NO

    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lookup")
    me, replays = sweeper(store, slow, executor=executor)
    try:
        # The tick returns while the lookup still waits: heartbeats go on meanwhile.
        assert me.tick(replays) == ["Ev1"]
        assert me.beat()
    finally:
        release.set()
        executor.shutdown(wait=True)
    assert len(asked) == 1 and asked[0].startswith("lookup")
    assert [event_id for event_id, _ in replays.seen] == ["Ev1"]
