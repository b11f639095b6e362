"""The delivery loop on a SQLite file and on PostgreSQL, with a real receiving tool on
127.0.0.1: requests stored by the intake are delivered once (the same idempotency key on
every attempt), passing failures wait and are tried again, lasting ones and those past the
give-up time are reported to the requester and the admins, a dead worker's deliveries are
taken over, and a database that is down loses nothing. The Slack side here is a recording
callable; the real one is tested over HTTP in tests/slack/test_requests_http.py."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from dbfixtures import db_url, postgres_url, sqlite_url
from webhookfake import WEBHOOK_SECRET, FakeWebhook

from bot.catalogue.loader import load_catalog
from bot.catalogue.models import Catalog, KnownWebhooks
from bot.errors import StoreUnavailable
from bot.outbox.courier import Courier, CourierSettings
from bot.outbox.forms import check_answers
from bot.outbox.intake import Intake, Requester, Status
from bot.outbox.outcome import Outcome, Verdict
from bot.outbox.webhooks import Webhook, Webhooks
from bot.store.database import Store
from bot.store.recorder import BestEffort
from bot.store.requests import Parcel, Submitted
from bot.store.tables import utcnow

__all__ = ["db_url", "postgres_url", "sqlite_url"]

CATALOGUE = """\
offerings:
  - id: laptop
    name: Standard laptop
    summary: A laptop.
    kind: product
    owner: {team: Workplace, contact: U0OWNER1}
    cost: €1,150 one-off
    service_level: 5 business days
    request:
      form:
        - {label: Which model?, type: choice, options: [T14, MacBook Air], required: true}
        - {label: For whom, type: user}
      deliver_to: {channel: C0REQUESTS, owner: true, webhook: servicedesk}
    needs: [I need a laptop]
"""
ALICE = Requester("U0ALICE", "alice", "T0TEAM")


class Clock:
    """Real time moved forward by the test: rows the store writes at the real time are
    never in this clock's future."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return utcnow() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)

    def set(self, when: datetime) -> None:
        self.offset = max(self.offset, when - utcnow())


@dataclass
class SlackRecorder:
    """The Slack side of the courier: records each parcel, answers from a script."""

    sent: list[Parcel] = field(default_factory=list)
    script: list[Outcome] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, parcel: Parcel) -> Outcome:
        with self.lock:
            self.sent.append(parcel)
            if self.script:
                return self.script.pop(0)
        return Outcome.delivered(channel=f"D{parcel.item.target}", ts=f"{parcel.item.id}.0")

    def purposes(self) -> list[tuple[str, str]]:
        return [(p.item.purpose, p.item.target) for p in self.sent]


@dataclass
class Setup:
    intake: Intake
    courier: Courier
    slack: SlackRecorder
    receiver: FakeWebhook
    clock: Clock
    catalog: Catalog

    def submit(self, key: str = "V0VIEW1", **answers: str) -> Submitted:
        offering = self.catalog["laptop"]
        checked = check_answers(offering.request.form, {"which-model": "T14"} | answers)
        assert checked.ok
        return self.intake.submit(offering, checked.answers, ALICE, submission_key=key)

    def courier_as(self, worker: str) -> Courier:
        return Courier(self.intake.guard, self.slack, self.courier.webhooks,
                       self.courier.settings, worker_id=worker, now=self.clock,
                       jitter=lambda: 0.5)


@pytest.fixture
def setup(db_url: str, kdir: Path) -> Iterator[Setup]:
    (kdir / "catalogue.yaml").write_text(CATALOGUE, encoding="utf-8")
    receiver = FakeWebhook().start()
    webhooks = Webhooks({"servicedesk": Webhook("servicedesk", receiver.url, WEBHOOK_SECRET)})
    catalog = load_catalog(kdir, webhooks=webhooks.known())
    store = Store(db_url)
    guard = BestEffort(store)
    clock = Clock()
    slack = SlackRecorder()
    courier = Courier(guard, slack, webhooks,
                      CourierSettings(admins=("U0ADMIN1", "U0ADMIN2"),
                                      give_up=timedelta(hours=1)),
                      worker_id="w1", now=clock, jitter=lambda: 0.5)
    woken: list[bool] = []
    intake = Intake(guard, wake=lambda: woken.append(True))
    yield Setup(intake, courier, slack, receiver, clock, catalog)
    receiver.stop()
    store.close()


def states(setup: Setup, request_id: int) -> list[tuple[str, str, str, int]]:
    found = setup.intake.find(request_id)
    assert found is not None
    return [(i.purpose, i.target, i.state, i.attempts) for i in found.items]


def test_a_request_goes_everywhere_it_should_once(setup: Setup) -> None:
    request = setup.submit(**{"for-whom": "U0BOB"}).request
    attempts = setup.courier.tick()
    assert sorted(a.verdict for a in attempts) == [Verdict.DELIVERED] * 4
    assert sorted(setup.slack.purposes()) == [("receipt", "U0ALICE"), ("request", "C0REQUESTS"),
                                              ("request", "U0OWNER1")]
    [post] = setup.receiver.posts()
    assert post.verified
    body = post.json()
    assert (body["request_id"], body["offering"], body["requester"]) == (
        request.id, {"id": "laptop", "name": "Standard laptop", "owner_team": "Workplace",
                     "cost": "€1,150 one-off", "service_level": "5 business days"},
        {"slack_id": "U0ALICE", "name": "alice", "team_id": "T0TEAM"})
    assert [(a["id"], a["value"]) for a in body["answers"]] == [("which-model", "T14"),
                                                                ("for-whom", "U0BOB")]
    assert states(setup, request.id) == [
        ("request", "C0REQUESTS", "delivered", 1), ("request", "U0OWNER1", "delivered", 1),
        ("request", "servicedesk", "delivered", 1), ("receipt", "U0ALICE", "delivered", 1)]
    assert setup.courier.tick() == []  # nothing twice


def test_a_webhook_that_fails_then_recovers_gets_the_request_once_with_one_key(
        setup: Setup) -> None:
    setup.receiver.answer_with(500)
    request = setup.submit().request
    setup.courier.tick()
    [first] = setup.receiver.posts()
    assert first.status == 500
    assert ("request", "servicedesk", "pending", 1) in states(setup, request.id)
    assert setup.courier.tick() == []  # not due yet: 2 s of backoff
    setup.clock.advance(2.1)
    [again] = setup.courier.tick()
    assert (again.kind, again.verdict) == ("webhook", Verdict.DELIVERED)
    posts = setup.receiver.posts()
    assert [p.status for p in posts] == [500, 200]
    assert posts[0].key == posts[1].key and all(p.verified for p in posts)
    assert posts[1].headers["x-concierge-delivery-attempt"] == "2"
    setup.clock.advance(3600)
    assert setup.courier.tick() == [] and len(setup.receiver.posts()) == 2


def test_backoff_doubles_and_retry_after_is_waited_out(setup: Setup) -> None:
    setup.receiver.answer_with(503, 503, 503)
    setup.submit()
    waits = []
    for _ in range(3):
        before = setup.clock()
        setup.courier.tick()
        found = setup.intake.find(1)
        assert found is not None
        item = next(i for i in found.items if i.kind == "webhook")
        waits.append((item.next_attempt_at - before).total_seconds())
        setup.clock.set(item.next_attempt_at)
    assert waits == [pytest.approx(w, abs=0.5) for w in (2.0, 4.0, 8.0)]
    setup.receiver.answer_with(429, retry_after="120")
    before = setup.clock()
    setup.courier.tick()
    found = setup.intake.find(1)
    assert found is not None
    item = next(i for i in found.items if i.kind == "webhook")
    assert (item.next_attempt_at - before).total_seconds() == pytest.approx(120, abs=0.5)
    assert item.last_error == "HTTP 429"


def test_a_lasting_failure_is_reported_to_the_requester_and_the_admins(setup: Setup) -> None:
    setup.receiver.answer_with(410)
    request = setup.submit().request
    setup.courier.tick()
    assert ("request", "servicedesk", "failed", 1) in states(setup, request.id)
    reports = setup.courier.tick()
    assert sorted((a.kind, a.verdict) for a in reports) == [("notice", Verdict.DELIVERED)] * 3
    told = {(p.item.purpose, p.item.target): p.item.payload for p in setup.slack.sent}
    assert told[("failure", "U0ALICE")] == {"kind": "webhook", "target": "servicedesk",
                                            "error": "HTTP 410"}
    assert told[("alert", "U0ADMIN1")] == told[("alert", "U0ADMIN2")]
    assert setup.courier.tick() == []


def test_past_the_give_up_time_one_last_attempt_then_a_report(setup: Setup) -> None:
    setup.receiver.default_status = 503
    request = setup.submit().request
    while True:
        setup.courier.tick()
        found = setup.intake.find(request.id)
        assert found is not None
        webhook = next(i for i in found.items if i.kind == "webhook")
        if webhook.state != "pending":
            break
        # Never scheduled past the give-up time: the last attempt happens at it.
        assert webhook.next_attempt_at <= webhook.created_at + timedelta(hours=1)
        setup.clock.set(webhook.next_attempt_at)
    assert webhook.state == "failed"
    assert webhook.last_error is not None and webhook.last_error.startswith(
        f"still failing after {webhook.attempts} attempts over 1 h: HTTP 503")
    assert webhook.failed_at is not None
    assert timedelta(0) <= webhook.failed_at - (webhook.created_at + timedelta(hours=1)) < (
        timedelta(seconds=5))
    assert len(setup.receiver.posts()) == webhook.attempts
    assert {p.item.purpose for p in setup.slack.sent} == {"request", "receipt"}
    setup.courier.tick()
    assert [p.item.target for p in setup.slack.sent if p.item.purpose == "failure"] == [
        "U0ALICE"]


def test_a_failed_notice_is_logged_not_reported_again(setup: Setup,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    setup.slack.script = [Outcome.delivered(), Outcome.delivered(),
                          Outcome.failed("cannot_dm_bot")]
    request = setup.submit().request
    setup.courier.tick()
    assert ("receipt", "U0ALICE", "failed", 1) in states(setup, request.id)
    assert "request #1: receipt notice undeliverable (cannot_dm_bot)" in caplog.text
    # Who a notice goes to is a Slack user id: log content, shown only when switched on.
    [record] = [r for r in caplog.records if "undeliverable" in r.getMessage()]
    assert "U0ALICE" not in record.getMessage()
    assert record.concierge_content == {"to": "U0ALICE"}
    setup.courier.tick()
    assert len(setup.slack.sent) == 3


def test_a_dead_workers_deliveries_are_taken_over(setup: Setup) -> None:
    request = setup.submit().request
    # A worker claimed everything and died before delivering (no heartbeat, ever).
    dead = setup.courier_as("dead-worker")
    assert len(dead.book.claim("dead-worker", lease=timedelta(seconds=90),
                               stale_after=timedelta(seconds=20), limit=10,
                               now=setup.clock())) == 4
    assert setup.courier.tick() == []  # its lease is young: it may be alive
    setup.clock.advance(21)
    assert len(setup.courier.tick()) == 4
    assert {s for _, _, s, _ in states(setup, request.id)} == {"delivered"}
    assert len(setup.receiver.accepted()) == 1


def test_two_workers_at_once_deliver_each_item_once(setup: Setup) -> None:
    for n in range(10):
        setup.submit(f"V{n}")
    other = setup.courier_as("w2")
    barrier = threading.Barrier(2)

    def run(courier: Courier) -> None:
        barrier.wait()
        for _ in range(5):
            courier.tick()

    threads = [threading.Thread(target=run, args=(c,)) for c in (setup.courier, other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    keys = [p.key for p in setup.receiver.posts()]
    assert len(keys) == len(set(keys)) == 10
    assert len(setup.slack.sent) == 30 and len({p.item.id for p in setup.slack.sent}) == 30


def test_a_status_change_is_stored_with_its_notice_and_only_once(setup: Setup) -> None:
    request = setup.submit().request
    taken = setup.intake.change_status(request.id, Status.TAKEN, by="U0OWNER1")
    assert taken is not None and taken.changed and taken.request.status == "taken"
    again = setup.intake.change_status(request.id, Status.TAKEN, by="U0OTHER")
    assert again is not None and not again.changed and again.request.status_by == "U0OWNER1"
    declined = setup.intake.change_status(request.id, Status.DECLINED, by="U0OWNER1",
                                          reason="  out of stock  ")
    assert declined is not None and declined.request.status_reason == "out of stock"
    assert setup.intake.change_status(request.id, Status.DONE, by="U0OWNER1") is not None
    assert setup.intake.change_status(404, Status.DONE, by="U0OWNER1") is None
    setup.courier.tick()
    notices = [p.item.payload for p in setup.slack.sent if p.item.purpose == "status"]
    assert notices == [{"status": "taken", "by": "U0OWNER1", "reason": None},
                       {"status": "declined", "by": "U0OWNER1", "reason": "out of stock"}]


def test_the_same_view_submitted_twice_is_one_request(setup: Setup) -> None:
    first, second = setup.submit("V0SAME"), setup.submit("V0SAME")
    assert (second.created, second.request.id) == (False, first.request.id)
    setup.courier.tick()
    assert len(setup.receiver.posts()) == 1


def test_with_the_database_down_nothing_is_stored_and_the_loop_waits(
        setup: Setup, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    down = BestEffort(Store("postgresql+psycopg://concierge@127.0.0.1:1/none", migrate=False),
                      schema_ready=False)
    intake = Intake(down)
    offering = setup.catalog["laptop"]
    answers = check_answers(offering.request.form, {"which-model": "T14"}).answers
    with pytest.raises(StoreUnavailable):
        intake.submit(offering, answers, ALICE, submission_key="V0DOWN")
    courier = Courier(down, setup.slack, setup.courier.webhooks, worker_id="w3")
    assert courier.tick() == [] and courier.tick() == []
    assert caplog.text.count("delivery loop cannot read the outbox") == 1
    assert setup.slack.sent == [] and setup.receiver.posts() == []
    down.store.close()


def test_a_webhook_no_longer_configured_fails_at_once_and_is_reported(setup: Setup) -> None:
    request = setup.submit().request
    courier = Courier(setup.intake.guard, setup.slack, Webhooks(), setup.courier.settings,
                      worker_id="w9", now=setup.clock)
    courier.tick()
    found = setup.intake.find(request.id)
    assert found is not None
    [webhook] = [i for i in found.items if i.kind == "webhook"]
    assert (webhook.state, webhook.last_error) == (
        "failed", "webhook 'servicedesk' is not configured here "
                  "(CONCIERGE_WEBHOOK_SERVICEDESK_URL)")
    assert setup.receiver.posts() == []


def test_known_webhooks_of_a_courier_match_its_catalogue_check() -> None:
    hooks = Webhooks({"servicedesk": Webhook("servicedesk", "https://x.test/h", WEBHOOK_SECRET)})
    assert hooks.known() == KnownWebhooks(frozenset({"servicedesk"}),
                                          "the webhooks configured with "
                                          "CONCIERGE_WEBHOOK_<NAME>_URL")
