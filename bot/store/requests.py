"""Requests made in Slack and their outbox, in the database every worker shares.

    a form is submitted   one transaction: the request and its outbox items, all pending
                          (the same Slack view submitted again finds the request it made)
    a delivery loop       due: pending, `next_attempt_at` passed, and free: never leased, its
                          lease expired, or leased by a worker whose heartbeat fell silent
                          ──▶ UPDATE … SET lease_owner = me, lease_until = now + lease
                              WHERE id = ? AND state = 'pending' AND the lease is still the
                              one read (rowcount 1: this worker won it, any other gets 0)
                          ──▶ delivered | postponed (attempts + 1, next attempt later)
                              | failed, with the notices reporting it (one transaction),
                              each only while the lease is still this worker's
    an owner's button     one transaction: the status, only from the states it may leave,
                          and the requester's notice

Why leases and heartbeats both: a lease bounds how long a worker may hold an item (a hung
call cannot keep it forever), and the heartbeats `bot.store.takeover` already writes let a
live worker take a dead one's items after `stale_after` instead of the whole lease. A lease
younger than `stale_after` is never taken on heartbeat grounds: the claim itself showed its
worker alive. No Slack imports: what a delivery is, is the courier's business
(`bot.outbox.courier`); here are only rows.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from bot.store.database import Store
from bot.store.tables import (
    ERROR_LENGTH,
    OfferingRequest,
    OutboxItem,
    WorkerHeartbeat,
    utcnow,
)

PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"


@dataclass(frozen=True, slots=True)
class NewRequest:
    """A submitted request form, before it has a number."""

    submission_key: str
    offering_id: str
    requester_id: str
    details: Mapping[str, Any]
    """JSON-ready: the offering as it was and the answers (`bot.outbox.intake`)."""
    requester_name: str | None = None
    team_id: str | None = None


@dataclass(frozen=True, slots=True)
class NewItem:
    """Something to deliver: `kind` channel, webhook or dm, to `target`, for `purpose`."""

    kind: str
    target: str
    purpose: str
    payload: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class RequestRow:
    """A request as stored (the row, its JSON read)."""

    id: int
    submitted_at: datetime
    offering_id: str
    requester_id: str
    requester_name: str | None
    team_id: str | None
    details: Mapping[str, Any]
    status: str
    status_by: str | None = None
    status_reason: str | None = None
    status_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ItemRow:
    """An outbox item as stored."""

    id: int
    request_id: int
    kind: str
    target: str
    purpose: str
    payload: Mapping[str, Any] | None
    idempotency_key: str
    state: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    last_error: str | None = None
    delivered_at: datetime | None = None
    failed_at: datetime | None = None
    message_channel: str | None = None
    message_ts: str | None = None
    lease_owner: str | None = None


@dataclass(frozen=True, slots=True)
class Parcel:
    """An item this worker has claimed, with its request: what the courier delivers."""

    item: ItemRow
    request: RequestRow


@dataclass(frozen=True, slots=True)
class Submitted:
    request: RequestRow
    items: tuple[ItemRow, ...]
    created: bool
    """False when this submission had been stored before (the same Slack view again)."""


@dataclass(frozen=True, slots=True)
class RequestWithItems:
    request: RequestRow
    items: tuple[ItemRow, ...] = field(default=())


class RequestBook:
    """Reads and writes requests and their outbox. Thread-safe (the store is)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # --- submitting ---------------------------------------------------------------------

    def submit(self, new: NewRequest, items: Sequence[NewItem], *,
               at: datetime | None = None) -> Submitted:
        """Store a request and what it must deliver, together or not at all."""
        now = at or utcnow()
        try:
            with self.store.engine.begin() as conn:
                request_id = int(conn.execute(insert(OfferingRequest).values(
                    submitted_at=now, submission_key=new.submission_key,
                    team_id=new.team_id, offering_id=new.offering_id,
                    requester_id=new.requester_id, requester_name=new.requester_name,
                    details=_dump(new.details), status="open",
                ).returning(OfferingRequest.id)).scalar_one())
                _add_items(conn, request_id, items, now)
                created = True
        except IntegrityError:
            # The same view submitted again (Slack did not see the first answer in time,
            # and the person pressed Submit once more): the request it already made.
            with self.store.engine.connect() as conn:
                found = conn.scalar(select(OfferingRequest.id).where(
                    OfferingRequest.submission_key == new.submission_key))
            if found is None:
                raise
            request_id, created = int(found), False
        stored = self.get(request_id)
        assert stored is not None  # just written, and only the purge deletes
        return Submitted(stored.request, stored.items, created)

    # --- reading ------------------------------------------------------------------------

    def get(self, request_id: int) -> RequestWithItems | None:
        with self.store.engine.connect() as conn:
            row = conn.execute(select(OfferingRequest).where(
                OfferingRequest.id == request_id)).one_or_none()
            if row is None:
                return None
            items = conn.execute(select(OutboxItem).where(OutboxItem.request_id == request_id)
                                 .order_by(OutboxItem.id)).all()
        return RequestWithItems(_request(row), tuple(_item(i) for i in items))

    def between(self, since: datetime, until: datetime) -> list[RequestWithItems]:
        """Requests submitted in the period, oldest first, each with its outbox items."""
        with self.store.engine.connect() as conn:
            rows = conn.execute(select(OfferingRequest).where(
                OfferingRequest.submitted_at >= since, OfferingRequest.submitted_at <= until)
                .order_by(OfferingRequest.id)).all()
            ids = [int(r.id) for r in rows]
            items: dict[int, list[ItemRow]] = {i: [] for i in ids}
            for chunk in _chunks(ids, 500):
                for i in conn.execute(select(OutboxItem).where(
                        OutboxItem.request_id.in_(chunk)).order_by(OutboxItem.id)):
                    items[int(i.request_id)].append(_item(i))
        return [RequestWithItems(_request(r), tuple(items[int(r.id)])) for r in rows]

    # --- delivering ---------------------------------------------------------------------

    def claim(self, me: str, *, lease: timedelta, stale_after: timedelta, limit: int,
              request_id: int | None = None, now: datetime | None = None) -> list[Parcel]:
        """Claim up to `limit` due items for `me`, oldest first (only `request_id`'s when
        given); each claimed by exactly one worker however many try at once."""
        now = now or utcnow()
        silent_since = now - stale_after
        beat = WorkerHeartbeat
        free = or_(
            OutboxItem.lease_owner.is_(None),
            OutboxItem.lease_until < now,
            # Claimed over `stale_after` ago by a worker not heard from since: dead.
            and_(OutboxItem.lease_until < silent_since + lease,
                 or_(beat.seen_at.is_(None), beat.seen_at < silent_since)))
        query = (select(OutboxItem.id, OutboxItem.lease_owner, OutboxItem.lease_until)
                 .outerjoin(beat, beat.worker_id == OutboxItem.lease_owner)
                 .where(OutboxItem.state == PENDING, OutboxItem.next_attempt_at <= now, free)
                 .order_by(OutboxItem.next_attempt_at, OutboxItem.id).limit(limit))
        if request_id is not None:
            query = query.where(OutboxItem.request_id == request_id)
        with self.store.engine.connect() as conn:
            candidates = conn.execute(query).all()
        won: list[int] = []
        for row in candidates:
            read_owner = (OutboxItem.lease_owner.is_(None) if row.lease_owner is None
                          else OutboxItem.lease_owner == row.lease_owner)
            read_until = (OutboxItem.lease_until.is_(None) if row.lease_until is None
                          else OutboxItem.lease_until == row.lease_until)
            with self.store.engine.begin() as conn:
                result = conn.execute(
                    update(OutboxItem)
                    .where(OutboxItem.id == row.id, OutboxItem.state == PENDING, read_owner,
                           read_until)
                    .values(lease_owner=me, lease_until=now + lease))
            if result.rowcount == 1:
                won.append(int(row.id))
        return self._parcels(won)

    def _parcels(self, item_ids: Sequence[int]) -> list[Parcel]:
        if not item_ids:
            return []
        with self.store.engine.connect() as conn:
            items = [_item(r) for r in conn.execute(
                select(OutboxItem).where(OutboxItem.id.in_(item_ids)).order_by(OutboxItem.id))]
            requests = {int(r.id): _request(r) for r in conn.execute(
                select(OfferingRequest).where(
                    OfferingRequest.id.in_({i.request_id for i in items})))}
        return [Parcel(i, requests[i.request_id]) for i in items]

    def delivered(self, item_id: int, me: str, *, message_channel: str | None = None,
                  message_ts: str | None = None, at: datetime | None = None) -> bool:
        """`me` delivered the item; False when its lease was no longer `me`'s."""
        with self.store.engine.begin() as conn:
            result = conn.execute(
                update(OutboxItem)
                .where(OutboxItem.id == item_id, OutboxItem.lease_owner == me,
                       OutboxItem.state == PENDING)
                .values(state=DELIVERED, delivered_at=at or utcnow(),
                        attempts=OutboxItem.attempts + 1, lease_owner=None, lease_until=None,
                        last_error=None, message_channel=message_channel,
                        message_ts=message_ts))
        return result.rowcount == 1

    def postpone(self, item_id: int, me: str, *, until: datetime, error: str,
                 attempted: bool = True) -> bool:
        """Try again at `until` (`attempted`: an attempt was made and counts)."""
        with self.store.engine.begin() as conn:
            result = conn.execute(
                update(OutboxItem)
                .where(OutboxItem.id == item_id, OutboxItem.lease_owner == me,
                       OutboxItem.state == PENDING)
                .values(next_attempt_at=until, lease_owner=None, lease_until=None,
                        attempts=OutboxItem.attempts + (1 if attempted else 0),
                        last_error=error[:ERROR_LENGTH]))
        return result.rowcount == 1

    def fail(self, item_id: int, me: str, *, error: str, notices: Sequence[NewItem] = (),
             attempted: bool = True, at: datetime | None = None) -> bool:
        """Give the item up, and store the notices that report it in the same transaction:
        a failure is never recorded without its report, nor reported twice."""
        now = at or utcnow()
        with self.store.engine.begin() as conn:
            result = conn.execute(
                update(OutboxItem)
                .where(OutboxItem.id == item_id, OutboxItem.lease_owner == me,
                       OutboxItem.state == PENDING)
                .values(state=FAILED, failed_at=now, lease_owner=None, lease_until=None,
                        attempts=OutboxItem.attempts + (1 if attempted else 0),
                        last_error=error[:ERROR_LENGTH]))
            if result.rowcount != 1:
                return False
            request_id = conn.execute(select(OutboxItem.request_id).where(
                OutboxItem.id == item_id)).scalar_one()
            _add_items(conn, int(request_id), notices, now)
        return True

    def release(self, item_ids: Iterable[int], me: str) -> None:
        """Give back claims this worker will not deliver (it is stopping)."""
        with self.store.engine.begin() as conn:
            for item_id in item_ids:
                conn.execute(update(OutboxItem)
                             .where(OutboxItem.id == item_id, OutboxItem.lease_owner == me,
                                    OutboxItem.state == PENDING)
                             .values(lease_owner=None, lease_until=None))

    # --- the owner's status -------------------------------------------------------------

    def change_status(self, request_id: int, *, to: str, allowed_from: Iterable[str],
                      by: str, reason: str | None = None, notices: Sequence[NewItem] = (),
                      at: datetime | None = None) -> RequestRow | None:
        """Move the request to `to` if it is in one of `allowed_from`, storing the notices
        with it; None when it is not (another owner was quicker, or it is closed)."""
        now = at or utcnow()
        with self.store.engine.begin() as conn:
            result = conn.execute(
                update(OfferingRequest)
                .where(OfferingRequest.id == request_id,
                       OfferingRequest.status.in_(list(allowed_from)))
                .values(status=to, status_by=by, status_reason=reason, status_at=now))
            if result.rowcount != 1:
                return None
            _add_items(conn, request_id, notices, now)
        found = self.get(request_id)
        return found.request if found is not None else None


def _add_items(conn: Connection, request_id: int, items: Iterable[NewItem],
               now: datetime) -> None:
    for item in items:
        conn.execute(insert(OutboxItem).values(
            request_id=request_id, kind=item.kind, target=item.target, purpose=item.purpose,
            payload=_dump(item.payload) if item.payload is not None else None,
            # Random rather than the row's id: two Concierge installations (or a restored
            # database) posting to one tool must never reuse a key.
            idempotency_key=uuid.uuid4().hex, state=PENDING, created_at=now,
            next_attempt_at=now, attempts=0))


def _dump(data: Mapping[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def _load(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    value = json.loads(text)
    return value if isinstance(value, dict) else {}


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; everything stored here is UTC.
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _request(row: Any) -> RequestRow:
    submitted = _aware(row.submitted_at)
    assert submitted is not None
    return RequestRow(
        id=int(row.id), submitted_at=submitted, offering_id=str(row.offering_id),
        requester_id=str(row.requester_id), requester_name=row.requester_name,
        team_id=row.team_id, details=_load(row.details) or {}, status=str(row.status),
        status_by=row.status_by, status_reason=row.status_reason,
        status_at=_aware(row.status_at))


def _item(row: Any) -> ItemRow:
    created, due = _aware(row.created_at), _aware(row.next_attempt_at)
    assert created is not None and due is not None
    return ItemRow(
        id=int(row.id), request_id=int(row.request_id), kind=str(row.kind),
        target=str(row.target), purpose=str(row.purpose), payload=_load(row.payload),
        idempotency_key=str(row.idempotency_key), state=str(row.state),
        attempts=int(row.attempts), created_at=created, next_attempt_at=due,
        last_error=row.last_error, delivered_at=_aware(row.delivered_at),
        failed_at=_aware(row.failed_at), message_channel=row.message_channel,
        message_ts=row.message_ts, lease_owner=row.lease_owner)


def _chunks(values: Sequence[int], size: int) -> Iterable[Sequence[int]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]
