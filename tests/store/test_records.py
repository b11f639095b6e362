"""The question log and the reports over it, on a SQLite file and on PostgreSQL.

Questions, choices, feedback and clicks are seeded through the store's own API
with known times, then the stats, gaps and owners reports are checked number by
number.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from dbfixtures import db_url, no_database_env, postgres_url, sqlite_url, store
from sqlalchemy import create_engine, text

from bot.admin.reports import gaps_report, load_activity, owners_report, stats_report
from bot.catalogue.loader import load_catalog
from bot.catalogue.models import Catalog
from bot.store.database import QuestionRecord, Store
from bot.store.recorder import RETRY_AFTER, BestEffort, Recorder, RecorderSettings, user_hash
from bot.store.tables import Base, utcnow

__all__ = ["db_url", "no_database_env", "postgres_url", "sqlite_url", "store"]

NOW = utcnow()


@pytest.fixture
def catalog(write_catalogue: Callable[..., Path], new_offering: Callable[..., dict[str, Any]],
            kdir: Path) -> Catalog:
    write_catalogue([
        new_offering("standard-laptop", name="Standard laptop",
                     owner={"team": "Workplace", "contact": "#workplace"}),
        new_offering("laptop-repair", name="Laptop repair", owner={"team": "Workplace"}),
        new_offering("vpn", name="VPN", owner={"team": "Network", "contact": "S0NETWORK1"}),
        new_offering("old-fax", name="Fax", owner={"team": "Network"}, lifecycle="retired",
                     replaced_by="vpn"),
    ])
    return load_catalog(kdir)


def ask(store: Store, text_: str, decision: str, *, offering: str | None = None,
        nearest: str | None = None, choices: tuple[str, ...] = (), latency: float = 10.0,
        days_ago: float = 1, user: str | None = "hash-a", surface: str = "dm") -> int:
    return store.record_question(QuestionRecord(
        asked_at=NOW - timedelta(days=days_ago), surface=surface, text=text_,
        decision=decision, confidence=0.9 if offering else 0.2, latency_ms=latency,
        user_hash=user, offering_id=offering, nearest_offering_id=nearest or offering,
        choices=choices))


def seed(store: Store) -> dict[str, int]:
    ids = {
        "laptop1": ask(store, "my laptop is slow", "answer", offering="standard-laptop",
                       latency=10),
        "laptop2": ask(store, "need a new laptop", "answer", offering="standard-laptop",
                       latency=20, user="hash-b"),
        "laptop3": ask(store, "laptop too old", "answer", offering="standard-laptop",
                       latency=30, surface="command"),
        "chosen": ask(store, "laptop broken", "clarify", nearest="laptop-repair",
                      choices=("laptop-repair", "standard-laptop"), latency=40),
        "abandoned": ask(store, "laptop stuff", "clarify", nearest="standard-laptop",
                         choices=("standard-laptop", "laptop-repair"), latency=50),
        "car1": ask(store, "I need a company car", "none", nearest="vpn", latency=60,
                    surface="mention"),
        "car2": ask(store, "company car please", "none", latency=70, user="hash-c"),
        "car3": ask(store, "how do I get a comapny car?", "none", latency=80),
        "canteen": ask(store, "where is the canteen", "none", latency=90),
        "vpn": ask(store, "vpn from home", "answer", offering="vpn", latency=1000),
        "old": ask(store, "ancient question", "none", days_ago=40, latency=5000),
    }
    store.record_choice(ids["chosen"], "laptop-repair")
    store.record_feedback(question_id=ids["laptop1"], offering_id="standard-laptop",
                          helpful=True, user_hash="hash-a")
    store.record_feedback(question_id=ids["vpn"], offering_id="vpn", helpful=False,
                          user_hash="hash-a")
    store.record_request_click(question_id=ids["laptop2"], offering_id="standard-laptop",
                               user_hash="hash-b")
    return ids


def test_the_migrations_build_exactly_the_declared_tables(store: Store) -> None:
    with store.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    assert store.schema_revision()[0] == store.schema_revision()[1]


def test_a_database_from_before_migrations_keeps_its_event_claims(db_url: str) -> None:
    # The first Slack release created processed_events directly, without Alembic.
    engine = create_engine(db_url)
    if engine.dialect.name == "sqlite":
        Path(engine.url.database or "").parent.mkdir(parents=True, exist_ok=True)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE processed_events (event_id VARCHAR(64) PRIMARY KEY, "
                          "claimed_at TIMESTAMP WITH TIME ZONE NOT NULL)"
                          if engine.dialect.name == "postgresql" else
                          "CREATE TABLE processed_events (event_id VARCHAR(64) PRIMARY KEY, "
                          "claimed_at DATETIME NOT NULL)"))
        conn.execute(text("INSERT INTO processed_events VALUES ('Ev1', :now)"), {"now": NOW})
    engine.dispose()
    store = Store(db_url)
    try:
        assert store.claim_event("Ev1") is False
        assert store.claim_event("Ev2") is True
        assert store.generation() == 0
    finally:
        store.close()


def test_revision_0005_keeps_the_newest_rating_of_each_question(db_url: str) -> None:
    # Before 0005 every click was a row: five "Not what I need" on one card made five.
    from alembic import command
    from alembic.script import ScriptDirectory

    from bot.store.migrate import alembic_config

    store = Store(db_url, migrate=False)
    if store.sqlite_file is not None:
        store.sqlite_file.parent.mkdir(parents=True)
    try:
        with store.engine.begin() as conn:
            before = ScriptDirectory.from_config(alembic_config()).get_revision("0005")
            command.upgrade(alembic_config(conn), str(before.down_revision))
            conn.execute(text("INSERT INTO questions (id, asked_at, surface, text, decision, "
                              "confidence, latency_ms, none_fitted) VALUES (1, :now, 'dm', "
                              "'q', 'answer', 1, 1, false)"), {"now": NOW})
            for n, helpful in enumerate([False, False, True]):
                conn.execute(text("INSERT INTO feedback (given_at, question_id, offering_id, "
                                  "helpful) VALUES (:at, 1, 'vpn', :helpful)"),
                             {"at": NOW + timedelta(seconds=n), "helpful": helpful})
            conn.execute(text("INSERT INTO feedback (given_at, question_id, offering_id, "
                              "helpful) VALUES (:now, NULL, 'vpn', false)"), {"now": NOW})
        store.upgrade()
        with store.engine.connect() as conn:
            rows = conn.execute(text("SELECT question_id, helpful FROM feedback "
                                     "ORDER BY question_id")).all()
        assert sorted(rows, key=str) == sorted([(1, True), (None, False)], key=str)
    finally:
        store.close()


def test_stats_from_seeded_questions(store: Store, catalog: Catalog) -> None:
    seed(store)
    report = stats_report(load_activity(store, 30), catalog)
    assert report.questions == 10  # the 40-day-old one is outside the period
    assert report.askers == 3
    assert (report.answered, report.clarified, report.declined) == (4, 2, 4)
    assert report.clarified_chosen == 1
    assert dict(report.surfaces) == {"dm": 8, "command": 1, "mention": 1}
    assert (report.helpful, report.not_helpful, report.request_clicks) == (1, 1, 1)
    assert [(t.offering.id, t.count) for t in report.top_offerings] == [
        ("standard-laptop", 3), ("laptop-repair", 1), ("vpn", 1)]
    # Latencies 10..90 and 1000: median of ten values, p95 by nearest rank.
    assert report.latency_median_ms == 55.0
    assert report.latency_p95_ms == 1000.0
    text_ = report.view().text()
    assert "Answered: 4 (40%)" in text_ and "Declined: 4 (40%)" in text_
    assert "Feedback: 1 helpful (50%), 1 not helpful (50%)" in text_
    assert stats_report(load_activity(store, 60), catalog).questions == 11


def test_gaps_group_alike_needs_with_the_nearest_offering(store: Store,
                                                          catalog: Catalog) -> None:
    seed(store)
    report = gaps_report(load_activity(store, 30), catalog)
    # 4 declined + 1 abandoned clarify + 1 rated not helpful; the chosen clarify is met.
    assert report.unmet == 6
    first = report.gaps[0]
    assert first.count == 3
    assert set(first.examples) == {"I need a company car", "company car please",
                                   "how do I get a comapny car?"}
    assert first.nearest is not None and first.nearest.id == "vpn"
    assert first.nearest.owner == "Network"
    singles = {g.examples[0]: g for g in report.gaps[1:]}
    assert set(singles) == {"where is the canteen", "laptop stuff", "vpn from home"}
    assert dict(singles["laptop stuff"].reasons) == {"abandoned": 1}
    assert dict(singles["vpn from home"].reasons) == {"not_helpful": 1}
    assert singles["where is the canteen"].nearest is None
    line = report.view().sections[0].lines[0]
    assert line.startswith("   3 × ") and "nearest: VPN [vpn] (owner: Network)" in line


def test_owners_lists_teams_unasked_and_unhelpful_offerings(store: Store,
                                                            catalog: Catalog) -> None:
    seed(store)
    report = owners_report(load_activity(store, 30), catalog)
    teams = {t.team: t for t in report.teams}
    assert list(teams) == ["Network", "Workplace"]
    laptop = teams["Workplace"].offerings[0]
    assert (laptop.id, laptop.questions, laptop.helpful, laptop.request_clicks) == (
        "standard-laptop", 3, 1, 1)
    assert teams["Network"].contacts == ("S0NETWORK1",)
    # The retired fax is not "unasked": nobody should ask for it.
    assert [o.id for o in report.unasked] == []
    assert [(o.id, o.not_helpful) for o in report.most_unhelpful] == [("vpn", 1)]
    quiet = owners_report(load_activity(store, 30, now=NOW + timedelta(days=100)), catalog)
    assert [o.id for o in quiet.unasked] == ["standard-laptop", "laptop-repair", "vpn"]


def test_owners_text_shows_what_happened_not_a_line_of_zeros_per_offering(
        store: Store, catalog: Catalog) -> None:
    ask(store, "vpn from home", "answer", offering="vpn")
    text = owners_report(load_activity(store, 30), catalog).view().text()
    lines = text.splitlines()
    # Each offering once: an active one with its numbers, the quiet ones named together.
    assert "  VPN [vpn]: 1 question, 0 helpful, 0 not helpful, 0 request clicks" in lines
    assert ("  Not asked for: Laptop repair [laptop-repair], Standard laptop "
            "[standard-laptop]") in lines
    assert not [line for line in lines if "0 questions, 0 helpful" in line]
    assert len(lines) < 15
    # A Slack id means nothing on a terminal: `#workplace` stays, `S0NETWORK1` does not.
    assert "Workplace (#workplace): 2 offerings, 0 with activity" in text
    assert "S0NETWORK1" not in text and "Network: 2 offerings, 1 with activity" in text


def test_retention_purges_old_questions_and_everything_tied_to_them(store: Store) -> None:
    old = ask(store, "old", "answer", offering="vpn", days_ago=100)
    new = ask(store, "new", "answer", offering="vpn", days_ago=1)
    # Clicks given recently on an old answer go with it: they describe a purged question.
    store.record_feedback(question_id=old, offering_id="vpn", helpful=True, user_hash=None)
    store.record_request_click(question_id=old, offering_id="vpn", user_hash=None)
    store.record_feedback(question_id=new, offering_id="vpn", helpful=True, user_hash=None)
    purged = store.purge(timedelta(days=90))
    assert (purged.questions, purged.feedback, purged.request_clicks) == (1, 1, 1)
    activity = load_activity(store, 3650)
    assert [q.text for q in activity.questions] == ["new"]
    assert len(activity.ratings) == 1


def test_clicks_on_unknown_questions_are_kept_without_the_reference(store: Store) -> None:
    store.record_feedback(question_id=987654, offering_id="vpn", helpful=False,
                          user_hash=None)
    [rating] = load_activity(store, 1).ratings
    assert (rating.question_id, rating.offering_id, rating.helpful) == (None, "vpn", False)


def test_user_ids_are_stored_only_as_keyed_hashes(store: Store, catalog: Catalog) -> None:
    from bot.matching.matcher import Matcher

    decision = Matcher(catalog).decide("I need the vpn")
    keyed = Recorder(BestEffort(store), RecorderSettings(user_hash_key=b"k" * 32))
    unkeyed = Recorder(BestEffort(store), RecorderSettings(user_hash_key=None))
    keyed.question(decision, surface="dm", latency_ms=1.0, user="U0ALICE", team="T1")
    unkeyed.question(decision, surface="dm", latency_ms=1.0, user="U0ALICE", team="T1")
    with store.engine.connect() as conn:
        rows = conn.execute(text("SELECT user_hash, team_id, text FROM questions "
                                 "ORDER BY id")).all()
    assert rows[0] == (user_hash(b"k" * 32, "U0ALICE"), "T1", "I need the vpn")
    assert rows[1][0] is None
    assert "U0ALICE" not in repr(rows)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_database_that_is_down_costs_one_warning(caplog: pytest.LogCaptureFixture,
                                                   catalog: Catalog) -> None:
    from bot.matching.matcher import Matcher

    # Nothing listens on port 1: every connection is refused at once.
    down = Store("postgresql+psycopg://concierge@127.0.0.1:1/concierge", migrate=False)
    clock = FakeClock()
    recorder = Recorder(BestEffort(down, schema_ready=False, clock=clock))
    decision = Matcher(catalog).decide("I need the vpn")
    with caplog.at_level(logging.INFO, logger="concierge.store"):
        for _ in range(5):
            assert recorder.question(decision, surface="dm", latency_ms=1.0) is None
        recorder.feedback(None, "vpn", helpful=True, user=None)
        clock.now += RETRY_AFTER + 1  # time to probe again: still down, still quiet
        assert recorder.question(decision, surface="dm", latency_ms=1.0) is None
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert "keeps answering" in warnings[0].getMessage()
    down.close()


def test_recording_resumes_when_the_database_is_back(postgres_url: str, catalog: Catalog,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    from bot.matching.matcher import Matcher

    name = postgres_url.rsplit("/", 1)[1]
    admin = create_engine(postgres_url.rsplit("/", 1)[0] + "/postgres",
                          isolation_level="AUTOCOMMIT")
    store = Store(postgres_url)
    clock = FakeClock()
    recorder = Recorder(BestEffort(store, clock=clock))
    decision = Matcher(catalog).decide("I need the vpn")
    try:
        assert recorder.question(decision, surface="dm", latency_ms=1.0) is not None
        with admin.connect() as conn:  # take the database away, as an outage would
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = :name"), {"name": name})
        with caplog.at_level(logging.INFO, logger="concierge.store"):
            assert recorder.question(decision, surface="dm", latency_ms=1.0) is None
            with admin.connect() as conn:
                conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
            # Within the back-off nothing is tried; after it, recording resumes.
            assert recorder.question(decision, surface="dm", latency_ms=1.0) is None
            clock.now += RETRY_AFTER + 1
            assert recorder.question(decision, surface="dm", latency_ms=1.0) is not None
        messages = [r.getMessage() for r in caplog.records]
        assert sum("keeps answering" in m for m in messages) == 1
        assert sum("recording resumed" in m for m in messages) == 1
        assert len(load_activity(store, 1).questions) == 2
    finally:
        store.close()
        admin.dispose()


def test_one_bad_row_is_not_an_outage(db_url: str, catalog: Catalog,
                                      caplog: pytest.LogCaptureFixture) -> None:
    from bot.matching.matcher import Matcher
    from bot.store.takeover import Deliveries

    store = Store(db_url)
    guard = BestEffort(store)
    recorder = Recorder(guard)
    deliveries = Deliveries(guard)
    matcher = Matcher(catalog)
    answered = matcher.decide("I need the vpn")
    assert answered.offering is not None
    # An offering id longer than its column: PostgreSQL refuses the row, SQLite keeps it.
    too_long = replace(answered, offering=replace(answered.offering, id="v" * 210))
    try:
        with caplog.at_level(logging.WARNING, logger="concierge.store"):
            recorder.question(too_long, surface="dm", latency_ms=1.0)
            # NUL in text (PostgreSQL refuses it) and a lone surrogate (no driver encodes
            # it), in a question and in an event's body; a team id too long for its column.
            odd = matcher.decide("my vpn\x00 is \ud800 down")
            asked = recorder.question(odd, surface="dm", latency_ms=1.0, team="T" * 100)
            body = {"type": "event_callback", "event_id": "Ev0ODD",
                    "event": {"type": "message", "text": "nul\x00 and \udc00"}}
            first, redelivered = deliveries.claim("Ev0ODD", body), deliveries.claim(
                "Ev0ODD", body)
            after = recorder.question(answered, surface="dm", latency_ms=1.0)
        assert guard.available, "a refused row made the database count as down"
        assert asked is not None and after is not None
        assert (first, redelivered) == (True, False), "dedupe failed open"
        with store.engine.connect() as conn:
            row = conn.execute(text("SELECT text, team_id FROM questions WHERE id = :id"),
                               {"id": asked}).one()
        assert row == ("my vpn is \ufffd down", None)
        assert not any("unavailable" in r.getMessage() for r in caplog.records)
    finally:
        store.close()


def test_reports_never_see_rows_from_the_future_period(store: Store, catalog: Catalog) -> None:
    ask(store, "yesterday", "answer", offering="vpn", days_ago=1)
    before: datetime = NOW - timedelta(days=2)
    assert stats_report(load_activity(store, 1, now=before), catalog).questions == 0


def test_the_sqlite_files_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    store = Store(f"sqlite:///{folder / 'concierge.sqlite3'}")
    try:
        ask(store, "my private question", "none")
        files = sorted(p.name for p in folder.iterdir())
        assert {"concierge.sqlite3", "concierge.sqlite3-wal", "concierge.sqlite3-shm"} <= set(
            files)
        assert (folder.stat().st_mode & 0o777) == 0o700
        assert {p.name: p.stat().st_mode & 0o777 for p in folder.iterdir()} == dict.fromkeys(
            files, 0o600)
    finally:
        store.close()


def test_a_readable_database_from_before_is_made_owner_only(tmp_path: Path) -> None:
    database = tmp_path / "concierge.sqlite3"
    Store(f"sqlite:///{database}").close()
    database.chmod(0o644)
    store = Store(f"sqlite:///{database}", migrate=False)
    store.close()
    assert database.stat().st_mode & 0o777 == 0o600


def test_the_schema_limits_ids_to_what_their_columns_hold() -> None:
    # An id that passes `check` must fit every column that stores it (answers, choices,
    # feedback, clicks): 210 characters once passed and then overflowed VARCHAR(200).
    import json

    from bot.catalogue.loader import schema_path
    from bot.store.tables import OFFERING_ID_LENGTH

    schema = json.loads(schema_path().read_text(encoding="utf-8"))
    assert schema["$defs"]["slug"]["maxLength"] <= OFFERING_ID_LENGTH
    assert schema["$defs"]["offering"]["properties"]["id"]["$ref"] == "#/$defs/slug"
