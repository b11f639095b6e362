"""Claimed, not yet answered: an event whose worker died after acknowledging it is still answered.

Concierge acknowledges an event before answering it (Bolt's `process_before_response=False`:
the answer runs in a listener thread after the HTTP response), and Slack never redelivers
an acknowledged event. A worker killed between the two would lose the question, so the
claim that deduplicates events also records who answers it and what it was:

    ack path (dedupe middleware)    claim: INSERT event_id, the event as JSON, owner = this
                                    worker (host:pid:nonce), answered_at NULL
    a listener finished with it     mark: answered_at = now, body = NULL  (only if still ours)
    every beat (its own thread)     heartbeat; retry marks that failed; drop the stored event
                                    of claims too old to answer; then sweep:
        unanswered claims younger than MAX_AGE whose owner has not beaten for STALE_AFTER
          ──▶ UPDATE … SET owner = me WHERE event_id = ? AND owner = <old owner>
              (rowcount 1: this worker won it; any other sweeper gets 0)
          ──▶ replay the event through the same Bolt app, which lets it past dedupe once

Why these rules:
- Liveness is a heartbeat, not the age of a claim: a live worker waiting out rate limits or
  a slow Web API is slow, not dead, and must not be answered for.
- The takeover UPDATE names the old owner and the database serialises UPDATEs of one row,
  so among workers sweeping at once (on SQLite or PostgreSQL) exactly one wins an event.
  Its `claimed_at` is kept, so age counts from the first delivery.
- A worker sweeps only once its own heartbeats have succeeded for STALE_AFTER in a row.
  After a database outage every live worker has then had time to beat again before anyone
  may judge it dead; otherwise the first worker back would take over everybody's claims.
- Heartbeats run on their own thread, not the reload poller's: reloading a large catalogue
  takes seconds and would make a live worker look dead. They bypass `BestEffort`'s 30 s
  back-off for the same reason; the thread answers nobody, so a slow database costs nothing.
- MAX_AGE (5 minutes): an answer hours late, say after a deploy, is worse than none.
- MAX_TAKEOVERS: an event that kills whoever answers it must not take down every worker.
- A claim younger than STALE_AFTER is never taken over, even if its owner has no heartbeat
  row yet: the claim itself showed the owner alive.
- The stored event names the Slack user, which Concierge otherwise never keeps: it is
  dropped when the event is answered and at the latest after MAX_AGE, and the request's
  verification token is never stored.
- Best effort stays best effort: the claim and the mark go through `BestEffort`, so a
  database that is down costs one warning and never raises into Slack's ack path. Marks
  that could not be written are kept in memory and retried every beat.

What this does not cover:
- Duplicate window: an answer whose `chat.postMessage` had reached Slack when its worker
  died, but whose mark was not yet committed, is sent again by the worker that takes over.
  Slack posts a message it received even if the sender dies waiting for the response, so
  the window is the Web API call plus one single-row UPDATE: milliseconds normally, but as
  long as a slow Web API or a stalled worker makes it, and as long as a mark waits in
  memory for a database that is down. Closing it needs Slack to say whether the answer was
  posted (e.g. the event id in message metadata, looked up before replaying).
- A worker cut off from the database for longer than STALE_AFTER while the others still
  reach it keeps answering, and its unanswered claims are answered by another as well.
- Events arriving while the database is down are not claimed at all (answered, as before,
  but neither deduplicated nor recoverable).
- Several hosts on one PostgreSQL compare their own clocks: they must agree to well within
  STALE_AFTER (NTP does).
No Slack imports: replaying an event is a callable handed in by the composition root.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from bot.recorder import BestEffort
from bot.store import PendingClaim, Store
from bot.tables import utcnow

log = logging.getLogger("concierge.takeover")

DEFAULT_TAKEOVER_AFTER = 20
"""Seconds a worker's heartbeat may be silent before its unanswered events are taken over."""
BEATS_PER_TAKEOVER = 4
# A heartbeat every STALE_AFTER / 4: a worker must miss three in a row (a busy database
# may fail one) before it counts as dead.
MAX_AGE = timedelta(minutes=5)
MAX_TAKEOVERS = 2
SWEEP_BATCH = 100
# During a long outage the marks waiting for the database pile up; past this many the
# oldest are dropped (each then risks one duplicate, only if its worker dies too).
MAX_PENDING_MARKS = 10_000
HOST_CHARS = 100

Replay = Callable[[str, dict[str, Any]], None]
"""Hands a taken-over event (its id and body) to the listeners, as a new delivery would."""


def new_worker_id() -> str:
    """host:pid:nonce, made once per worker process (after gunicorn forks). The nonce keeps
    a restarted container, which may get the same host name and pid, from inheriting the
    dead process's identity and, with it, a fresh heartbeat for the dead one's claims."""
    return f"{socket.gethostname()[:HOST_CHARS]}:{os.getpid()}:{secrets.token_hex(4)}"


def event_id_of(body: Mapping[str, Any]) -> str | None:
    """The Events API id of an event callback; None for anything else."""
    event_id = body.get("event_id") if body.get("type") == "event_callback" else None
    return event_id if isinstance(event_id, str) and event_id else None


@dataclass(frozen=True, slots=True)
class TakeoverSettings:
    """How quickly a dead worker's events are taken over, and which ones."""

    stale_after: float = float(DEFAULT_TAKEOVER_AFTER)
    """Seconds without a heartbeat after which a worker counts as dead."""
    max_age: timedelta = MAX_AGE
    max_takeovers: int = MAX_TAKEOVERS
    batch: int = SWEEP_BATCH

    @property
    def beat_every(self) -> float:
        return self.stale_after / BEATS_PER_TAKEOVER


class Deliveries:
    """One worker's part in "claimed, not yet answered": claims, marks, heartbeat, sweep.

    `claim` runs in Slack's ack path and `finished` in listener threads, both through
    `BestEffort`; `beat` and `tick` run on the takeover thread. Thread-safe.
    """

    def __init__(self, guard: BestEffort, settings: TakeoverSettings | None = None, *,
                 worker_id: str | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.guard = guard
        self.settings = settings or TakeoverSettings()
        self.worker_id = worker_id or new_worker_id()
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: dict[str, None] = {}  # insertion-ordered: oldest dropped first
        self._healthy_since: float | None = None
        self._beat_failing = False
        self._dropping = False  # marks being forgotten: warned once until they fit again

    @property
    def store(self) -> Store:
        return self.guard.store

    @property
    def pending_marks(self) -> int:
        """Marks waiting for the database."""
        with self._lock:
            return len(self._pending)

    # --- the ack path and the listeners -----------------------------------------------

    def claim(self, event_id: str, body: Mapping[str, Any]) -> bool:
        """True when this delivery is the first (or the database cannot tell): answer it."""
        # The legacy verification token is a secret the replay does not need.
        stored = json.dumps({k: v for k, v in body.items() if k != "token"},
                            separators=(",", ":"), ensure_ascii=False)
        return self.guard.run("claiming an event", lambda: self.store.claim_event(
            event_id, body=stored, owner=self.worker_id), True)

    def finished(self, event_id: str) -> None:
        """A listener is done with the event, whether it replied, ignored it or failed."""
        marked = self.guard.run("marking an event answered",
                                lambda: self.store.mark_answered(event_id, self.worker_id),
                                None)
        if marked is None:
            self._keep(event_id)
        elif not marked:
            # Claimed while the database was down (no row), or taken over by another worker
            # that judged this one dead: then the event may have been answered twice.
            log.info("event %s finished but not claimed by this worker (%s)", event_id,
                     self.worker_id)

    def _keep(self, event_id: str) -> None:
        with self._lock:
            self._pending[event_id] = None
            if len(self._pending) <= MAX_PENDING_MARKS:
                return
            del self._pending[next(iter(self._pending))]
            warn, self._dropping = not self._dropping, True
        if warn:
            log.warning("over %d answered events wait for the database; forgetting the "
                        "oldest (each is answered again if its worker dies within %s)",
                        MAX_PENDING_MARKS, self.settings.max_age)

    # --- the takeover thread ------------------------------------------------------------

    def beat(self) -> bool:
        """Write this worker's heartbeat; False when the database did not take it."""
        try:
            self.store.heartbeat(self.worker_id)
        except SQLAlchemyError as exc:
            self._healthy_since = None
            if not self._beat_failing:
                self._beat_failing = True
                log.warning("heartbeat of worker %s failed (%s); it takes over nothing "
                            "until the database is back", self.worker_id,
                            str(exc).strip().splitlines()[0] if str(exc).strip() else exc)
            return False
        if self._healthy_since is None:
            self._healthy_since = self._clock()
        if self._beat_failing:
            self._beat_failing = False
            log.info("heartbeat of worker %s written again", self.worker_id)
        return True

    def tick(self, replay: Replay) -> list[str]:
        """One beat: heartbeat, pending marks, expiry, then (when allowed) the sweep.
        Returns the ids of the events this worker took over and replayed."""
        if not self.beat():
            return []
        try:
            self._flush_marks()
            expired = self.store.expire_claims(self.settings.max_age)
            if expired:
                log.warning("%d claimed events had no recorded answer after %s; too late "
                            "to take over, their stored events were deleted", expired,
                            self.settings.max_age)
            if not self.may_sweep:
                return []
            return self._sweep(replay)
        except SQLAlchemyError as exc:
            log.info("takeover sweep interrupted by the database (%s)", type(exc).__name__)
            return []

    @property
    def may_sweep(self) -> bool:
        """Whether this worker's own heartbeats have held for `stale_after` in a row."""
        since = self._healthy_since
        return since is not None and self._clock() - since >= self.settings.stale_after

    def _flush_marks(self) -> None:
        with self._lock:
            waiting = list(self._pending)
        for event_id in waiting:
            self.store.mark_answered(event_id, self.worker_id)  # raises: keep the rest
            with self._lock:
                self._pending.pop(event_id, None)
                if not self._pending:
                    self._dropping = False

    def _sweep(self, replay: Replay) -> list[str]:
        settings = self.settings
        candidates = self.store.stale_claims(
            self.worker_id, stale_after=timedelta(seconds=settings.stale_after),
            max_age=settings.max_age, max_takeovers=settings.max_takeovers,
            limit=settings.batch)
        taken: list[str] = []
        for claim in candidates:
            if not self.store.take_over(claim.event_id, from_owner=claim.owner,
                                        to_owner=self.worker_id):
                continue  # another worker won it, or the owner answered after all
            taken.append(claim.event_id)
            self._replay(claim, replay)
        return taken

    def _replay(self, claim: PendingClaim, replay: Replay) -> None:
        age = (utcnow() - claim.claimed_at).total_seconds()
        log.warning("taking over event %s from silent worker %s (claimed %.0f s ago)",
                    claim.event_id, claim.owner, age)
        try:
            body = json.loads(claim.body)
            if not isinstance(body, dict):
                raise TypeError(f"stored event is a {type(body).__name__}, not an object")
            replay(claim.event_id, body)
        except Exception:
            # Nothing will answer it now; marking it keeps the next sweep from trying again.
            log.exception("could not replay event %s", claim.event_id)
            self.finished(claim.event_id)
