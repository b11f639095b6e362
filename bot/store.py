"""Concierge's own database: what every worker process must agree on.

SQLAlchemy 2, so the same code runs on a SQLite file (the default: nothing to
install or operate) and on PostgreSQL (`DATABASE_URL`) when several hosts share
the work. Tables are declared on `Base`; `Store` creates the missing ones at
start, so a later feature adds a table by declaring one more mapped class here.

Today it holds `processed_events`: Slack redelivers an event it did not see
acknowledged within 3 seconds, possibly to another worker, and the event id
must be answered once. No Slack imports: the core owns this module.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Engine, String, create_engine, delete, event, insert
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import (
    ArgumentError,
    IntegrityError,
    NoSuchModuleError,
    OperationalError,
    ProgrammingError,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bot.errors import ConfigError

DEFAULT_DATA_DIR = "data"
SQLITE_FILENAME = "concierge.sqlite3"
# Slack stops retrying an event after about an hour; a day leaves a wide margin.
EVENT_RETENTION = timedelta(days=1)
# Several workers write to one SQLite file; a writer waits this long for the lock. Claims
# happen before Slack's 3-second ack deadline, so waiting longer would cause the very
# retries the claim is there to absorb (the caller handles the event if the wait fails).
SQLITE_BUSY_SECONDS = 2.0


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Every table of Concierge's database is a subclass of this."""


class ProcessedEvent(Base):
    """An Events API event id some worker has taken on; its primary key is the lock."""

    __tablename__ = "processed_events"

    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    claimed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_utcnow,
                                                 index=True)


def database_url(env: Mapping[str, str] | None = None) -> str:
    """`DATABASE_URL`, else a SQLite file in `CONCIERGE_DATA_DIR` (default `./data`)."""
    env = os.environ if env is None else env
    url = env.get("DATABASE_URL", "").strip()
    if url:
        # Heroku and others still hand out `postgres://`, which SQLAlchemy 2 no longer accepts.
        if url.startswith("postgres://"):
            url = "postgresql://" + url.removeprefix("postgres://")
        return url
    data_dir = Path(env.get("CONCIERGE_DATA_DIR", "").strip() or DEFAULT_DATA_DIR)
    return f"sqlite:///{data_dir / SQLITE_FILENAME}"


def _parse(url: str) -> URL:
    try:
        return make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"not a database URL ({exc})", setting="DATABASE_URL") from exc


class Store:
    """A connection pool to Concierge's database. Thread-safe; one per process."""

    def __init__(self, url: str) -> None:
        parsed = _parse(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        connect_args: dict[str, Any] = {}
        if self.is_sqlite:
            connect_args["timeout"] = SQLITE_BUSY_SECONDS
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.engine: Engine = create_engine(parsed, connect_args=connect_args,
                                                pool_pre_ping=not self.is_sqlite)
        except (NoSuchModuleError, ModuleNotFoundError) as exc:
            raise ConfigError(f"no driver installed for {parsed.drivername!r} ({exc})",
                              setting="DATABASE_URL") from exc
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._create_tables()

    def _create_tables(self) -> None:
        """Create missing tables. Processes starting together may race to create the
        same table; the loser's CREATE fails, and a second look finds the table there."""
        try:
            Base.metadata.create_all(self.engine)
        except (OperationalError, ProgrammingError):
            Base.metadata.create_all(self.engine)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Store:
        return cls(database_url(env))

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def claim_event(self, event_id: str) -> bool:
        """True for the first caller with this id, in any process sharing the database.

        The primary key makes the INSERT itself the test-and-set: no read-then-write race.
        """
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(ProcessedEvent).values(event_id=event_id,
                                                           claimed_at=_utcnow()))
        except IntegrityError:
            return False
        return True

    def prune_events(self, older_than: timedelta = EVENT_RETENTION) -> int:
        """Forget event ids claimed before `older_than` ago; return how many."""
        cutoff = _utcnow() - older_than
        with self.engine.begin() as conn:
            result = conn.execute(delete(ProcessedEvent).where(
                ProcessedEvent.claimed_at < cutoff))
        return int(result.rowcount)

    def close(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers and one writer work at once across worker processes;
    # NORMAL sync is durable enough for an idempotency log and much faster.
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()
