"""Claimed, not yet answered, end to end: an event acknowledged by a worker that died before
replying is answered by a live worker through the real Bolt app, once.

In process (real Bolt app over real HTTP, one listener thread as in `conftest.running_app`):
an orphaned claim is replayed and answered, Slack's redelivery of it is dropped, and every
listener outcome (answered, ignored, unknown type) marks its event finished. Before
replaying, the taking-over worker reads the fake Slack's conversation: an answer the dead
worker did post (found by the event id in its metadata) is not posted again.
As processes: two `concierge serve` hosts on one database (SQLite file or PostgreSQL); the
Web API holds the first host's `chat.postMessage` (before or after posting it), the test
SIGKILLs that worker between its ack and the response, and the other host answers the
event if, and only if, the answer is not in Slack.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import ANSWER_LAPTOP, serving, slack_env
from dbfixtures import db_url, postgres_url, sqlite_url
from slack_sdk import WebClient
from slackfakes import (
    BOT_ID,
    BOT_TOKEN,
    BOT_USER_ID,
    WAIT_SECONDS,
    FakeSlackAPI,
    SlackSender,
    all_text,
)
from sqlalchemy import create_engine, select, update
from test_serve_process import Host, serve_hosts

from bot.slack.app import (
    DUPLICATE_HEADER,
    Runtime,
    SlackConfig,
    build_runtime,
    create_app,
    make_client,
    replay_into,
)
from bot.store.database import Store
from bot.store.tables import ProcessedEvent, utcnow
from bot.store.takeover import Deliveries, Replay, TakeoverSettings
from handlers.answers import ANSWER_EVENT_TYPE

__all__ = ["db_url", "postgres_url", "sqlite_url"]

STALE_AFTER = 20.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Served:
    slack: SlackSender
    fake: FakeSlackAPI
    runtime: Runtime
    replay: Replay
    clock: FakeClock

    @property
    def store(self) -> Store:
        return self.runtime.guard.store

    def sentinel(self, channel: str = "D0SENTINEL") -> None:
        """A DM and its answer: with one listener thread, every earlier event is done."""
        assert self.slack.dm(ANSWER_LAPTOP, channel=channel).status == 200
        self.fake.wait_for("chat.postMessage", lambda c: c.params.get("channel") == channel)

    def ready_to_sweep(self) -> None:
        """This worker's heartbeats have held for the takeover time (without waiting it)."""
        assert self.runtime.deliveries.beat()
        self.clock.now += STALE_AFTER


@pytest.fixture
def served(fake_slack: FakeSlackAPI, catalogue_dir: Path, tmp_path: Path) -> Iterator[Served]:
    config = SlackConfig.from_env(slack_env(fake_slack, catalogue_dir, tmp_path / "data"))
    client = make_client(config)
    runtime = build_runtime(config, client)
    clock = FakeClock()
    # The runtime's own lookup (real HTTP to the fake Slack), run on the ticking thread so
    # that a tick has looked up and replayed its events when it returns.
    runtime = replace(runtime, deliveries=Deliveries(
        runtime.guard, TakeoverSettings(stale_after=STALE_AFTER), clock=clock,
        lookup=runtime.deliveries.lookup))
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="listener")
    app = create_app(config, client=client, runtime=runtime, listener_executor=executor)
    with serving(app, config) as url:
        yield Served(SlackSender(url, fake_slack), fake_slack, runtime, replay_into(app), clock)
    executor.shutdown(wait=True)
    runtime.guard.store.close()


def claim_row(store: Store, event_id: str) -> Any:
    with store.engine.connect() as conn:
        return conn.execute(select(ProcessedEvent).where(
            ProcessedEvent.event_id == event_id)).one_or_none()


def event_body(event_id: str, event: dict[str, Any]) -> dict[str, Any]:
    return {"type": "event_callback", "event_id": event_id, "team_id": "T0TEAM",
            "api_app_id": "A0APP", "event_time": int(time.time()),
            "authorizations": [{"team_id": "T0TEAM", "user_id": BOT_USER_ID, "is_bot": True}],
            "event": event}


def dm_body(event_id: str, channel: str, ts: str, **fields: str) -> dict[str, Any]:
    return event_body(event_id, {"type": "message", "channel_type": "im", "channel": channel,
                                 "user": "U0ALICE", "text": ANSWER_LAPTOP, "ts": ts, **fields})


def mention_body(event_id: str, channel: str, ts: str) -> dict[str, Any]:
    return event_body(event_id, {"type": "app_mention", "channel": channel, "user": "U0ALICE",
                                 "text": f"<@{BOT_USER_ID}> {ANSWER_LAPTOP}", "ts": ts})


DEAD = "gone:41:dead"


def orphan(store: Store, body: dict[str, Any]) -> None:
    """Claimed a minute ago by a worker that has not been heard of since."""
    assert store.claim_event(body["event_id"], body=json.dumps(body), owner=DEAD,
                             at=utcnow() - timedelta(seconds=60))


def answered_then_orphaned(served: Served, body: dict[str, Any]) -> None:
    """The event as a worker leaves it when it dies after Slack posted its answer but
    before the answer was recorded: sent through the real app (answered, with metadata),
    then its claim put back to a dead owner, unanswered."""
    event = body["event"]
    assert served.slack.event(event, event_id=body["event_id"]).status == 200
    served.fake.wait_for("chat.postMessage",
                         lambda c: (c.params.get("metadata") or {}).get("event_payload")
                         == {"event_id": body["event_id"]})
    served.sentinel("D0SENTINEL0")  # its listener, and the hook marking it, are done
    with served.store.engine.begin() as conn:
        conn.execute(update(ProcessedEvent)
                     .where(ProcessedEvent.event_id == body["event_id"])
                     .values(owner=DEAD, answered_at=None, body=json.dumps(body),
                             claimed_at=utcnow() - timedelta(seconds=60)))


def posts_in(fake: FakeSlackAPI, channel: str) -> list[Any]:
    return [c for c in fake.calls_to("chat.postMessage", ok_only=False)
            if c.params.get("channel") == channel]


def test_an_answer_names_its_event_and_reads_back_from_the_dm(served: Served) -> None:
    body = dm_body("Ev0NAMED", "D0NAMED", "1700000000.000400")
    assert served.slack.event(body["event"], event_id="Ev0NAMED").status == 200
    [answer] = served.fake.wait_for("chat.postMessage",
                                    lambda c: c.params.get("channel") == "D0NAMED")
    metadata = {"event_type": ANSWER_EVENT_TYPE, "event_payload": {"event_id": "Ev0NAMED"}}
    assert answer.params["metadata"] == metadata
    # As Slack shows it: a bot message after the question, metadata only when asked for.
    client = WebClient(token=BOT_TOKEN, base_url=served.fake.api_url)
    history = client.conversations_history(channel="D0NAMED", oldest="1700000000.000400",
                                           include_all_metadata=True, limit=15)
    [message] = history["messages"]
    assert (message["bot_id"], message["metadata"]) == (BOT_ID, metadata)
    assert "metadata" not in client.conversations_history(channel="D0NAMED")["messages"][0]
    assert client.conversations_history(channel="D0NAMED", oldest=message["ts"])[
        "messages"] == []


@pytest.mark.parametrize("where", ["dm", "dm-thread", "dm-buried"])
def test_a_taken_over_event_whose_answer_is_in_slack_is_not_answered_again(
        served: Served, where: str) -> None:
    channel = "D0POSTED"
    thread = {"thread_ts": "1700000000.000100"} if where == "dm-thread" else {}
    if thread:
        served.fake.add_message(channel, user="U0ALICE", text="hello",
                                ts="1700000000.000100")
    body = dm_body("Ev0POSTED", channel, "1700000000.000600", **thread)
    answered_then_orphaned(served, body)
    if where == "dm-buried":  # the user went on writing: the answer is on the second page
        for n in range(20):
            served.fake.add_message(channel, user="U0ALICE", text=f"and another thing {n}")

    served.ready_to_sweep()
    assert served.runtime.deliveries.tick(served.replay) == ["Ev0POSTED"]
    served.sentinel()
    assert len(posts_in(served.fake, channel)) == 1  # the dead worker's, not another
    row = claim_row(served.store, "Ev0POSTED")
    assert (row.owner, row.takeovers, row.body) == (served.runtime.deliveries.worker_id, 1,
                                                    None)
    assert row.answered_at is not None
    method = "conversations.replies" if thread else "conversations.history"
    lookups = served.fake.calls_to(method)
    assert len(lookups) == (2 if where == "dm-buried" else 1)
    assert lookups[0].params["channel"] == channel
    assert lookups[0].params["oldest"] == "1700000000.000600"
    assert lookups[0].params["include_all_metadata"] in ("1", "true")
    if thread:
        assert lookups[0].params["ts"] == "1700000000.000100"


@pytest.mark.parametrize("history_scope", [False, True], ids=["manifest", "channels-history"])
def test_a_taken_over_mention_is_looked_up_only_where_the_bot_may_read(
        served: Served, history_scope: bool) -> None:
    # The manifest asks for no channel history (it would let the bot read whole channels):
    # Slack refuses the lookup, and the mention is answered again, at least once.
    # A workspace that grants channels:history gets at most once for mentions too.
    if history_scope:
        served.fake.scopes.add("channels:history")
    body = mention_body("Ev0MENTION", "C0GENERAL", "1700000000.000700")
    answered_then_orphaned(served, body)
    served.ready_to_sweep()
    assert served.runtime.deliveries.tick(served.replay) == ["Ev0MENTION"]
    served.sentinel()
    [lookup] = served.fake.calls_to("conversations.replies")
    assert (lookup.params["channel"], lookup.params["ts"]) == ("C0GENERAL", "1700000000.000700")
    answers = posts_in(served.fake, "C0GENERAL")
    assert len(answers) == (1 if history_scope else 2)
    assert {a.params["thread_ts"] for a in answers} == {"1700000000.000700"}
    assert claim_row(served.store, "Ev0MENTION").answered_at is not None


def test_a_dead_workers_event_is_answered_here_once(served: Served) -> None:
    body = dm_body("Ev0ORPHAN", "D0ORPHAN", "1700000000.000500")
    # In the DM already: the question before, an answer to an earlier question, and an
    # answer to another event: none of them answers this one.
    served.fake.add_message("D0ORPHAN", user="U0ALICE", text="hi", ts="1700000000.000300")
    served.fake.add_message("D0ORPHAN", bot_id=BOT_ID, user=BOT_USER_ID, text="earlier",
                            ts="1700000000.000400", metadata={
                                "event_type": ANSWER_EVENT_TYPE,
                                "event_payload": {"event_id": "Ev0EARLIER"}})
    served.fake.add_message("D0ORPHAN", bot_id=BOT_ID, user=BOT_USER_ID, text="other",
                            metadata={"event_type": ANSWER_EVENT_TYPE,
                                      "event_payload": {"event_id": "Ev0SOMETHINGELSE"}})
    orphan(served.store, body)
    served.ready_to_sweep()
    assert served.runtime.deliveries.tick(served.replay) == ["Ev0ORPHAN"]
    [answer] = served.fake.wait_for("chat.postMessage",
                                    lambda c: c.params.get("channel") == "D0ORPHAN")
    assert "Standard laptop" in answer.params["text"]
    assert "Standard laptop" in all_text(answer.params["blocks"])
    assert answer.params["metadata"]["event_payload"] == {"event_id": "Ev0ORPHAN"}
    [lookup] = served.fake.calls_to("conversations.history")
    assert lookup.params["oldest"] == "1700000000.000500"

    # Slack's own redelivery of it (had the dead worker not acked) is a duplicate now.
    again = served.slack.event(body["event"], event_id="Ev0ORPHAN", retry_num=1)
    assert (again.status, again.headers.get(DUPLICATE_HEADER.lower())) == (200, "Ev0ORPHAN")
    assert served.runtime.deliveries.tick(served.replay) == []
    served.sentinel()
    assert len(served.fake.calls_to("chat.postMessage", ok_only=False)) == 2  # + sentinel
    assert len(served.fake.calls_to("conversations.history")) == 1
    row = claim_row(served.store, "Ev0ORPHAN")
    assert (row.owner, row.takeovers, row.body) == (served.runtime.deliveries.worker_id, 1,
                                                    None)
    assert row.answered_at is not None


def test_every_listener_outcome_marks_its_event_finished(served: Served) -> None:
    slack = served.slack
    sent = {
        "Ev0ANSWERED": {"type": "message", "channel_type": "im", "channel": "D0ASK",
                        "user": "U0ALICE", "text": ANSWER_LAPTOP, "ts": "1700000000.000601"},
        "Ev0OTHERBOT": {"type": "message", "channel_type": "im", "channel": "D0ASK",
                        "user": "U0OTHERBOT", "bot_id": "B0OTHER", "text": "hello",
                        "ts": "1700000000.000602"},
        "Ev0EDIT": {"type": "message", "subtype": "message_changed", "channel": "D0ASK",
                    "channel_type": "im", "ts": "1700000000.000603",
                    "message": {"user": "U0ALICE", "text": "x", "ts": "1700000000.000601"}},
        "Ev0UNKNOWN": {"type": "reaction_added", "user": "U0ALICE", "reaction": "tada",
                       "item": {"type": "message", "channel": "D0ASK",
                                "ts": "1700000000.000601"}},
        # Bolt drops the bot's own messages before any middleware of ours: never claimed.
        "Ev0SELF": {"type": "message", "channel_type": "im", "channel": "D0ASK",
                    "user": BOT_USER_ID, "text": "an answer", "ts": "1700000000.000604"},
    }
    for event_id, event in sent.items():
        assert slack.event(event, event_id=event_id).status == 200
    served.sentinel()
    for event_id in ("Ev0ANSWERED", "Ev0OTHERBOT", "Ev0EDIT", "Ev0UNKNOWN"):
        row = claim_row(served.store, event_id)
        assert row.owner == served.runtime.deliveries.worker_id, event_id
        assert row.answered_at is not None and row.body is None, event_id
    assert claim_row(served.store, "Ev0SELF") is None
    assert [c.params["channel"] for c in served.fake.calls_to("chat.postMessage")] == [
        "D0ASK", "D0SENTINEL"]


def test_with_the_database_down_events_are_answered_and_marked_later(
        fake_slack: FakeSlackAPI, catalogue_dir: Path, tmp_path: Path) -> None:
    # Nothing listens on port 1: every connection is refused at once.
    env = slack_env(fake_slack, catalogue_dir, tmp_path / "data")
    env["DATABASE_URL"] = "postgresql://concierge@127.0.0.1:1/concierge"
    config = SlackConfig.from_env(env)
    store = Store(config.database_url, migrate=False)
    runtime = build_runtime(config, make_client(config), store=store)
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="listener")
    app = create_app(config, runtime=runtime, listener_executor=executor)
    try:
        with serving(app, config) as url:
            slack = SlackSender(url, fake_slack)
            for n in range(2):
                assert slack.dm(ANSWER_LAPTOP, channel=f"D0DOWN{n}").status == 200
            fake_slack.wait_for("chat.postMessage",
                                lambda c: c.params.get("channel") == "D0DOWN1")
            executor.shutdown(wait=True)  # both listeners, and their completion hooks, are done
            assert runtime.deliveries.pending_marks == 2
            assert runtime.deliveries.tick(replay_into(app)) == []
    finally:
        store.close()


# --- two processes: a worker killed between its ack and its reply ---------------------------


@pytest.fixture
def two_hosts(db_url: str, fake_slack: FakeSlackAPI, catalogue_dir: Path,
              tmp_path: Path) -> Iterator[tuple[Host, Host]]:
    with serve_hosts(fake_slack, catalogue_dir, tmp_path, ("a", "b"), DATABASE_URL=db_url,
                     CONCIERGE_TAKEOVER_AFTER="2") as (a, b):
        yield a, b


def eventually(check: Callable[[], Any], what: str) -> Any:
    """Poll `check` until it returns something truthy; fail after WAIT_SECONDS."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {WAIT_SECONDS}s")
        time.sleep(0.05)


@pytest.mark.parametrize("posted", [False, True], ids=["before-posting", "after-posting"])
def test_a_worker_killed_between_ack_and_reply_is_answered_by_another_once(
        two_hosts: tuple[Host, Host], fake_slack: FakeSlackAPI, db_url: str,
        posted: bool) -> None:
    a, b = two_hosts
    # Held before the answer reaches Slack, or after Slack posted it (the worker then dies
    # waiting for the response, before it can record the event as answered).
    held = fake_slack.hold("chat.postMessage", "D0KILLED", carried_out=posted)
    event = {"type": "message", "channel_type": "im", "channel": "D0KILLED", "user": "U0ALICE",
             "text": ANSWER_LAPTOP, "ts": "1700000000.000700"}
    reply = a.slack.event(event, event_id="Ev0KILLED")
    assert reply.status == 200 and DUPLICATE_HEADER.lower() not in reply.headers
    # Acknowledged; the answer is at the Web API, which holds the response.
    assert held.arrived.wait(WAIT_SECONDS), a.log.read_text()

    engine = create_engine(db_url)
    try:
        def claim() -> Any:
            with engine.connect() as conn:
                return conn.execute(select(ProcessedEvent).where(
                    ProcessedEvent.event_id == "Ev0KILLED")).one()

        owner = claim().owner
        pid = int(owner.rsplit(":", 2)[1])
        children = Path(f"/proc/{a.process.pid}/task/{a.process.pid}/children").read_text()
        assert str(pid) in children.split()  # host a's gunicorn worker, as sent
        os.kill(pid, signal.SIGKILL)
        held.release.set()  # the dead worker's request goes unanswered

        answered = eventually(lambda: (row := claim()).answered_at is not None and row,
                              "the taken-over event marked answered")
        assert answered.owner != owner and answered.takeovers == 1 and answered.body is None
        # Either way one answer, with the metadata the survivor looked for; answered events
        # are never taken over again, so this stays the only one.
        [answer] = fake_slack.calls_to("chat.postMessage", ok_only=False)
        assert answer.params["channel"] == "D0KILLED"
        assert "Standard laptop" in answer.params["text"]
        assert answer.params["metadata"]["event_payload"] == {"event_id": "Ev0KILLED"}
        [message] = fake_slack.messages_in("D0KILLED")
        assert message["metadata"] == answer.params["metadata"]
    finally:
        engine.dispose()
    logs = a.log.read_text() + b.log.read_text()
    assert f"taking over event Ev0KILLED from silent worker {owner}" in logs
    assert (f"the answer of worker {owner} is already in Slack" in logs) is posted
    assert len(fake_slack.calls_to("conversations.history")) == 1
