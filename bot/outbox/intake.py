"""A submitted request: stored with everything it must deliver before anyone is told it went.

    form submitted ──▶ answers checked (`bot.outbox.forms`)
                   ──▶ ONE transaction: the request (offering as it was, answers, requester)
                       + an outbox item per destination (the owner's channel, the owner, a
                       webhook) + the requester's receipt
                   ──▶ the courier is woken; the person sees the request number
    database down  ──▶ `StoreUnavailable`: nothing was stored, nothing is sent; the person
                       is asked to try again with their answers still in the form

    owner's button ──▶ ONE transaction: the status (only from a state it may leave) + the
                       requester's notice; then the courier is woken

Nothing is sent from here: the courier delivers what was stored, so a worker that dies at
any point leaves either nothing (not stored, the person was told) or a stored request that
another worker delivers.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.catalogue.models import Offering
from bot.outbox.forms import Answer
from bot.store.recorder import BestEffort
from bot.store.requests import (
    ItemRow,
    NewItem,
    NewRequest,
    RequestBook,
    RequestRow,
    RequestWithItems,
    Submitted,
)

# Outbox item kinds.
MESSAGE = "message"
"""The request as a Slack message with the owner's buttons, in a channel or a user's DM."""
WEBHOOK = "webhook"
NOTICE = "notice"
"""A direct message to a person about a request."""

# What an item is for.
REQUEST = "request"
RECEIPT = "receipt"
STATUS = "status"
FAILURE = "failure"
"""To the requester: a destination could not be reached."""
ALERT = "alert"
"""To an admin: the same."""

_CHANNEL = re.compile(r"[CG][A-Z0-9]{6,}|#[a-z0-9][a-z0-9._-]*")


class Status(enum.StrEnum):
    """Where the owner has taken a request (their buttons on its message)."""

    OPEN = "open"
    TAKEN = "taken"
    DONE = "done"
    DECLINED = "declined"

    @property
    def final(self) -> bool:
        return self in (Status.DONE, Status.DECLINED)


# The states each change may leave: a stale button (pressed by a second owner after the first
# closed the request) changes nothing.
ALLOWED_FROM: Mapping[Status, tuple[Status, ...]] = {
    Status.TAKEN: (Status.OPEN,),
    Status.DONE: (Status.OPEN, Status.TAKEN),
    Status.DECLINED: (Status.OPEN, Status.TAKEN),
}
MAX_REASON_CHARS = 1000


@dataclass(frozen=True, slots=True)
class Requester:
    user_id: str
    name: str | None = None
    team_id: str | None = None


@dataclass(frozen=True, slots=True)
class Destination:
    """Where a request goes: a Slack `message` to a channel or user, or a `webhook`."""

    kind: str
    target: str

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "target": self.target}


def destinations(offering: Offering) -> tuple[Destination, ...]:
    """The offering's `deliver_to`, the owner contact resolved, each place once."""
    deliver_to = offering.request.deliver_to
    if deliver_to is None:
        return ()
    found: list[Destination] = []
    if deliver_to.channel:
        found.append(Destination(MESSAGE, deliver_to.channel))
    contact = offering.owner.contact
    if deliver_to.owner and contact and Destination(MESSAGE, contact) not in found:
        found.append(Destination(MESSAGE, contact))
    if deliver_to.webhook:
        found.append(Destination(WEBHOOK, deliver_to.webhook))
    return tuple(found)


def is_channel(target: str) -> bool:
    return bool(_CHANNEL.fullmatch(target))


@dataclass(frozen=True, slots=True)
class RequestDetails:
    """What a stored request says, read back from its JSON (tolerant of older rows)."""

    offering_id: str
    offering_name: str
    owner_team: str
    owner_contact: str | None
    cost: str | None
    service_level: str | None
    answers: tuple[Answer, ...]
    destinations: tuple[Destination, ...]
    question_id: int | None

    @classmethod
    def of(cls, request: RequestRow) -> RequestDetails:
        data = request.details
        offering: Mapping[str, Any] = data.get("offering") or {}
        return cls(
            offering_id=request.offering_id,
            offering_name=str(offering.get("name") or request.offering_id),
            owner_team=str(offering.get("owner_team") or ""),
            owner_contact=offering.get("owner_contact"),
            cost=offering.get("cost"), service_level=offering.get("service_level"),
            answers=tuple(Answer.from_json(a) for a in data.get("answers") or ()),
            destinations=tuple(Destination(str(d.get("kind")), str(d.get("target")))
                               for d in data.get("destinations") or ()),
            question_id=data.get("question_id"))

    def offering_json(self) -> dict[str, Any]:
        """The offering as a webhook body carries it."""
        return {"id": self.offering_id, "name": self.offering_name,
                "owner_team": self.owner_team, "cost": self.cost,
                "service_level": self.service_level}


@dataclass(frozen=True, slots=True)
class StatusChange:
    """What pressing an owner's button did: `changed` False leaves `request` as it was."""

    changed: bool
    request: RequestRow
    items: tuple[ItemRow, ...] = ()
    """The request's outbox items: where its Slack messages are, to update them."""


class Intake:
    """Stores submitted requests and the owners' status changes, and wakes the courier."""

    def __init__(self, guard: BestEffort, *, wake: Callable[[], None] = lambda: None) -> None:
        self.guard = guard
        self.book = RequestBook(guard.store)
        self.wake = wake

    def submit(self, offering: Offering, answers: Sequence[Answer], requester: Requester, *,
               submission_key: str, question_id: int | None = None) -> Submitted:
        """Store the request and what it must deliver; raises `StoreUnavailable` (nothing
        stored) when the database fails. The same `submission_key` twice is one request."""
        places = destinations(offering)
        details = {
            "offering": {"name": offering.name, "owner_team": offering.owner.team,
                         "owner_contact": offering.owner.contact, "cost": offering.cost,
                         "service_level": offering.service_level},
            "answers": [a.to_json() for a in answers],
            "destinations": [d.to_json() for d in places],
            "question_id": question_id,
        }
        items = [NewItem(d.kind, d.target, REQUEST) for d in places]
        items.append(NewItem(NOTICE, requester.user_id, RECEIPT))
        new = NewRequest(submission_key=submission_key, offering_id=offering.id,
                         requester_id=requester.user_id, requester_name=requester.name,
                         team_id=requester.team_id, details=details)
        submitted = self.guard.must("storing a request",
                                    lambda: self.book.submit(new, items))
        self.wake()
        return submitted

    def find(self, request_id: int) -> RequestWithItems | None:
        """The request and its items; raises `StoreUnavailable` when the database fails."""
        return self.guard.must("reading a request", lambda: self.book.get(request_id))

    def change_status(self, request_id: int, to: Status, *, by: str,
                      reason: str | None = None) -> StatusChange | None:
        """Move the request to `to` and tell the requester (a notice in the outbox); None
        when there is no such request. Raises `StoreUnavailable` when the database fails."""
        if reason is not None:
            reason = reason.strip()[:MAX_REASON_CHARS] or None

        def change() -> StatusChange | None:
            found = self.book.get(request_id)
            if found is None:
                return None
            notice = NewItem(NOTICE, found.request.requester_id, STATUS,
                             {"status": to.value, "by": by, "reason": reason})
            changed = self.book.change_status(
                request_id, to=to.value, allowed_from=[s.value for s in ALLOWED_FROM[to]],
                by=by, reason=reason, notices=[notice])
            now = self.book.get(request_id)
            if now is None:
                return None
            return StatusChange(changed is not None, now.request, now.items)

        result = self.guard.must("changing a request's status", change)
        if result is not None and result.changed:
            self.wake()
        return result
