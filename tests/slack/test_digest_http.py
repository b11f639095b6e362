"""Owner digests as Slack receives them, over real HTTP against the fake Web API, from a
seeded database on SQLite and PostgreSQL: where each contact kind's digest goes, once,
also when two processes race for the period and when one is killed half-way through it.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from dbfixtures import db_url, no_database_env, postgres_url, sqlite_url
from seeding import Seeded, seed_learning, write_learning_catalogue
from slackfakes import BOT_TOKEN, FakeSlackAPI, all_text

from bot.admin.schedule import DigestSettings, parse_schedule
from bot.catalogue.loader import load_catalog
from bot.cli.main import main
from bot.matching.engine import build_matcher
from bot.matching.matcher import Matcher
from bot.slack.app import web_client
from bot.slack.digests import DIGEST_EVENT_TYPE, DigestSender
from bot.store.database import Store
from bot.store.digests import DigestLog, team_key

__all__ = ["db_url", "no_database_env", "postgres_url", "sqlite_url"]

NETWORK_MEMBERS = ["U0NETONE", "U0NETTWO"]
# Where the seeded catalogue's owner contacts lead: C0WORKPLACE and U0REPAIR1 (Workplace
# Services), usergroup S0NETWORK1 (Network Team: each member), "#collab-help" and an email
# (Collaboration: the channel; the email is skipped).
EXPECTED = {"#collab-help": "Collaboration", "D0NETONE": "Network Team",
            "D0NETTWO": "Network Team", "C0WORKPLACE": "Workplace Services",
            "D0REPAIR1": "Workplace Services"}
REPO = Path(__file__).resolve().parents[2]


@dataclass
class World:
    fake: FakeSlackAPI
    knowledge: Path
    url: str
    seeded: Seeded
    env: dict[str, str]

    def posts(self) -> list[tuple[str, dict[str, Any]]]:
        """(channel, message) of every digest Slack holds, as it stored them."""
        return [(channel, m) for channel in sorted(self.fake.messages)
                for m in self.fake.messages_in(channel)
                if (m.get("metadata") or {}).get("event_type") == DIGEST_EVENT_TYPE]

    def cli(self, *argv: str) -> tuple[int, str]:
        out = StringIO()
        code = main(list(argv), out=out)
        return code, out.getvalue()

    def process(self, *argv: str) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-m", "bot", *argv], cwd=REPO,
                                env={**os.environ, **self.env}, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)


@pytest.fixture
def world(db_url: str, fake_slack: FakeSlackAPI, tmp_path: Path, no_database_env: None,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    knowledge = write_learning_catalogue(tmp_path / "knowledge")
    store = Store(db_url)
    # Seeded a few hours before this week's slot, so that it lies in the period sent now.
    slot = parse_schedule("weekly")
    assert slot is not None
    seeded = seed_learning(store, build_matcher(load_catalog(knowledge), "lexical"),
                           now=slot.latest_slot(datetime.now(UTC)) - timedelta(hours=2))
    store.close()
    fake_slack.usergroups["S0NETWORK1"] = list(NETWORK_MEMBERS)
    env = {"DATABASE_URL": db_url, "SLACK_BOT_TOKEN": BOT_TOKEN,
           "SLACK_API_URL": fake_slack.api_url, "CONCIERGE_KNOWLEDGE": str(knowledge),
           "CONCIERGE_MATCHER": "lexical", "CONCIERGE_TAKEOVER_AFTER": "2",
           "CONCIERGE_CACHE_DIR": os.environ["CONCIERGE_CACHE_DIR"]}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("CONCIERGE_DIGEST", raising=False)
    yield World(fake_slack, knowledge, db_url, seeded, env)


def test_each_contact_kind_gets_its_teams_digest_once(world: World) -> None:
    code, out = world.cli("digest", "--send")
    assert code == 0, out
    posts = world.posts()
    assert sorted(channel for channel, _ in posts) == sorted(EXPECTED)
    for channel, params in posts:
        team = EXPECTED[channel]
        text = all_text(params["blocks"])
        assert f"Concierge digest for {team}" in text
        assert params["metadata"]["event_payload"]["team"] == team_key(team)
        assert params["bot_id"]  # posted by the app, as a lookup expects
    # DMs go to the conversation Slack opened for each user, members of the usergroup too.
    assert sorted(c.params["users"] for c in world.fake.calls_to("conversations.open")) == (
        sorted(["U0REPAIR1", *NETWORK_MEMBERS]))
    # What Slack received says what the seeded log holds.
    [workplace] = [p for c, p in posts if c == "C0WORKPLACE"]
    body = all_text(workplace["blocks"])
    assert "Laptop repair [laptop-repair]: 4 questions (4 picked from a choice)" in body
    assert "“my laptop screen is cracked” (5 questions, picked after “Did you mean…”" in body
    assert "“I need a company car for customer visits”; nearest: Laptop repair" in body
    assert "0171" not in body  # the phone number in one question never reaches an owner
    assert "collab@example.test skipped" not in body
    assert "Collaboration → collab@example.test: skipped: an email address" in out
    # Sent once: a second run (or the scheduler) finds the period finished.
    code, again = world.cli("digest", "--send")
    assert code == 0 and ": already sent" in again.splitlines()[0]
    assert len(world.posts()) == len(EXPECTED)


def test_a_usergroup_with_a_channel_named_in_config_reads_it_there(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONCIERGE_DIGEST_CHANNELS", "S0NETWORK1=#network-digest")
    code, _ = world.cli("digest", "--send")
    assert code == 0
    channels = [c for c, _ in world.posts()]
    assert "#network-digest" in channels and "D0NETONE" not in channels
    assert not world.fake.calls_to("usergroups.users.list")


def test_a_team_with_nothing_to_report_gets_nothing(world: World) -> None:
    (world.knowledge / "quiet.yaml").write_text(
        "id: fax\nname: Fax\nsummary: A fax line.\nkind: service\n"
        "owner: {team: Quiet Team, contact: U0QUIET1}\n"
        "request: {url: \"https://it.example.test/fax\"}\n"
        # Needs that back each other up: the quality report finds nothing to say either.
        "needs: [I need to send a fax, send a fax to a supplier, fax a signed form,"
        " a fax line for my team]\n",
        encoding="utf-8")
    code, out = world.cli("digest", "--send")
    assert code == 0
    assert "nothing to report, not sent: Quiet Team" in out
    assert "D0QUIET1" not in [c for c, _ in world.posts()]
    code, dry = world.cli("digest", "--dry-run", "--owner", "quiet team")
    assert "=== Quiet Team → direct message to U0QUIET1\n    nothing to report: not sent" in dry


def test_refused_and_rate_limited_posts(world: World) -> None:
    world.fake.refused["#collab-help"] = "not_in_channel"
    world.fake.rate_limit("chat.postMessage", 2)  # waited out by the client
    code, out = world.cli("digest", "--send")
    assert code == 1  # a failure is an exit status cron can see
    assert "Collaboration → #collab-help: failed: not_in_channel" in out
    assert sorted(c for c, _ in world.posts()) == sorted(set(EXPECTED) - {"#collab-help"})
    assert len(world.fake.calls_to("chat.postMessage", ok_only=False)) == len(EXPECTED) + 2
    # A refused post is not retried for the period: the owners hear of it from the admin.
    code, again = world.cli("digest", "--send")
    assert ": already sent" in again


def test_the_dry_run_shows_destinations_and_sends_nothing(world: World) -> None:
    code, out = world.cli("digest", "--dry-run")
    assert code == 0
    assert out.startswith("Digest period weekly:")
    assert "(weekly, Mondays at 09:00 UTC): not sent yet" in out.splitlines()[0]
    assert ("=== Network Team → direct message to each member of usergroup S0NETWORK1"
            in out)
    assert ("=== Workplace Services → channel C0WORKPLACE; direct message to U0REPAIR1"
            in out)
    assert "    skipped: collab@example.test (an email address" in out
    assert not world.fake.calls and not world.posts()
    code, out = world.cli("digest", "--dry-run", "--json", "--owner", "Network Team")
    data = json.loads(out)
    [digest] = data["digests"]
    assert digest["team"] == "Network Team" and digest["message"]["blocks"]


def test_two_processes_racing_send_each_digest_once(world: World) -> None:
    racers = [world.process("digest", "--send") for _ in range(2)]
    outputs = [p.communicate(timeout=120)[0] for p in racers]
    assert [p.returncode for p in racers] == [0, 0], outputs
    statuses = sorted(o.splitlines()[0].split(": ")[-1].split(" (")[0] for o in outputs)
    assert statuses[1] == "sent" and statuses[0] in ("already sent", "busy")
    assert sorted(c for c, _ in world.posts()) == sorted(EXPECTED)


@pytest.mark.parametrize("carried_out", [True, False], ids=["posted", "not-posted"])
def test_a_sender_killed_half_way_is_taken_over_and_nothing_is_sent_twice(
        world: World, carried_out: bool) -> None:
    # The first process gets as far as the second Network Team member's DM and dies while
    # Slack holds that call: with or without having posted it.
    hold = world.fake.hold("chat.postMessage", "D0NETTWO", carried_out=carried_out)
    first = world.process("digest", "--send")
    assert hold.arrived.wait(60), first.communicate(timeout=5)
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=30)
    hold.release.set()
    store = Store(world.url, migrate=False)
    log = DigestLog(store)
    [run] = [r for r in [log.run(k) for k in _periods(world)] if r is not None]
    assert run.finished_at is None
    rows = {d.recipient: d.state for d in log.deliveries(run.period)}
    assert rows["U0NETTWO"] == "sending" and rows["#collab-help"] == "sent"
    # A restarted sender waits until the dead one's heartbeat is silent, then takes over.
    deadline = time.monotonic() + 60
    while True:
        code, out = world.cli("digest", "--send")
        if ": busy" not in out.splitlines()[0] or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert code == 0 and out.splitlines()[0].endswith(": sent"), out
    assert log.run(run.period).finished_at is not None  # type: ignore[union-attr]
    assert sorted(c for c, _ in world.posts()) == sorted(EXPECTED)  # each exactly once
    in_dm = [m for m in world.fake.messages_in("D0NETTWO") if m.get("metadata")]
    assert len(in_dm) == 1
    expected = ("found in Slack, not sent again" if carried_out else "posted again (in doubt)")
    assert f"Network Team → U0NETTWO: sent: {expected}" in out
    assert "Collaboration → #collab-help: sent before" in out
    store.close()


def _periods(world: World) -> list[str]:
    schedule = parse_schedule("weekly")
    assert schedule is not None
    slot = schedule.latest_slot(datetime.now(UTC))
    return [schedule.key(slot), schedule.key(schedule.latest_slot(slot - timedelta(seconds=1)))]


# --- the scheduler in a worker -------------------------------------------------------------


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def sender(world: World, matcher: Matcher, store: Store, clock: Clock, *,
           schedule: str = "daily 08:00", worker: str = "host:1:a") -> DigestSender:
    return DigestSender(store, web_client(BOT_TOKEN, world.fake.api_url), lambda: matcher,
                        DigestSettings(parse_schedule(schedule)), worker_id=worker,
                        stale_after=timedelta(seconds=20), clock=clock)


def test_the_scheduler_sends_a_due_period_once_and_a_late_one_never(
        world: World, caplog: pytest.LogCaptureFixture) -> None:
    store = Store(world.url)
    matcher = build_matcher(load_catalog(world.knowledge), "lexical")
    slot = datetime.combine(world.seeded.now.date() + timedelta(days=1),
                            datetime.min.time(), tzinfo=UTC).replace(hour=8)
    clock = Clock(slot - timedelta(minutes=1))
    worker = sender(world, matcher, store, clock)
    try:
        store.heartbeat("host:1:a")
        # The previous day's slot is more than 12 hours back: past its grace.
        assert worker.tick() is None and not world.posts()
        clock.now = slot + timedelta(seconds=30)
        with caplog.at_level(logging.INFO, logger="concierge.digest"):
            summary = worker.tick()
        assert summary is not None and summary.status == "sent"
        # The log names channels and counts; people only with CONCIERGE_LOG_CONTENT=on.
        logged = "\n".join(r.getMessage() for r in caplog.records)
        assert "Workplace Services → a direct message: sent" in logged
        assert "Workplace Services → C0WORKPLACE: sent" in logged
        assert "U0REPAIR1" not in logged and "U0NETONE" not in logged
        sent = len(world.posts())
        assert sent > 0
        # Every worker ticks every minute: the period is sent once.
        other = sender(world, matcher, store, clock, worker="host:2:b")
        assert other.tick() is not None and len(world.posts()) == sent
        clock.now = slot + timedelta(hours=13)  # past the daily grace: not due
        assert worker.tick() is None
    finally:
        store.close()


def test_the_scheduler_is_off_by_configuration() -> None:
    assert DigestSettings.from_env({"CONCIERGE_DIGEST": "off"}).schedule is None
    settings = DigestSettings.from_env({})
    assert settings.schedule is not None
    assert settings.schedule.describe() == "weekly, Mondays at 09:00 UTC"
