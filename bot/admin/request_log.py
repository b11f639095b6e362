"""Requests made in Slack as the admin reports read them: who asked for what, where the owner
has taken it, and where each delivery stands.

A request's delivery state sums up its destinations (the owner's channel, the owner, a
webhook): `delivered` when every one got it, `failed` when one was given up (the requester
and the admins were told), else `pending` (being delivered, or waiting to try again).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.outbox.intake import REQUEST, RequestDetails
from bot.store.database import Store
from bot.store.requests import RequestBook, RequestWithItems
from bot.wording import plural


@dataclass(frozen=True, slots=True)
class DeliveryState:
    """One outbox item of a request: the request to a place, or a direct message."""

    kind: str
    target: str
    purpose: str
    state: str
    attempts: int
    last_error: str | None
    delivered_at: datetime | None
    next_attempt_at: datetime | None
    """For a pending item: when it is tried next."""

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "target": self.target, "purpose": self.purpose,
                "state": self.state, "attempts": self.attempts, "last_error": self.last_error,
                "delivered_at": _iso(self.delivered_at),
                "next_attempt_at": _iso(self.next_attempt_at)}

    def describe(self) -> str:
        where = f"{self.kind} {self.target}" if self.purpose == REQUEST else (
            f"{self.purpose} to {self.target}")
        if self.state == "delivered" and self.delivered_at is not None:
            return f"{where} delivered {self.delivered_at:%H:%M:%S}"
        if self.state == "failed":
            return (f"{where} FAILED after {plural(self.attempts, 'attempt')}: "
                    f"{self.last_error}")
        if self.attempts and self.next_attempt_at is not None:
            return (f"{where} pending (attempt {self.attempts} failed: {self.last_error}; next "
                    f"{self.next_attempt_at:%H:%M:%S})")
        return f"{where} pending"


@dataclass(frozen=True, slots=True)
class RequestSummary:
    id: int
    submitted_at: datetime
    offering_id: str
    offering_name: str
    requester_id: str
    requester_name: str | None
    status: str
    status_by: str | None
    status_reason: str | None
    deliveries: tuple[DeliveryState, ...]

    @property
    def delivery(self) -> str:
        """delivered, pending or failed, over the request's destinations."""
        states = [d.state for d in self.deliveries if d.purpose == REQUEST]
        if "failed" in states:
            return "failed"
        if all(s == "delivered" for s in states):
            return "delivered"
        return "pending"

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "submitted_at": _iso(self.submitted_at),
                "offering": {"id": self.offering_id, "name": self.offering_name},
                "requester": {"slack_id": self.requester_id, "name": self.requester_name},
                "status": self.status, "status_by": self.status_by,
                "status_reason": self.status_reason, "delivery": self.delivery,
                "deliveries": [d.to_json() for d in self.deliveries]}

    @classmethod
    def of(cls, found: RequestWithItems) -> RequestSummary:
        request = found.request
        return cls(
            id=request.id, submitted_at=request.submitted_at, offering_id=request.offering_id,
            offering_name=RequestDetails.of(request).offering_name,
            requester_id=request.requester_id, requester_name=request.requester_name,
            status=request.status, status_by=request.status_by,
            status_reason=request.status_reason,
            deliveries=tuple(DeliveryState(
                i.kind, i.target, i.purpose, i.state, i.attempts, i.last_error,
                i.delivered_at, i.next_attempt_at if i.state == "pending" else None)
                for i in found.items))


@dataclass(frozen=True, slots=True)
class RequestCounts:
    submitted: int
    delivered: int
    pending: int
    failed: int
    open: int
    taken: int
    done: int
    declined: int

    def line(self) -> str:
        return (f"Requests made in Slack: {self.submitted} ({self.delivered} delivered, "
                f"{self.pending} being delivered, {self.failed} undeliverable); "
                f"{self.open} open, {self.taken} taken, {self.done} done, "
                f"{self.declined} declined")


def load_requests(store: Store, since: datetime, until: datetime) -> tuple[RequestSummary, ...]:
    return tuple(RequestSummary.of(r) for r in RequestBook(store).between(since, until))


def count_requests(requests: Sequence[RequestSummary]) -> RequestCounts:
    delivery = Counter(r.delivery for r in requests)
    status = Counter(r.status for r in requests)
    return RequestCounts(len(requests), delivery["delivered"], delivery["pending"],
                         delivery["failed"], status["open"], status["taken"], status["done"],
                         status["declined"])


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when is not None else None
