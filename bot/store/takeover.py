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
          ──▶ (on a lookup thread) ask Slack whether the dead worker's answer got through:
              every answer carries the event id in its message metadata
                in Slack            mark answered, do not replay
                not there           replay the event through the same Bolt app, which
                cannot tell         lets it past dedupe once
                lookup failed       look again at the next beat; after LOOKUP_ATTEMPTS, replay

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
- The lookup, not the database, decides whether a taken-over event was answered: a worker
  can die after Slack posted its answer and before the mark (the Web API call plus one
  UPDATE, seconds when the Web API is slow, as long as an outage when the mark waits in
  memory). Slack posts a message it received even if the sender dies waiting for the
  response, so only Slack can tell.
- Lookups run on threads of their own, never on the heartbeat thread: they wait on the Web
  API and its rate limits, and a heartbeat waiting behind them would make this worker look
  dead. The claim is this worker's from the takeover on, so nobody else looks meanwhile.
- A failed lookup (429 after the client's own retries, network, a Slack outage) is retried
  at the next beats, then the event is replayed anyway: a question answered twice is
  better than one not answered (the same choice as dedupe with the database down).
  "Cannot tell" (no lookup for that event, or Slack refuses it: a channel mention, whose
  thread the bot has no scope to read) is replayed at once, at least once.

What this does not cover:
- Channel mentions: without channels:history / groups:history / mpim:history (which let
  the bot read whole channels, so the manifest does not ask for them) the lookup cannot
  see the mention's thread, and a dead worker's mention answer that had reached Slack is
  posted again. DMs are looked up with im:history, which the bot has anyway.
- A stalled (not dead) worker that resumes after its events were taken over may post
  after the lookup looked: both answers then stand.
- Slack's rate limit on reading history: since 2025 an app distributed outside the Slack
  Marketplace may call conversations.history/replies once a minute (an app a company
  builds for its own workspace keeps the old, higher limit). There, a dead worker's dozen
  events are looked up over minutes, and those still failing after MAX_AGE are dropped.
- A worker cut off from the database for longer than STALE_AFTER while the others still
  reach it keeps answering, and its unanswered claims are answered by another as well.
- Events arriving while the database is down are not claimed at all (answered, as before,
  but neither deduplicated nor recoverable).
- Several hosts on one PostgreSQL compare their own clocks: they must agree to well within
  STALE_AFTER (NTP does).
No Slack imports: replaying an event and looking up its answer are callables handed in by
the composition root.
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
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from bot.store.database import PendingClaim, Store, storable
from bot.store.recorder import BestEffort
from bot.store.tables import utcnow

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
# Lookups per taken-over event, one a beat, before it is replayed without knowing: the
# client has already waited out 429s and retried connection errors inside each of them.
LOOKUP_ATTEMPTS = 3

Replay = Callable[[str, dict[str, Any]], None]
"""Hands a taken-over event (its id and body) to the listeners, as a new delivery would."""


class InSlack(Enum):
    """Whether the answer to a taken-over event is already in Slack (what a `Lookup` found)."""

    YES = "yes"
    """A message naming the event is where the answer goes: it got through. Not replayed."""
    NO = "no"
    """Looked where the answer goes, and it is not there: replayed."""
    CANNOT_TELL = "cannot tell"
    """Nowhere to look, or Slack will not show it (a channel thread without the history
    scope): replayed, so the answer may be sent twice but is not lost."""
    LOOKUP_FAILED = "lookup failed"
    """Rate limit, network, a Slack outage: looked up again at a later beat."""


Lookup = Callable[[str, dict[str, Any]], InSlack]
"""Looks for the answer to an event (its id and body) in Slack."""


def cannot_look(event_id: str, body: dict[str, Any]) -> InSlack:
    """The lookup of a worker that has no Web API to ask: every taken-over event is replayed."""
    return InSlack.CANNOT_TELL


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


@dataclass(frozen=True, slots=True)
class Orphan:
    """A dead worker's event that this worker took over and has not settled yet."""

    event_id: str
    dead_owner: str
    body: dict[str, Any]
    claimed_at: datetime
    lookups: int = 0
    """Lookups that failed so far."""


class Deliveries:
    """One worker's part in "claimed, not yet answered": claims, marks, heartbeat, sweep.

    `claim` runs in Slack's ack path and `finished` in listener threads, both through
    `BestEffort`; `beat` and `tick` run on the takeover thread; lookups and replays of
    taken-over events on `executor` (the calling thread when there is none). Thread-safe.
    """

    def __init__(self, guard: BestEffort, settings: TakeoverSettings | None = None, *,
                 worker_id: str | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 lookup: Lookup = cannot_look, executor: Executor | None = None) -> None:
        self.guard = guard
        self.settings = settings or TakeoverSettings()
        self.worker_id = worker_id or new_worker_id()
        self.lookup = lookup
        self.executor = executor
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: dict[str, None] = {}  # insertion-ordered: oldest dropped first
        self._unsettled: dict[str, Orphan] = {}  # lookups that failed, to try again
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
        stored = storable(json.dumps({k: v for k, v in body.items() if k != "token"},
                                     separators=(",", ":"), ensure_ascii=False))
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
        """One beat: heartbeat, pending marks, expiry, lookups that failed before, then (when
        allowed) the sweep. Returns the ids of the events this worker took over (each then
        looked up in Slack and replayed unless its answer is there)."""
        if not self.beat():
            return []
        try:
            self._flush_marks()
            expired = self.store.expire_claims(self.settings.max_age)
            if expired:
                log.warning("%d claimed events had no recorded answer after %s; too late "
                            "to take over, their stored events were deleted", expired,
                            self.settings.max_age)
            with self._lock:
                retry, self._unsettled = list(self._unsettled.values()), {}
            for orphan in retry:
                self._submit(orphan, replay)
            if not self.may_sweep:
                return []
            return self._sweep(replay)
        except SQLAlchemyError as exc:
            log.info("takeover sweep interrupted by the database (%s)", type(exc).__name__)
            return []

    @property
    def unsettled(self) -> int:
        """Taken-over events whose lookup failed, waiting for the next beat."""
        with self._lock:
            return len(self._unsettled)

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
            orphan = self._orphan(claim)
            if orphan is not None:
                self._submit(orphan, replay)
        return taken

    def _orphan(self, claim: PendingClaim) -> Orphan | None:
        age = (utcnow() - claim.claimed_at).total_seconds()
        log.warning("taking over event %s from silent worker %s (claimed %.0f s ago)",
                    claim.event_id, claim.owner, age)
        try:
            body = json.loads(claim.body)
            if not isinstance(body, dict):
                raise TypeError(f"stored event is a {type(body).__name__}, not an object")
        except Exception:
            # Nothing will answer it now; marking it keeps the next sweep from trying again.
            log.exception("could not replay event %s", claim.event_id)
            self.finished(claim.event_id)
            return None
        return Orphan(claim.event_id, claim.owner, body, claim.claimed_at)

    def _submit(self, orphan: Orphan, replay: Replay) -> None:
        if self.executor is not None:
            try:
                self.executor.submit(self._settle, orphan, replay)
                return
            except RuntimeError:  # shut down (the worker is stopping): settle it here
                pass
        self._settle(orphan, replay)

    def _settle(self, orphan: Orphan, replay: Replay) -> None:
        """Look for the dead worker's answer in Slack; replay the event unless it is there."""
        try:
            if utcnow() - orphan.claimed_at >= self.settings.max_age:
                # Lookups kept failing that long; expiry has dropped (or will drop) its body.
                log.warning("event %s: no answer found in time; not answered (claimed over "
                            "%s ago)", orphan.event_id, self.settings.max_age)
                return
            try:
                found = self.lookup(orphan.event_id, orphan.body)
            except Exception:
                log.exception("looking up the answer to event %s failed", orphan.event_id)
                found = InSlack.CANNOT_TELL
            if found is InSlack.YES:
                log.warning("event %s: the answer of worker %s is already in Slack; recorded "
                            "as answered, not sent again", orphan.event_id, orphan.dead_owner)
                self.finished(orphan.event_id)
                return
            if found is InSlack.LOOKUP_FAILED:
                if orphan.lookups + 1 < LOOKUP_ATTEMPTS:
                    log.info("event %s: could not look up its answer; trying again at the "
                             "next beat", orphan.event_id)
                    with self._lock:
                        self._unsettled[orphan.event_id] = replace(orphan,
                                                                   lookups=orphan.lookups + 1)
                    return
                log.warning("event %s: could not look up its answer %d times; answering it, "
                            "perhaps twice", orphan.event_id, LOOKUP_ATTEMPTS)
            self._replay(orphan, replay)
        except Exception:  # on an executor thread: nobody else would see it
            log.exception("could not settle event %s", orphan.event_id)

    def _replay(self, orphan: Orphan, replay: Replay) -> None:
        try:
            replay(orphan.event_id, orphan.body)
        except Exception:
            # Nothing will answer it now; marking it keeps the next sweep from trying again.
            log.exception("could not replay event %s", orphan.event_id)
            self.finished(orphan.event_id)
