"""Each worker's delivery loop: what the outbox holds is delivered, once, across restarts
and dead workers, or reported as undeliverable; never dropped silently.

    every POLL_EVERY s, or at once when woken (a request or a status change was stored):
      claim due items (`RequestBook.claim`: a lease in the shared database; a dead worker's
      lease is taken once its heartbeat is `stale_after` old)
        ──▶ deliver each: a Slack message or notice (a callable from the composition root)
            or a signed webhook POST (`bot.outbox.webhooks`)
              delivered       mark it (with where a Slack message is, to update it later)
              passing failure try again after a backoff (2 s, 4 s, … at most 10 min, with
                              jitter), or after `Retry-After` when the receiver asks for longer
              lasting failure give up at once
              past GIVE_UP    one last attempt, then give up
        ──▶ giving up on a request's destination stores, in the same transaction, a notice to
            the requester and one to each admin (`CONCIERGE_ADMINS`); giving up on a notice is
            logged as an error (telling someone that a notice failed would need a notice)

Why it delivers at least once, and the receiver sees it once: an item is marked delivered
only after the receiver said so. A worker that dies between the two leaves the item leased;
another worker takes it when the lease runs out or the dead worker's heartbeat falls silent,
and delivers again. A webhook gets the same `Idempotency-Key` on every attempt, so it can
tell; a Slack message has no such key, so a worker killed while Slack was posting it can
leave it posted twice (documented in docs/admins.md).
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError

from bot.logs import content
from bot.outbox import webhooks as webhook_http
from bot.outbox.intake import ALERT, FAILURE, NOTICE, REQUEST, WEBHOOK, RequestDetails
from bot.outbox.outcome import Outcome, Verdict
from bot.outbox.webhooks import Webhooks, request_body
from bot.store.recorder import BestEffort
from bot.store.requests import NewItem, Parcel, RequestBook
from bot.store.tables import utcnow
from bot.store.takeover import DEFAULT_TAKEOVER_AFTER, new_worker_id
from bot.wording import plural

log = logging.getLogger("concierge.requests")

POLL_EVERY = 2.0
LEASE = timedelta(seconds=90)
"""Longer than any one attempt can take (a webhook times out after 10 s, a Slack call after
10 s and one retry): a live worker never loses an item it is still delivering."""
DEFAULT_GIVE_UP = timedelta(hours=4)
FIRST_RETRY = 2.0
MAX_RETRY = 600.0
BATCH = 20
SENDERS = 4
"""Deliveries at once per worker: one slow webhook must not hold up every channel message."""

SlackSend = Callable[[Parcel], Outcome]
"""Posts a `message` item (the request with the owner's buttons) or a `notice` (a direct
message) to Slack, and says how it went."""


@dataclass(frozen=True, slots=True)
class CourierSettings:
    give_up: timedelta = DEFAULT_GIVE_UP
    """How long a delivery is tried before it is reported as undeliverable."""
    stale_after: timedelta = timedelta(seconds=DEFAULT_TAKEOVER_AFTER)
    """A worker silent this long is dead: its leases are taken (`CONCIERGE_TAKEOVER_AFTER`)."""
    lease: timedelta = LEASE
    poll_every: float = POLL_EVERY
    batch: int = BATCH
    first_retry: float = FIRST_RETRY
    max_retry: float = MAX_RETRY
    admins: tuple[str, ...] = ()
    """Slack user ids told about undeliverable requests."""


@dataclass(frozen=True, slots=True)
class Attempt:
    """What the courier did with one item (for tests and the measurements)."""

    item_id: int
    request_id: int
    kind: str
    verdict: Verdict
    detail: str


@dataclass
class Courier:
    """Delivers the outbox: `tick()` once, or `start()` a thread that ticks until `stop()`."""

    guard: BestEffort
    slack: SlackSend
    webhooks: Webhooks = field(default_factory=Webhooks)
    settings: CourierSettings = field(default_factory=CourierSettings)
    worker_id: str = field(default_factory=new_worker_id)
    now: Callable[[], datetime] = utcnow
    jitter: Callable[[], float] = random.random

    def __post_init__(self) -> None:
        self.book = RequestBook(self.guard.store)
        self._woken = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._senders = ThreadPoolExecutor(max_workers=SENDERS,
                                           thread_name_prefix="courier-send")
        self._db_failing = False

    # --- the loop -------------------------------------------------------------------------

    def wake(self) -> None:
        """Deliver now rather than at the next poll (a request was just stored)."""
        self._woken.set()

    def start(self) -> Courier:
        self._thread = threading.Thread(target=self._run, name="concierge-courier",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._woken.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join()
        self._senders.shutdown(wait=True)

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._woken.wait(self.settings.poll_every)
            self._woken.clear()
            if self._stopping.is_set():
                return
            try:
                while len(self.tick()) >= self.settings.batch and not self._stopping.is_set():
                    pass  # a full batch: more may be due
            except Exception:
                log.exception("delivery loop failed; trying again at the next poll")

    def tick(self, request_id: int | None = None) -> list[Attempt]:
        """Claim the due items (only `request_id`'s when given) and deliver them."""
        try:
            parcels = self.book.claim(self.worker_id, lease=self.settings.lease,
                                      stale_after=self.settings.stale_after,
                                      limit=self.settings.batch, request_id=request_id,
                                      now=self.now())
        except SQLAlchemyError as exc:
            if not self._db_failing:
                self._db_failing = True
                log.warning("delivery loop cannot read the outbox (%s); requests already "
                            "stored wait there until the database is back",
                            type(exc).__name__)
            return []
        if self._db_failing:
            self._db_failing = False
            log.info("delivery loop reads the outbox again")
        return list(self._senders.map(self._deliver, parcels))

    # --- one item -------------------------------------------------------------------------

    def _deliver(self, parcel: Parcel) -> Attempt:
        item = parcel.item
        try:
            outcome = self._send(parcel)
        except Exception as exc:  # a bug in a sender must not lose the item
            log.exception("delivering item %d of request #%d failed", item.id, item.request_id)
            outcome = Outcome.retry(f"unexpected error ({type(exc).__name__})")
        try:
            self._settle(parcel, outcome)
        except SQLAlchemyError as exc:
            # The lease runs out and the item is delivered again (a webhook sees the same
            # idempotency key).
            log.warning("could not record the delivery of item %d of request #%d (%s)",
                        item.id, item.request_id, type(exc).__name__)
        return Attempt(item.id, item.request_id, item.kind, outcome.verdict, outcome.detail)

    def _send(self, parcel: Parcel) -> Outcome:
        item = parcel.item
        if item.kind != WEBHOOK:
            return self.slack(parcel)
        webhook = self.webhooks.get(item.target)
        if webhook is None:
            return Outcome.failed(f"webhook {item.target!r} is not configured here "
                                  f"(CONCIERGE_WEBHOOK_{item.target.upper()}_URL)")
        details = RequestDetails.of(parcel.request)
        request = parcel.request
        body = request_body(
            request_id=request.id, idempotency_key=item.idempotency_key,
            submitted_at=request.submitted_at, offering=details.offering_json(),
            requester={"slack_id": request.requester_id, "name": request.requester_name,
                       "team_id": request.team_id},
            answers=list(details.answers))
        return webhook_http.post(webhook, body, item.idempotency_key,
                                 attempt=item.attempts + 1)

    def _settle(self, parcel: Parcel, outcome: Outcome) -> None:
        item, me, now = parcel.item, self.worker_id, self.now()
        where, who = _where(parcel)
        if outcome.verdict is Verdict.DELIVERED:
            if not self.book.delivered(item.id, me, message_channel=outcome.message_channel,
                                       message_ts=outcome.message_ts, at=now):
                log.warning("%s delivered, but another worker had taken it over meanwhile",
                            where, extra=who)
                return
            log.info("%s delivered (attempt %d)", where, item.attempts + 1, extra=who)
            return
        deadline = item.created_at + self.settings.give_up
        if outcome.verdict is Verdict.RETRY and now < deadline:
            delay = self._backoff(item.attempts + 1)
            if outcome.retry_after is not None:
                delay = max(delay, outcome.retry_after)
            until = min(now + timedelta(seconds=delay), deadline)
            self.book.postpone(item.id, me, until=until, error=outcome.detail)
            log.warning("%s: %s; attempt %d failed, next at %s", where, outcome.detail,
                        item.attempts + 1, until.strftime("%H:%M:%S"), extra=who)
            return
        why = outcome.detail
        if outcome.verdict is Verdict.RETRY:
            why = (f"still failing after {plural(item.attempts + 1, 'attempt')} over "
                   f"{_duration(self.settings.give_up)}: {outcome.detail}")
        notices = self._reports(parcel, why) if item.purpose == REQUEST else []
        if self.book.fail(item.id, me, error=why, notices=notices, at=now):
            if item.purpose == REQUEST:
                log.error("%s undeliverable (%s); told the requester and %d admins", where,
                          why, len(notices) - 1, extra=who)
                if len(notices) == 1:
                    log.error("request #%d: no CONCIERGE_ADMINS to tell about it",
                              item.request_id)
            else:
                log.error("%s undeliverable (%s)", where, why, extra=who)

    def _reports(self, parcel: Parcel, why: str) -> list[NewItem]:
        item = parcel.item
        failed = {"kind": item.kind, "target": item.target, "error": why}
        reports = [NewItem(NOTICE, parcel.request.requester_id, FAILURE, failed)]
        reports += [NewItem(NOTICE, admin, ALERT, failed) for admin in self.settings.admins]
        return reports

    def _backoff(self, attempt: int) -> float:
        base = min(self.settings.max_retry, self.settings.first_retry * 2.0 ** (attempt - 1))
        return float(base * (0.8 + 0.4 * self.jitter()))


def _where(parcel: Parcel) -> tuple[str, dict[str, object]]:
    """An item as a log line names it, and the person it goes to as log content: a direct
    message's target is a Slack user id, which logs hold only with CONCIERGE_LOG_CONTENT."""
    item = parcel.item
    if item.kind == NOTICE:
        return (f"request #{item.request_id}: {item.purpose} notice",
                content(to=item.target))
    # Channels, the owner contact and webhook names come from the catalogue: not personal.
    return f"request #{item.request_id}: {item.purpose} {item.kind} {item.target}", {}


def _duration(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"

