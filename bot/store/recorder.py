"""Best-effort recording: questions, choices, feedback and Request clicks go to the store,
and a database that is down never stops Concierge from answering.

When the database fails, `BestEffort` logs ONE warning, then stops trying for
`RETRY_AFTER` so that answers are not slowed by connection timeouts; the first
call after that probes again, and a success logs one line saying recording is
back. Questions asked meanwhile are answered but not recorded.

A data error is not an outage: a row the database refuses (a value too long for its
column, a character it cannot store, a constraint) costs that row and one warning,
and the next call goes to the database as usual. Counting it as an outage stopped
recording for 30 s and let event dedupe fail open, so one odd question made the next
redelivered event be answered twice.

User ids are never stored: only an HMAC-SHA256 of the id keyed with
`CONCIERGE_USER_HASH_KEY`. Without a key nothing about the user is stored at all,
because an unkeyed hash of a Slack id (a short, guessable format) can be
reversed by trying every id.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    IntegrityError,
    SQLAlchemyError,
    StatementError,
)

from bot.catalogue.models import Decision, DecisionKind
from bot.errors import StoreUnavailable
from bot.store.database import QuestionRecord, Store
from bot.store.tables import utcnow

log = logging.getLogger("concierge.store")

T = TypeVar("T")

DEFAULT_RETENTION_DAYS = 90
# After a failure, how long to answer without touching the database before probing again.
RETRY_AFTER = 30.0
PURGE_EVERY = timedelta(days=1)


def user_hash(key: bytes | None, user_id: str | None) -> str | None:
    """The keyed hash stored in place of a Slack user id (None without key or user)."""
    if not key or not user_id:
        return None
    return hmac.new(key, user_id.encode(), hashlib.sha256).hexdigest()


class BestEffort:
    """Runs database calls so that a failing database costs one warning, not an outage.

    Also brings the schema up to date lazily when the database was down at start.
    """

    def __init__(self, store: Store, *, schema_ready: bool = True,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self._clock = clock
        self._lock = threading.Lock()
        self._schema_ready = schema_ready
        self._down_since: float | None = None

    @property
    def available(self) -> bool:
        """False while the database is considered down."""
        return self._down_since is None

    def run(self, what: str, call: Callable[[], T], fallback: T) -> T:
        """`call()`, or `fallback` if the database fails or recently failed."""
        with self._lock:
            down_since = self._down_since
            if down_since is not None and self._clock() - down_since < RETRY_AFTER:
                return fallback
        done = self._attempt(what, call)
        return fallback if done is None else done[0]

    def must(self, what: str, call: Callable[[], T]) -> T:
        """`call()` now, even within `RETRY_AFTER` of a failure: for what cannot be done
        without the database (storing a request). A failure raises `StoreUnavailable` for
        the caller to tell the person; recovery is logged as in `run`."""
        done = self._attempt(what, call)
        if done is None:
            raise StoreUnavailable(f"{what} failed", url=self.store.url)
        return done[0]

    def _attempt(self, what: str, call: Callable[[], T]) -> tuple[T] | None:
        """`(call(),)`, or None when the database failed (logged once per outage)."""
        try:
            if not self._schema_ready:
                self.store.upgrade()
                self._schema_ready = True
            result = call()
        except (DataError, IntegrityError, UnicodeError) as exc:
            self._refused(what, exc)
            return None
        except SQLAlchemyError as exc:
            if isinstance(exc, StatementError) and not isinstance(exc, DBAPIError):
                self._refused(what, exc)  # a parameter failed in Python: no database involved
            else:
                self._went_down(what, exc)
            return None
        with self._lock:
            recovered = self._down_since is not None
            self._down_since = None
        if recovered:
            log.info("database %s reachable again; recording resumed", self.store.url)
        return (result,)

    def _refused(self, what: str, exc: Exception) -> None:
        # This one row, not the database: the transaction rolled back, the connection is
        # fine. No values in the message: the row may hold what someone typed.
        log.warning("database %s refused one record (%s failed: %s); recording goes on",
                    self.store.url, what, _short(exc))

    def _went_down(self, what: str, exc: SQLAlchemyError) -> None:
        with self._lock:
            first = self._down_since is None
            self._down_since = self._clock()
        if first:
            log.warning("database %s unavailable (%s failed: %s); Concierge keeps "
                        "answering but records nothing until it is back; retrying every "
                        "%.0f s", self.store.url, what, _short(exc), RETRY_AFTER)


def _short(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


@dataclass(frozen=True, slots=True)
class RecorderSettings:
    user_hash_key: bytes | None = None
    retention: timedelta = timedelta(days=DEFAULT_RETENTION_DAYS)


class Recorder:
    """What the Slack listeners record, each call best-effort."""

    def __init__(self, guard: BestEffort, settings: RecorderSettings | None = None) -> None:
        self.guard = guard
        self.settings = settings or RecorderSettings()
        self._last_purge: float | None = None
        self._purge_lock = threading.Lock()

    def _hash(self, user: str | None) -> str | None:
        return user_hash(self.settings.user_hash_key, user)

    def question(self, decision: Decision, *, surface: str, latency_ms: float,
                 user: str | None = None, team: str | None = None,
                 by_admin: bool = False) -> int | None:
        """Record a question; its id, or None when it could not be recorded."""
        nearest = decision.candidates[0].offering.id if decision.candidates else None
        record = QuestionRecord(
            asked_at=utcnow(), surface=surface, text=decision.query,
            decision=decision.kind.value, confidence=decision.confidence,
            latency_ms=latency_ms, team_id=team, user_hash=self._hash(user),
            offering_id=decision.offering.id if decision.offering else None,
            nearest_offering_id=(decision.offering.id if decision.offering else nearest),
            choices=tuple(o.id for o in decision.choices)
            if decision.kind is DecisionKind.CLARIFY else (), by_admin=by_admin)
        return self.guard.run("recording a question",
                              lambda: self.store.record_question(record), None)

    def choice(self, question_id: int | None, offering_id: str | None) -> None:
        if question_id is None:
            return
        self.guard.run("recording a choice",
                       lambda: self.store.record_choice(question_id, offering_id), False)

    def feedback(self, question_id: int | None, offering_id: str, *, helpful: bool,
                 user: str | None) -> None:
        self.guard.run("recording feedback", lambda: self.store.record_feedback(
            question_id=question_id, offering_id=offering_id, helpful=helpful,
            user_hash=self._hash(user)), None)

    def request_click(self, question_id: int | None, offering_id: str,
                      user: str | None) -> None:
        self.guard.run("recording a request click", lambda: self.store.record_request_click(
            question_id=question_id, offering_id=offering_id, user_hash=self._hash(user)),
                       None)

    def purge_if_due(self, now: float | None = None) -> None:
        """Apply the retention period once a day (every worker may: deleting is idempotent)."""
        now = time.monotonic() if now is None else now
        with self._purge_lock:
            if self._last_purge is not None and (
                    now - self._last_purge < PURGE_EVERY.total_seconds()):
                return
            self._last_purge = now
        purged = self.guard.run("purging old records",
                                lambda: self.store.purge(self.settings.retention), None)
        if purged is not None and (purged.questions or purged.feedback
                                   or purged.request_clicks or purged.requests):
            log.info("retention %s: purged %d questions, %d feedback, %d request clicks, "
                     "%d requests", self.settings.retention, purged.questions,
                     purged.feedback, purged.request_clicks, purged.requests)

    @property
    def store(self) -> Store:
        return self.guard.store
