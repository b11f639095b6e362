"""`concierge stats|gaps|owners|requests` and `concierge db`: the same reports on the terminal,
read from DATABASE_URL (PostgreSQL) or the default SQLite file, never changing it."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from clirun import run
from dbfixtures import db_url, no_database_env, postgres_url, sqlite_url

from bot.store.database import QuestionRecord, Store
from bot.store.migrate import head_revision
from bot.store.requests import NewItem, NewRequest, RequestBook
from bot.store.tables import utcnow

__all__ = ["db_url", "no_database_env", "postgres_url", "sqlite_url"]


@pytest.fixture
def seeded(db_url: str, monkeypatch: pytest.MonkeyPatch, no_database_env: None,
           write_catalogue: Callable[..., Path],
           new_offering: Callable[..., dict[str, Any]]) -> Path:
    monkeypatch.setenv("DATABASE_URL", db_url)
    kdir = write_catalogue([new_offering("vpn", name="VPN", owner={"team": "Network"}),
                            new_offering("wifi", name="Wi-Fi",
                                         owner={"team": "Network"})]).parent
    store = Store(db_url)
    now = utcnow()
    for n, (question, decision, offering) in enumerate([
            ("vpn from home", "answer", "vpn"), ("vpn please", "answer", "vpn"),
            ("company car", "none", None), ("I need a company car", "none", None),
            ("old question", "none", None)]):
        store.record_question(QuestionRecord(
            asked_at=now - timedelta(days=40 if question == "old question" else 1),
            surface="dm", text=question, decision=decision, confidence=0.5,
            latency_ms=10.0 * (n + 1), offering_id=offering, nearest_offering_id=offering))
    store.close()
    return kdir


def test_stats_json(seeded: Path) -> None:
    code, out = run("stats", "--json", "--knowledge", str(seeded))
    assert code == 0
    data = json.loads(out)
    assert (data["report"], data["days"], data["questions"]) == ("stats", 30, 4)
    assert (data["answered"], data["declined"]) == (2, 2)
    assert data["top_offerings"] == [{"id": "vpn", "name": "VPN", "questions": 2}]
    assert data["latency_median_ms"] == 25.0
    code, out = run("stats", "--days", "60", "--json", "--knowledge", str(seeded))
    assert json.loads(out)["questions"] == 5


def test_gaps_and_owners_text(seeded: Path) -> None:
    code, out = run("gaps", "--knowledge", str(seeded))
    assert code == 0
    assert "2 unmet needs in 1 group," in out
    assert "2 × “company car” | “I need a company car” (declined 2; nothing near)" in out
    code, out = run("owners", "--json", "--knowledge", str(seeded))
    data = json.loads(out)
    [team] = data["teams"]
    assert team["team"] == "Network"
    assert [(o["id"], o["questions"]) for o in team["offerings"]] == [("vpn", 2), ("wifi", 0)]
    assert data["unasked"] == ["wifi"]


def test_reports_never_create_a_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         no_database_env: None,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CONCIERGE_DATA_DIR", str(tmp_path / "data"))
    code, _ = run("stats")
    assert code == 2
    assert "no database file yet" in capsys.readouterr().err
    assert not (tmp_path / "data").exists()


def test_db_upgrade_then_status(db_url: str, monkeypatch: pytest.MonkeyPatch,
                                no_database_env: None) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)
    code, out = run("db", "status")
    assert code == 1 and "at nothing" in out
    head = head_revision()
    assert head != "0001"  # the test below goes through more than one revision
    code, out = run("db", "upgrade")
    assert code == 0 and "applied 0001, " in out and f"now at {head}" in out
    code, out = run("db", "upgrade")
    assert code == 0 and "nothing to do" in out
    code, out = run("db", "status")
    assert code == 0 and f"at {head}; newest {head}" in out


def test_an_unreachable_database_is_one_clear_line(monkeypatch: pytest.MonkeyPatch,
                                                   no_database_env: None,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://concierge:secret@127.0.0.1:1/concierge")
    code, _ = run("gaps")
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("concierge: postgresql+psycopg://concierge:***@127.0.0.1:1/concierge: "
                          "cannot read the database")
    assert "secret" not in err and len(err.strip().splitlines()) == 1


def test_what_people_typed_reaches_the_terminal_escaped(
        sqlite_url: str, monkeypatch: pytest.MonkeyPatch, no_database_env: None,
        write_catalogue: Callable[..., Path],
        new_offering: Callable[..., dict[str, Any]]) -> None:
    # A question is whatever someone typed: an escape sequence in it would clear the admin's
    # screen (or worse) when `gaps` prints it.
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    kdir = write_catalogue([new_offering("vpn")]).parent
    store = Store(sqlite_url)
    store.record_question(QuestionRecord(
        asked_at=utcnow(), surface="dm", text="company car\x1b[2J\x1b]0;pwned\x07\nforged line",
        decision="none", confidence=0.0, latency_ms=1.0))
    store.close()
    code, out = run("gaps", "--knowledge", str(kdir))
    assert code == 0
    assert "\x1b" not in out and "\x07" not in out
    assert "company car\\x1b[2J\\x1b]0;pwned\\x07\\nforged line" in out
    assert not any(line.startswith("forged line") for line in out.splitlines())


@pytest.fixture
def production(tmp_path: Path, write_catalogue: Callable[..., Path],
               new_offering: Callable[..., dict[str, Any]]) -> Path:
    """The catalogue served in production: not the sample one."""
    return write_catalogue([new_offering("company-car", name="Company car",
                                         owner={"team": "Fleet"})],
                           directory=tmp_path / "production").parent


def test_reports_name_offerings_from_the_catalogue_serve_loaded(
        db_url: str, monkeypatch: pytest.MonkeyPatch, no_database_env: None, production: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    from bot.catalogue.loader import load_catalog
    from bot.live import LiveCatalogue
    from bot.matching.engine import build_matcher
    from bot.settings import repo_root
    from bot.store.recorder import BestEffort

    monkeypatch.setenv("DATABASE_URL", db_url)
    store = Store(db_url)
    # What `concierge serve` does at start: load the catalogue it serves, and say which.
    LiveCatalogue(production, "lexical", build_matcher(load_catalog(production), "lexical"),
                  BestEffort(store))
    store.record_question(QuestionRecord(
        asked_at=utcnow(), surface="dm", text="company car please", decision="answer",
        confidence=0.9, latency_ms=5.0, offering_id="company-car",
        nearest_offering_id="company-car"))
    store.close()

    code, out = run("stats")  # neither --knowledge nor CONCIERGE_KNOWLEDGE
    assert code == 0
    assert "Company car [company-car] (owner: Fleet" in out
    assert "no longer in the catalogue" not in out
    assert f"offerings named from {production.resolve()}" in capsys.readouterr().err

    code, out = run("stats", "--knowledge", str(repo_root() / "knowledge"))
    assert code == 0 and "company-car (no longer in the catalogue)" in out
    err = capsys.readouterr().err
    assert "is not the catalogue `concierge serve` last loaded" in err
    assert str(production.resolve()) in err
@pytest.fixture
def with_requests(seeded: Path, db_url: str) -> Path:
    """Three requests: one delivered and taken, one whose webhook waits to try again, one
    whose webhook was given up (with its reports)."""
    store = Store(db_url)
    book = RequestBook(store)
    now = utcnow()
    items = [NewItem("message", "C0REQUESTS", "request"), NewItem("webhook", "servicedesk",
                                                                  "request"),
             NewItem("notice", "U0ALICE", "receipt")]
    made = []
    for n in range(3):
        made.append(book.submit(NewRequest(
            submission_key=f"V{n}", offering_id="vpn", requester_id="U0ALICE",
            requester_name="alice", details={"offering": {"name": "VPN"}, "answers": []}),
            items, at=now - timedelta(hours=3 - n)))
    parcels = book.claim("w", lease=timedelta(seconds=90), stale_after=timedelta(seconds=20),
                         limit=100)
    by_id = {(p.request.id, p.item.kind): p.item.id for p in parcels}
    for request in made:
        rid = request.request.id
        book.delivered(by_id[(rid, "message")], "w", message_channel="C0REQUESTS",
                       message_ts="1.1")
        book.delivered(by_id[(rid, "notice")], "w")
    first, second, third = (r.request.id for r in made)
    book.delivered(by_id[(first, "webhook")], "w")
    book.change_status(first, to="taken", allowed_from=["open"], by="U0OWNER1")
    book.postpone(by_id[(second, "webhook")], "w", until=now + timedelta(minutes=2),
                  error="HTTP 503")
    book.fail(by_id[(third, "webhook")], "w", error="HTTP 410",
              notices=[NewItem("notice", "U0ALICE", "failure")])
    store.close()
    return seeded


def test_requests_list_each_request_and_where_its_deliveries_stand(
        with_requests: Path) -> None:
    code, out = run("requests", "--json", "--knowledge", str(with_requests))
    assert code == 0
    data = json.loads(out)
    assert data["counts"] == {"submitted": 3, "delivered": 1, "pending": 1, "failed": 1,
                              "open": 2, "taken": 1, "done": 0, "declined": 0}
    assert [(r["id"], r["status"], r["delivery"]) for r in data["requests"]] == [
        (3, "open", "failed"), (2, "open", "pending"), (1, "taken", "delivered")]
    webhook = next(d for d in data["requests"][1]["deliveries"] if d["kind"] == "webhook")
    assert (webhook["state"], webhook["attempts"], webhook["last_error"]) == (
        "pending", 1, "HTTP 503")
    assert data["requests"][0]["requester"] == {"slack_id": "U0ALICE", "name": "alice"}

    code, text = run("requests", "--knowledge", str(with_requests))
    assert code == 0
    assert "Undeliverable (1): the requester and the admins were told" in text
    assert "#3 VPN: webhook servicedesk FAILED after 1 attempt: HTTP 410" in text
    assert "webhook servicedesk pending (attempt 1 failed: HTTP 503; next " in text
    assert "[vpn] from alice (U0ALICE): taken by U0OWNER1. DELIVERED: message C0REQUESTS " \
           "delivered" in text

    code, out = run("stats", "--json", "--knowledge", str(with_requests))
    assert json.loads(out)["requests"]["submitted"] == 3
    code, out = run("stats", "--knowledge", str(with_requests))
    assert ("Requests made in Slack: 3 (1 delivered, 1 being delivered, 1 undeliverable); "
            "2 open, 1 taken, 0 done, 0 declined") in out


def test_stats_chart_writes_a_png_and_says_so_on_stderr(
        seeded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")  # CI installs the chart extra (tests/admin/test_chart)
    target = tmp_path / "stats.png"
    code, out = run("stats", "--json", "--chart", str(target), "--knowledge", str(seeded))
    assert code == 0 and json.loads(out)["questions"] == 4  # stdout stays one JSON object
    assert target.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert f"chart written to {target} (1200×675 PNG): Bar chart" in capsys.readouterr().err


def test_stats_chart_of_an_empty_period_draws_nothing(
        seeded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    target = tmp_path / "stats.png"
    code, _ = run("stats", "--days", "1", "--chart", str(target), "--knowledge", str(seeded))
    assert code == 0 and not target.exists()
    assert "No questions in the last 1 day: nothing to draw." in capsys.readouterr().err


def test_stats_without_matplotlib_still_reports_and_says_how_to_get_the_chart(
        seeded: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    for name in [m for m in sys.modules if m.split(".")[0] == "matplotlib"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setattr("bot.cli.reports.chart_available", lambda: False)
    code, out = run("stats", "--knowledge", str(seeded))
    assert code == 0 and "Questions: 4" in out
    assert out.rstrip().endswith("Chart: install the chart extra (pip install "
                                 "'matplotlib>=3.8'), then concierge stats --chart stats.png")
    code, out = run("stats", "--chart", str(tmp_path / "x.png"), "--knowledge", str(seeded))
    assert code == 2 and "Questions: 4" in out
    assert "No chart: matplotlib is not installed (pip install 'matplotlib>=3.8')" in (
        capsys.readouterr().err)
