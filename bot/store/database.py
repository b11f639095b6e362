"""Concierge's own database: what every worker process must agree on, and what was asked.

SQLAlchemy 2, so the same code runs on a SQLite file (the default: nothing to
install or operate) and on PostgreSQL (`DATABASE_URL`) when several hosts share
the work. The tables are declared in `bot.store.tables`; Alembic migrations in
`bot/store/migrations/` create and change them, applied when a `Store` opens (and by
`concierge db upgrade`). Two processes starting together must not both migrate:
PostgreSQL serialises them with an advisory lock, SQLite with a lock file next
to the database.

It holds the event dedupe (Slack redelivers an event it did not see acknowledged
within 3 seconds, possibly to another worker) with the "claimed, not yet answered"
state that lets a live worker answer what a dead one had acknowledged (`bot.store.takeover`
drives it), worker heartbeats, the catalogue reload generation, and the question log
the admin reports read. No Slack imports: the core owns it.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    create_engine,
    delete,
    event,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import (
    ArgumentError,
    IntegrityError,
    NoSuchModuleError,
)

from bot.errors import ConfigError
from bot.store.tables import (
    ID_LENGTH,
    CatalogueState,
    Feedback,
    OfferingRequest,
    OutboxItem,
    ProcessedEvent,
    Question,
    RequestClick,
    WorkerHeartbeat,
    utcnow,
)

DEFAULT_DATA_DIR = "data"
SQLITE_FILENAME = "concierge.sqlite3"
# Slack stops retrying an event after about an hour; a day leaves a wide margin.
EVENT_RETENTION = timedelta(days=1)
# Several workers write to one SQLite file; a writer waits this long for the lock. Claims
# happen before Slack's 3-second ack deadline, so waiting longer would cause the very
# retries the claim is there to absorb (the caller handles the event if the wait fails).
SQLITE_BUSY_SECONDS = 2.0
# A PostgreSQL server that does not answer must not hold a Slack ack for long.
CONNECT_TIMEOUT_SECONDS = 3
# Any fixed number works; it only has to be the same in every Concierge process.
MIGRATION_LOCK_KEY = 0x436F6E63  # "Conc"
GENERATION_ROW = "catalogue"
_SURROGATE = re.compile("[\ud800-\udfff]")


def database_url(env: Mapping[str, str] | None = None) -> str:
    """`DATABASE_URL`, else a SQLite file in `CONCIERGE_DATA_DIR` (default `./data`).

    A PostgreSQL URL without a driver (`postgres://`, `postgresql://`, as hosting
    platforms hand them out) is read with psycopg 3, the driver Concierge installs.
    """
    env = os.environ if env is None else env
    url = env.get("DATABASE_URL", "").strip()
    if url:
        for bare in ("postgres://", "postgresql://"):
            if url.startswith(bare):
                return "postgresql+psycopg://" + url.removeprefix(bare)
        return url
    data_dir = Path(env.get("CONCIERGE_DATA_DIR", "").strip() or DEFAULT_DATA_DIR)
    return f"sqlite:///{data_dir / SQLITE_FILENAME}"


def _parse(url: str) -> URL:
    try:
        return make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"not a database URL ({exc})", setting="DATABASE_URL") from exc


@dataclass(frozen=True, slots=True)
class QuestionRecord:
    """What is recorded about one question (the row minus its id and follow-ups)."""

    asked_at: datetime
    surface: str
    text: str
    decision: str
    confidence: float
    latency_ms: float
    team_id: str | None = None
    user_hash: str | None = None
    offering_id: str | None = None
    nearest_offering_id: str | None = None
    choices: tuple[str, ...] = ()
    by_admin: bool = False
    """Asked by an admin: the reports leave it out and count it apart."""


@dataclass(frozen=True, slots=True)
class ServedCatalogue:
    """The knowledge directory `concierge serve` last loaded, and a digest of its ids."""

    knowledge: str
    offerings: str


def offerings_digest(ids: Iterable[str]) -> str:
    """A digest of a catalogue's offering ids, whatever their order: two catalogues with
    the same offerings (by id) have the same digest."""
    return hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class PendingClaim:
    """A claimed event nobody has answered whose owner looks dead: a takeover candidate."""

    event_id: str
    owner: str
    body: str
    """The event callback as JSON."""
    claimed_at: datetime
    takeovers: int


@dataclass(frozen=True, slots=True)
class Purged:
    """How many rows the retention purge removed, per table."""

    questions: int
    feedback: int
    request_clicks: int
    events: int
    requests: int = 0
    """Requests made in Slack, with their answers and requester, and their outbox."""


class Store:
    """A connection pool to Concierge's database. Thread-safe; one per process.

    `migrate=True` (the default) brings the schema to the newest migration first;
    the reports pass False and check instead, so reading never changes a database.
    """

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        parsed = _parse(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        self._sqlite_file: Path | None = None
        connect_args: dict[str, Any] = {}
        if self.is_sqlite:
            connect_args["timeout"] = SQLITE_BUSY_SECONDS
            if parsed.database and parsed.database != ":memory:":
                self._sqlite_file = Path(parsed.database)
        elif parsed.get_backend_name() == "postgresql":
            connect_args["connect_timeout"] = CONNECT_TIMEOUT_SECONDS
        try:
            self.engine: Engine = create_engine(parsed, connect_args=connect_args,
                                                pool_pre_ping=not self.is_sqlite)
        except (NoSuchModuleError, ModuleNotFoundError) as exc:
            raise ConfigError(f"no driver installed for {parsed.drivername!r} ({exc})",
                              setting="DATABASE_URL") from exc
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
            if self._sqlite_file is not None:
                _owner_only(self._sqlite_file)
        if migrate:
            self.upgrade()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, migrate: bool = True) -> Store:
        return cls(database_url(env), migrate=migrate)

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    @property
    def sqlite_file(self) -> Path | None:
        """The database file, for SQLite on disk."""
        return self._sqlite_file

    # --- schema -------------------------------------------------------------------------

    def upgrade(self) -> list[str]:
        """Apply every migration not yet applied; return the revisions applied, oldest first."""
        from bot.store.migrate import run_upgrade

        if self._sqlite_file is not None:
            _create_owner_only(self._sqlite_file)
        with self._migration_lock(), self.engine.begin() as conn:
            if not self.is_sqlite:
                # Held until this transaction ends: PostgreSQL runs the whole upgrade in it.
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                             {"key": MIGRATION_LOCK_KEY})
            return run_upgrade(conn)

    def schema_revision(self) -> tuple[str | None, str]:
        """(the revision the database is at, the newest revision this code knows)."""
        from bot.store.migrate import current_revision, head_revision

        with self.engine.connect() as conn:
            return current_revision(conn), head_revision()

    @contextmanager
    def _migration_lock(self) -> Iterator[None]:
        if self._sqlite_file is None:
            yield
            return
        lock_path = self._sqlite_file.with_name(self._sqlite_file.name + ".migrate-lock")
        with os.fdopen(os.open(lock_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600),
                       "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # --- event dedupe -------------------------------------------------------------------

    def claim_event(self, event_id: str, *, body: str | None = None, owner: str | None = None,
                    at: datetime | None = None) -> bool:
        """True for the first caller with this id, in any process sharing the database.

        The primary key makes the INSERT itself the test-and-set: no read-then-write race.
        `body` (the event as JSON) and `owner` (the claiming worker) let another worker
        answer the event should the owner die before it has (`bot.store.takeover`).
        """
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(ProcessedEvent).values(
                    event_id=event_id, claimed_at=at or utcnow(), body=body, owner=owner))
        except IntegrityError:
            return False
        return True

    def mark_answered(self, event_id: str, owner: str, *, at: datetime | None = None) -> bool:
        """`owner` finished with the event: record when, and drop the stored event (it names
        the Slack user, which Concierge otherwise never keeps). False when the claim is not
        `owner`'s: made while the database was down, or taken over by another worker."""
        with self.engine.begin() as conn:
            result = conn.execute(
                update(ProcessedEvent)
                .where(ProcessedEvent.event_id == event_id, ProcessedEvent.owner == owner)
                .values(answered_at=at or utcnow(), body=None))
        return bool(result.rowcount)

    def stale_claims(self, me: str, *, stale_after: timedelta, max_age: timedelta,
                     max_takeovers: int, limit: int,
                     now: datetime | None = None) -> list[PendingClaim]:
        """Unanswered claims of other workers not heard from for `stale_after`, oldest first.

        A claim younger than `stale_after` is never stale, even when its owner never wrote
        a heartbeat: the claim itself showed the owner alive then. Claims older than
        `max_age`, or taken over `max_takeovers` times already, are left alone.
        """
        now = now or utcnow()
        silent_since = now - stale_after
        beat = WorkerHeartbeat
        query = (
            select(ProcessedEvent.event_id, ProcessedEvent.owner, ProcessedEvent.body,
                   ProcessedEvent.claimed_at, ProcessedEvent.takeovers)
            .outerjoin(beat, beat.worker_id == ProcessedEvent.owner)
            .where(ProcessedEvent.answered_at.is_(None), ProcessedEvent.body.is_not(None),
                   ProcessedEvent.claimed_at >= now - max_age,
                   ProcessedEvent.claimed_at < silent_since,
                   ProcessedEvent.owner.is_not(None), ProcessedEvent.owner != me,
                   ProcessedEvent.takeovers < max_takeovers,
                   or_(beat.seen_at.is_(None), beat.seen_at < silent_since))
            .order_by(ProcessedEvent.claimed_at).limit(limit))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [PendingClaim(row.event_id, str(row.owner), str(row.body),
                             _aware(row.claimed_at), int(row.takeovers)) for row in rows]

    def take_over(self, event_id: str, *, from_owner: str, to_owner: str) -> bool:
        """Move an unanswered claim from `from_owner` to `to_owner`; True for exactly one
        caller, however many workers try at once: the UPDATE only matches while the row
        still names the old owner, and the database serialises the UPDATEs."""
        with self.engine.begin() as conn:
            result = conn.execute(
                update(ProcessedEvent)
                .where(ProcessedEvent.event_id == event_id,
                       ProcessedEvent.owner == from_owner,
                       ProcessedEvent.answered_at.is_(None),
                       ProcessedEvent.body.is_not(None))
                .values(owner=to_owner, takeovers=ProcessedEvent.takeovers + 1))
        return result.rowcount == 1

    def expire_claims(self, max_age: timedelta, *, now: datetime | None = None) -> int:
        """Drop the stored event of unanswered claims older than `max_age`: too late to
        answer, and not worth keeping a Slack user id for. Returns how many."""
        cutoff = (now or utcnow()) - max_age
        with self.engine.begin() as conn:
            result = conn.execute(
                update(ProcessedEvent)
                .where(ProcessedEvent.answered_at.is_(None), ProcessedEvent.body.is_not(None),
                       ProcessedEvent.claimed_at < cutoff)
                .values(body=None))
        return int(result.rowcount)

    def heartbeat(self, worker_id: str, *, at: datetime | None = None) -> None:
        """Record that `worker_id` is alive. Only that worker writes its row, so an UPDATE
        then (the first time) an INSERT cannot race; it works on any backend."""
        at = at or utcnow()
        with self.engine.begin() as conn:
            updated = conn.execute(update(WorkerHeartbeat)
                                   .where(WorkerHeartbeat.worker_id == worker_id)
                                   .values(seen_at=at))
            if not updated.rowcount:
                conn.execute(insert(WorkerHeartbeat).values(worker_id=worker_id, seen_at=at))

    def prune_events(self, older_than: timedelta = EVENT_RETENTION) -> int:
        """Forget event ids claimed before `older_than` ago (and workers not seen since);
        return how many event ids."""
        cutoff = utcnow() - older_than
        with self.engine.begin() as conn:
            result = conn.execute(delete(ProcessedEvent).where(
                ProcessedEvent.claimed_at < cutoff))
            conn.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.seen_at < cutoff))
        return int(result.rowcount)

    # --- reload generation --------------------------------------------------------------

    def generation(self) -> int:
        """The catalogue generation: one primary-key read, cheap enough to poll often."""
        with self.engine.connect() as conn:
            value = conn.scalar(select(CatalogueState.generation).where(
                CatalogueState.name == GENERATION_ROW))
        return int(value or 0)

    def bump_generation(self) -> int:
        """Add one to the generation (in one statement, so concurrent bumps both count)."""
        for _ in range(2):
            with self.engine.begin() as conn:
                updated = conn.execute(
                    update(CatalogueState).where(CatalogueState.name == GENERATION_ROW)
                    .values(generation=CatalogueState.generation + 1, changed_at=utcnow()))
                if updated.rowcount:
                    return _generation_in(conn)
            try:
                with self.engine.begin() as conn:
                    conn.execute(insert(CatalogueState).values(
                        name=GENERATION_ROW, generation=1, changed_at=utcnow()))
                    return 1
            except IntegrityError:
                continue  # another process inserted the row first: update it instead
        raise RuntimeError("could not bump the catalogue generation")  # pragma: no cover

    # --- the question log ---------------------------------------------------------------

    def record_question(self, record: QuestionRecord) -> int:
        """Store one question; return its id (carried in the answer's buttons)."""
        team = record.team_id if record.team_id and len(record.team_id) <= ID_LENGTH else None
        with self.engine.begin() as conn:
            result = conn.execute(insert(Question).values(
                asked_at=record.asked_at, team_id=team, surface=record.surface,
                user_hash=record.user_hash, text=storable(record.text),
                decision=record.decision,
                offering_id=record.offering_id,
                nearest_offering_id=record.nearest_offering_id,
                choices=" ".join(record.choices) or None, confidence=record.confidence,
                latency_ms=record.latency_ms, none_fitted=False, by_admin=record.by_admin,
            ).returning(Question.id))
            return int(result.scalar_one())

    def record_choice(self, question_id: int, offering_id: str | None) -> bool:
        """The asker picked `offering_id` from a "Did you mean…" (None: "None of these").

        The last click stands: picking clears "None of these" and the other way round. An
        offering that was not among the question's choices is not recorded (False)."""
        values: dict[str, Any] = (
            {"chosen_offering_id": offering_id, "none_fitted": False} if offering_id
            else {"chosen_offering_id": None, "none_fitted": True})
        with self.engine.begin() as conn:
            choices = conn.execute(select(Question.choices).where(Question.id == question_id)
                                   ).first()
            if choices is None or (offering_id is not None
                                   and offering_id not in (choices[0] or "").split()):
                return False
            result = conn.execute(update(Question).where(Question.id == question_id)
                                  .values(**values))
        return bool(result.rowcount)

    def record_feedback(self, *, question_id: int | None, offering_id: str, helpful: bool,
                        user_hash: str | None, at: datetime | None = None) -> None:
        """The rating of the answer to `question_id`: one per question, a later click
        changes it (a unique index makes two first clicks at once one row)."""
        values = {"given_at": at or utcnow(), "offering_id": offering_id, "helpful": helpful,
                  "user_hash": user_hash}
        for _ in range(2):
            with self.engine.begin() as conn:
                question = self._existing(conn, question_id)
                if question is not None and conn.execute(
                        update(Feedback).where(Feedback.question_id == question)
                        .values(**values)).rowcount:
                    return
            try:
                with self.engine.begin() as conn:
                    conn.execute(insert(Feedback).values(question_id=question, **values))
                return
            except IntegrityError:
                if question is None:
                    raise
                continue  # another click on the same answer inserted first: update it
        raise RuntimeError("could not record feedback")  # pragma: no cover

    def record_served(self, knowledge: str, offering_ids: Iterable[str]) -> None:
        """Remember which catalogue is being served, for the reports on the command line."""
        values = {"knowledge": knowledge, "offerings": offerings_digest(offering_ids)}
        for _ in range(2):
            with self.engine.begin() as conn:
                if conn.execute(update(CatalogueState).where(
                        CatalogueState.name == GENERATION_ROW).values(**values)).rowcount:
                    return
            try:
                with self.engine.begin() as conn:
                    conn.execute(insert(CatalogueState).values(
                        name=GENERATION_ROW, generation=0, changed_at=utcnow(), **values))
                return
            except IntegrityError:
                continue  # another worker inserted the row first: update it

    def served(self) -> ServedCatalogue | None:
        """The catalogue a worker last loaded, if one has said."""
        with self.engine.connect() as conn:
            row = conn.execute(select(CatalogueState.knowledge, CatalogueState.offerings)
                               .where(CatalogueState.name == GENERATION_ROW)).first()
        if row is None or row.knowledge is None or row.offerings is None:
            return None
        return ServedCatalogue(str(row.knowledge), str(row.offerings))

    def record_request_click(self, *, question_id: int | None, offering_id: str,
                             user_hash: str | None, at: datetime | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(RequestClick).values(
                clicked_at=at or utcnow(), question_id=self._existing(conn, question_id),
                offering_id=offering_id, user_hash=user_hash))

    @staticmethod
    def _existing(conn: Connection, question_id: int | None) -> int | None:
        # A click may come after its question was purged (or from a forged value): keep
        # the click, drop the dangling reference, rather than fail on the foreign key.
        if question_id is None:
            return None
        found = conn.scalar(select(Question.id).where(Question.id == question_id))
        return int(found) if found is not None else None

    def purge(self, retention: timedelta) -> Purged:
        """Delete everything recorded more than `retention` ago, and old event ids."""
        cutoff = utcnow() - retention
        old_questions = select(Question.id).where(Question.asked_at < cutoff)
        with self.engine.begin() as conn:
            feedback = conn.execute(delete(Feedback).where(
                (Feedback.given_at < cutoff) | Feedback.question_id.in_(old_questions)))
            clicks = conn.execute(delete(RequestClick).where(
                (RequestClick.clicked_at < cutoff)
                | RequestClick.question_id.in_(old_questions)))
            questions = conn.execute(delete(Question).where(Question.asked_at < cutoff))
            # A request still waiting for a delivery stays until the courier has delivered
            # it or reported it undeliverable: the purge never drops one silently.
            waiting = select(OutboxItem.request_id).where(OutboxItem.state == "pending")
            old_requests = select(OfferingRequest.id).where(
                OfferingRequest.submitted_at < cutoff, OfferingRequest.id.not_in(waiting))
            conn.execute(delete(OutboxItem).where(OutboxItem.request_id.in_(old_requests)))
            requests = conn.execute(delete(OfferingRequest).where(
                OfferingRequest.submitted_at < cutoff, OfferingRequest.id.not_in(waiting)))
        return Purged(int(questions.rowcount), int(feedback.rowcount), int(clicks.rowcount),
                      self.prune_events(), int(requests.rowcount))

    def close(self) -> None:
        self.engine.dispose()


def storable(text: str) -> str:
    """`text` as every backend stores it: PostgreSQL refuses NUL characters in text, and
    neither driver can encode a lone surrogate (which a JSON `\\ud800` escape yields)."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    return _SURROGATE.sub("\ufffd", text)


# The SQLite file and the journals SQLite keeps beside it: all hold question texts.
SQLITE_COMPANIONS = ("", "-wal", "-shm", "-journal")


def _create_owner_only(database: Path) -> None:
    """The database's folder (0700 when created here) and file (0600), made before SQLite
    makes them with the process's umask (0644 as a rule: readable by every local user).
    SQLite gives its -wal and -shm files the permissions of the database file."""
    database.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(database, os.O_WRONLY | os.O_CREAT, 0o600))
    _owner_only(database)


def _owner_only(database: Path) -> None:
    """Take group and other permissions off the database and its journals, where they are
    ours and have any (a file made before Concierge did this, or copied in)."""
    for suffix in SQLITE_COMPANIONS:
        path = database.with_name(database.name + suffix)
        try:
            info = path.stat()
            if info.st_mode & 0o077 and info.st_uid == os.getuid():
                path.chmod(0o600)
        except OSError:
            continue  # absent, or not ours to change


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything stored here is UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _generation_in(conn: Connection) -> int:
    return int(conn.scalar(select(CatalogueState.generation).where(
        CatalogueState.name == GENERATION_ROW)) or 0)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers and one writer work at once across worker processes;
    # NORMAL sync is durable enough for an idempotency log and much faster.
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()
