"""The tables of Concierge's database, as SQLAlchemy 2 mapped classes.

The schema itself is created and changed by the Alembic migrations in
`bot/store/migrations/versions/`; these classes must describe the state the newest
migration leaves behind (a test compares the two). No Slack imports.

    processed_events   Events API ids some worker took on (dedupe across workers), with
                       the event while it is being answered (see `bot.store.takeover`)
    worker_heartbeats  when each worker process was last seen alive
    catalogue_state    one row: the reload generation every worker polls
    questions          every need asked, with the decision and what followed
    feedback           Helpful / Not what I need clicks, tied to the question they rate
    request_clicks     clicks on an answer's Request button
    requests           request forms submitted in Slack, with the owner's status
    request_outbox     what each request must deliver (channel message, webhook POST, direct
                       messages), delivered by a worker loop (`bot.outbox.courier`)
    digest_runs        one row per digest period: the worker sending it (`bot.store.digests`)
    digest_deliveries  each owner digest message of a period: to whom, and whether it went
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Slack ids are short; offering ids are slugs; generous bounds still catch garbage.
ID_LENGTH = 64
OFFERING_ID_LENGTH = 200
# HMAC-SHA256 as hex.
USER_HASH_LENGTH = 64
# host:pid:nonce; host names are cut to 100 characters by `bot.store.takeover`.
WORKER_ID_LENGTH = 200
# SQLite only gives an INTEGER PRIMARY KEY its auto-increment when it is exactly INTEGER.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Every table of Concierge's database is a subclass of this."""


# Claimed and not yet answered, with an event to replay: the few rows the takeover sweep
# reads every few seconds. A partial index keeps that read small however many answered
# claims the day has piled up. Both backends accept the same predicate.
PENDING_PREDICATE = "answered_at IS NULL AND body IS NOT NULL"


class ProcessedEvent(Base):
    """An Events API event id some worker has taken on; its primary key is the lock.

    While the event is being answered the row also holds the event itself and the worker
    that owns it, so that another worker can answer it if the owner dies (`bot.store.takeover`).
    """

    __tablename__ = "processed_events"
    __table_args__ = (
        Index("ix_processed_events_pending", "claimed_at",
              sqlite_where=text(PENDING_PREDICATE), postgresql_where=text(PENDING_PREDICATE)),
    )

    event_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    claimed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow,
                                                 index=True)
    """When the first delivery was claimed; a takeover keeps it, so age counts from Slack."""
    body: Mapped[str | None] = mapped_column(Text)
    """The event callback as JSON, minus its verification token; cleared once answered (it
    names the Slack user) and at the latest when the claim is too old to take over."""
    owner: Mapped[str | None] = mapped_column(String(WORKER_ID_LENGTH))
    """The worker answering it (host:pid:nonce); None for claims made before revision 0002."""
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """When a listener finished with it, whether or not it replied."""
    takeovers: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    """How often a live worker took it over from a dead one (bounded, see `bot.store.takeover`)."""


class WorkerHeartbeat(Base):
    """The last time a worker process proved it was alive (written every few seconds)."""

    __tablename__ = "worker_heartbeats"

    worker_id: Mapped[str] = mapped_column(String(WORKER_ID_LENGTH), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CatalogueState(Base):
    """One row per shared setting; `generation` grows by one on every `/concierge reload`."""

    __tablename__ = "catalogue_state"

    name: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    generation: Mapped[int] = mapped_column(BigInteger, default=0)
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    knowledge: Mapped[str | None] = mapped_column(Text)
    """The knowledge directory a worker last loaded, as that worker names it."""
    offerings: Mapped[str | None] = mapped_column(String(64))
    """A digest of that catalogue's offering ids (`bot.store.database.offerings_digest`)."""


class Question(Base):
    """One need someone asked, what Concierge decided, and what the asker did next."""

    __tablename__ = "questions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    asked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    team_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    surface: Mapped[str] = mapped_column(String(16))
    """dm, mention, command, home (or cli)."""
    user_hash: Mapped[str | None] = mapped_column(String(USER_HASH_LENGTH))
    """HMAC of the Slack user id with CONCIERGE_USER_HASH_KEY; None without a key."""
    text: Mapped[str] = mapped_column(Text)
    decision: Mapped[str] = mapped_column(String(16))
    """answer, clarify or none."""
    offering_id: Mapped[str | None] = mapped_column(String(OFFERING_ID_LENGTH))
    """The answer (for `answer`)."""
    nearest_offering_id: Mapped[str | None] = mapped_column(String(OFFERING_ID_LENGTH))
    """The best candidate, whatever the decision: for gaps, the offering closest to the need."""
    choices: Mapped[str | None] = mapped_column(Text)
    """For `clarify`: the offered ids, space-separated."""
    confidence: Mapped[float] = mapped_column(Float)
    latency_ms: Mapped[float] = mapped_column(Float)
    chosen_offering_id: Mapped[str | None] = mapped_column(String(OFFERING_ID_LENGTH))
    """For `clarify`: the choice the asker clicked."""
    none_fitted: Mapped[bool] = mapped_column(Boolean, default=False)
    """For `clarify`: the asker clicked "None of these"."""
    by_admin: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """Asked by an admin: left out of the reports, which count these apart."""


# One rating per question: a later click by the asker changes it (revision 0003).
ONE_PER_QUESTION = "question_id IS NOT NULL"


class Feedback(Base):
    """A Helpful / Not what I need click on the card answering `question_id`; the asker's
    latest, one per question."""

    __tablename__ = "feedback"
    __table_args__ = (
        Index("ux_feedback_question_id", "question_id", unique=True,
              sqlite_where=text(ONE_PER_QUESTION), postgresql_where=text(ONE_PER_QUESTION)),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    given_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    question_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("questions.id", ondelete="CASCADE"))
    offering_id: Mapped[str] = mapped_column(String(OFFERING_ID_LENGTH))
    helpful: Mapped[bool] = mapped_column(Boolean)
    user_hash: Mapped[str | None] = mapped_column(String(USER_HASH_LENGTH))


class RequestClick(Base):
    """A click on the Request button of an offering's card."""

    __tablename__ = "request_clicks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    clicked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    question_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("questions.id", ondelete="CASCADE"), index=True)
    offering_id: Mapped[str] = mapped_column(String(OFFERING_ID_LENGTH))
    user_hash: Mapped[str | None] = mapped_column(String(USER_HASH_LENGTH))


# Outbox items still to deliver: the few rows every worker's delivery loop reads every
# couple of seconds, however many delivered ones the retention period keeps.
DUE_PREDICATE = "state = 'pending'"
# Short and never a response body (which may echo anything): a status, an error class.
ERROR_LENGTH = 500


class OfferingRequest(Base):
    """A request form someone submitted in Slack, and where the owner has taken it since.

    It names the requester (their Slack id, needed to tell them what happens) and holds their
    answers: both are deleted with the rest after the retention period.
    """

    __tablename__ = "requests"
    __table_args__ = (UniqueConstraint("submission_key", name="uq_requests_submission_key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    """The request number people see (#42)."""
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    submission_key: Mapped[str] = mapped_column(String(ID_LENGTH))
    """The Slack view that was submitted: the same form sent twice is one request."""
    team_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    offering_id: Mapped[str] = mapped_column(String(OFFERING_ID_LENGTH))
    requester_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    requester_name: Mapped[str | None] = mapped_column(String(OFFERING_ID_LENGTH))
    details: Mapped[str] = mapped_column(Text)
    """JSON: the offering as it was (name, owner, cost, service level) and the answers."""
    status: Mapped[str] = mapped_column(String(16), default="open")
    """open, taken, done or declined (the owner's buttons)."""
    status_by: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    status_reason: Mapped[str | None] = mapped_column(Text)
    status_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class OutboxItem(Base):
    """One thing a request must deliver: the request to a channel or a webhook, or a direct
    message (the requester's receipt, a status change, a failure report). Written in the same
    transaction as what caused it, delivered by whichever worker claims it first."""

    __tablename__ = "request_outbox"
    __table_args__ = (
        UniqueConstraint("idempotency_key", name="uq_request_outbox_idempotency_key"),
        Index("ix_request_outbox_due", "next_attempt_at",
              sqlite_where=text(DUE_PREDICATE), postgresql_where=text(DUE_PREDICATE)),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("requests.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    """channel, webhook or dm."""
    target: Mapped[str] = mapped_column(String(OFFERING_ID_LENGTH))
    """A channel (#name, C…) or user (U…), a webhook name, or the user a dm goes to."""
    purpose: Mapped[str] = mapped_column(String(16))
    """request (the request itself), receipt, status, failure (to the requester) or alert
    (to an admin)."""
    payload: Mapped[str | None] = mapped_column(Text)
    """JSON, for the notices: what changed or what failed."""
    idempotency_key: Mapped[str] = mapped_column(String(ID_LENGTH))
    """Sent with every attempt (the `Idempotency-Key` header of a webhook POST)."""
    state: Mapped[str] = mapped_column(String(16), default="pending")
    """pending, delivered or failed."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    lease_owner: Mapped[str | None] = mapped_column(String(WORKER_ID_LENGTH))
    """The worker delivering it now (host:pid:nonce), until `lease_until`."""
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(String(ERROR_LENGTH))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    failed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    message_channel: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    """For a Slack message: the conversation it is in (an id), to update it in place."""
    message_ts: Mapped[str | None] = mapped_column(String(32))


# A digest period's name (`bot.admin.schedule.Schedule.key`): "weekly:2026-11-30T09:00Z".
PERIOD_LENGTH = 40
# Where a digest goes: a user id, a channel id or a #channel-name (Slack allows 80 chars).
RECIPIENT_LENGTH = 100
# SHA-256 hex of the owner team's name, cut: team names are free text of any length.
TEAM_KEY_LENGTH = 32


class DigestRun(Base):
    """A digest period some worker took on; its primary key is the claim, as for events."""

    __tablename__ = "digest_runs"

    period: Mapped[str] = mapped_column(String(PERIOD_LENGTH), primary_key=True)
    owner: Mapped[str] = mapped_column(String(WORKER_ID_LENGTH))
    """The worker sending it (host:pid:nonce), whose heartbeat shows it alive."""
    claimed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """Every message of the period sent or given up; nothing more is sent for it."""
    takeovers: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))


class DigestDelivery(Base):
    """One owner team's digest message to one recipient in one period."""

    __tablename__ = "digest_deliveries"

    period: Mapped[str] = mapped_column(
        String(PERIOD_LENGTH), ForeignKey("digest_runs.period", ondelete="CASCADE"),
        primary_key=True)
    team_key: Mapped[str] = mapped_column(String(TEAM_KEY_LENGTH), primary_key=True)
    recipient: Mapped[str] = mapped_column(String(RECIPIENT_LENGTH), primary_key=True)
    team: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16))
    """sending (written before the post: in doubt if its worker died), sent or failed."""
    channel: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    """The conversation posted to (a DM's id is known before the post)."""
    ts: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    """The message's ts, once Slack took it."""
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    error: Mapped[str | None] = mapped_column(String(ERROR_LENGTH))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
