"""A worker killed after a request was stored and before it was delivered: another worker
delivers it, once. Two `concierge serve` hosts on one database (a SQLite file or
PostgreSQL), as two hosts would run them; the fake Web API and the receiving tool hold the
first host's deliveries (the channel message, the requester's DM and the webhook POST), the
test SIGKILLs that worker while they wait, and the survivors deliver each of them once."""

from __future__ import annotations

import os
import signal
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dbfixtures import db_url, postgres_url, sqlite_url
from slackfakes import WAIT_SECONDS, FakeSlackAPI, all_text, buttons
from sqlalchemy import create_engine, select
from test_requests_http import CATALOGUE, GOOD, filled
from test_serve_process import Host, serve_hosts
from test_takeover_http import eventually
from webhookfake import WEBHOOK_SECRET, FakeWebhook

from bot.store.tables import OutboxItem

__all__ = ["db_url", "postgres_url", "sqlite_url"]


@pytest.fixture
def two_hosts(db_url: str, fake_slack: FakeSlackAPI, webhook: FakeWebhook,
              tmp_path: Path) -> Iterator[tuple[Host, Host]]:
    knowledge = tmp_path / "knowledge"
    knowledge.mkdir()
    (knowledge / "catalogue.yaml").write_text(textwrap.dedent(CATALOGUE), encoding="utf-8")
    with serve_hosts(fake_slack, knowledge, tmp_path, ("a", "b"), DATABASE_URL=db_url,
                     CONCIERGE_TAKEOVER_AFTER="2",
                     CONCIERGE_WEBHOOK_SERVICEDESK_URL=webhook.url,
                     CONCIERGE_WEBHOOK_SERVICEDESK_SECRET=WEBHOOK_SECRET) as hosts:
        yield hosts[0], hosts[1]


def form_through(host: Host, fake: FakeSlackAPI) -> dict[str, Any]:
    """Ask host's worker about a laptop, press Request: the form it opens."""
    assert host.slack.dm("I need a new laptop", channel="D0KILL").status == 200
    [card] = fake.wait_for("chat.postMessage", lambda c: c.params.get("channel") == "D0KILL")
    [button] = [b for b in buttons(card.params["blocks"])
                if b["action_id"].startswith("open_request_form:")]
    message = {"ts": "1700000001.000100", "blocks": card.params["blocks"]}
    assert host.slack.click(button["action_id"], button["value"], message=message,
                            channel="D0KILL").status == 200
    [opened] = fake.wait_for("views.open")
    view: dict[str, Any] = opened.params["view"]
    return view


def test_a_worker_killed_before_delivering_a_stored_request_is_replaced_by_another(
        two_hosts: tuple[Host, Host], fake_slack: FakeSlackAPI, webhook: FakeWebhook,
        db_url: str) -> None:
    a, b = two_hosts
    view = form_through(a, fake_slack)
    # Every delivery of host a waits at its receiver, which never answers it: none got
    # through when the worker dies.
    channel = fake_slack.hold("chat.postMessage", "C0REQUESTS")
    receipt = fake_slack.hold("chat.postMessage", "U0ALICE")
    post = webhook.hold_next()
    reply = a.slack.submit_view(filled(view, GOOD))
    assert reply.status == 200 and reply.json()["response_action"] == "update"
    assert "Request #1" in all_text(reply.json()["view"]["blocks"])
    for held in (channel, receipt, post):
        assert held.arrived.wait(WAIT_SECONDS), a.log.read_text()

    engine = create_engine(db_url)
    try:
        def items() -> list[Any]:
            with engine.connect() as conn:
                return list(conn.execute(select(OutboxItem).order_by(OutboxItem.id)))

        [leaser] = {i.lease_owner for i in items()}
        pid = int(leaser.rsplit(":", 2)[1])
        children = Path(f"/proc/{a.process.pid}/task/{a.process.pid}/children").read_text()
        assert str(pid) in children.split()  # host a's gunicorn worker
        os.kill(pid, signal.SIGKILL)
        for held in (channel, receipt):
            held.release.set()
        post.release.set()

        done = eventually(lambda: (rows := items()) and all(
            r.state == "delivered" for r in rows) and rows, "every item delivered")
        assert {r.purpose for r in done} == {"request", "receipt"} and len(done) == 3
        assert all(r.attempts == 1 for r in done)  # the killed worker's attempts never counted
    finally:
        engine.dispose()

    posted = [c.params["channel"] for c in fake_slack.calls_to("chat.postMessage")
              if c.params["channel"] != "D0KILL"]
    assert sorted(posted) == ["C0REQUESTS", "U0ALICE"]  # the held ones were never posted
    assert len(fake_slack.messages_in("C0REQUESTS")) == 1
    posts = webhook.posts()
    assert [p.status for p in posts] == [None, 200]  # the first held, never answered
    assert posts[0].key == posts[1].key and all(p.verified for p in posts)
    logs = a.log.read_text() + b.log.read_text()
    assert "request #1: request webhook servicedesk delivered" in logs
