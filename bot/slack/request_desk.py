"""Requests as the Slack listeners meet them: one call per interaction, each returning what
to answer Slack with.

    Request button      ──▶ form(): the modal of a form offering (views.open), or None
    form submitted      ──▶ submit(): the `ack` — errors next to the fields, or the stored
                            request's confirmation (the courier then delivers it)
    Taken / Done        ──▶ press(): the status changed (the courier tells the requester),
                            the request's messages to update in place, or a note to the
                            presser alone (not theirs to press, already closed, no database)
    Decline             ──▶ press() opens the reason modal; decline() applies it

Nothing in a payload is trusted: ids are parsed, answers checked against the live form,
the presser checked by `OwnerPolicy` on every press.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from slack_sdk.models.views import View

from bot.errors import StoreUnavailable
from bot.live import LiveCatalogue
from bot.logs import content
from bot.outbox.forms import check_answers
from bot.outbox.intake import MESSAGE, Intake, RequestDetails, Requester, Status, destinations
from bot.slack.buttons import ButtonKeys, ButtonRefused
from bot.slack.owners import OwnerPolicy
from bot.slack.replies import Message
from bot.slack.request_replies import (
    ACTION_DECLINE,
    ACTION_DONE,
    ACTION_TAKEN,
    ANSWER_ACTION_ID,
    REASON_BLOCK_ID,
    FormMetadata,
    decline_modal,
    field_block_id,
    field_errors,
    form_digest,
    gone_view,
    request_message,
    request_modal,
    submitted_values,
    submitted_view,
)
from bot.store.recorder import Recorder
from bot.store.requests import ItemRow, RequestWithItems

log = logging.getLogger("concierge.requests")

_VIEW_ID = re.compile(r"V[A-Z0-9]{2,30}")
_REQUEST_ID = re.compile(r"[1-9][0-9]{0,17}")
DATABASE_DOWN = ("Concierge could not save your request just now, so nothing was sent. "
                 "Please try again in a minute; your answers are still here.")
PRESSES = {ACTION_TAKEN: Status.TAKEN, ACTION_DONE: Status.DONE}

Ack = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Pressed:
    """What an owner's press comes to: messages to update, a modal to open, a note."""

    updates: tuple[tuple[str, str], ...] = ()
    """(channel, ts) of the request's messages, to show `message` in place."""
    message: Message | None = None
    view: View | None = None
    note: str | None = None
    """For the presser alone (ephemeral)."""


class RequestDesk:
    def __init__(self, live: LiveCatalogue, intake: Intake, owners: OwnerPolicy,
                 recorder: Recorder | None = None, *,
                 buttons: ButtonKeys | None = None) -> None:
        self.live = live
        self.buttons = buttons or ButtonKeys.ephemeral()
        self.intake = intake
        self.owners = owners
        self.recorder = recorder

    # --- the requester --------------------------------------------------------------------

    def form(self, offering_id: str, value: str, *, user: str | None) -> View | None:
        """The modal for the Request button of `offering_id`'s card (None: no form). Anyone
        who sees the card may request the offering for themselves; the request is tied to
        the card's question only when its asker clicked (`bot.slack.buttons`)."""
        try:
            press = self.buttons.read(value, user)
            question_id, offering_id = press.question_id, press.offering_id
        except ButtonRefused:
            question_id = None
        offering = self.live.catalog.get(offering_id)
        if offering is None or not user:
            return None
        if self.recorder is not None:
            self.recorder.request_click(question_id, offering.id, user)
        if not offering.request.has_form:
            return None
        if offering.is_retired:
            return gone_view(f"{offering.name} is retired and can no longer be requested.")
        return request_modal(offering, destinations(offering), requester=user,
                             question_id=question_id)

    def submit(self, view: Mapping[str, Any], *, user: str | None, user_name: str | None,
               team: str | None) -> Ack:
        """The `ack` for a submitted request form."""
        meta = FormMetadata.load(view.get("private_metadata"))
        offering = self.live.catalog.get(meta.offering_id) if meta is not None else None
        if meta is None or offering is None or not offering.request.has_form or not user:
            return {"response_action": "update", "view": gone_view(
                "This offering is no longer in the catalogue, so it cannot be requested here. "
                "Ask me about it again to see what replaces it.")}
        form = offering.request.form
        if form_digest(form) != meta.form:
            # Reloaded while the form was open: show the new one rather than guess.
            return {"response_action": "update", "view": request_modal(
                offering, destinations(offering), requester=user, question_id=meta.question_id,
                note="This form changed while you were filling it in. Please check your "
                     "answers and send it again.")}
        checked = check_answers(form, submitted_values(view))
        if not checked.ok:
            return {"response_action": "errors", "errors": field_errors(checked.errors)}
        key = view.get("id")
        if not (isinstance(key, str) and _VIEW_ID.fullmatch(key)):
            return {"response_action": "errors",
                    "errors": {field_block_id(form[0].id): "This form cannot be sent; please "
                               "close it and press Request again."}}
        requester = Requester(user, user_name, team)
        try:
            submitted = self.intake.submit(offering, checked.answers, requester,
                                           submission_key=key, question_id=meta.question_id)
        except StoreUnavailable:
            log.warning("request for %s not stored: database unavailable", offering.id,
                        extra=content(user=user))
            return {"response_action": "errors",
                    "errors": {field_block_id(form[0].id): DATABASE_DOWN}}
        request = submitted.request
        log.info("request #%d for %s stored (%s)", request.id, offering.id,
                 "new" if submitted.created else "submitted again")
        return {"response_action": "update",
                "view": submitted_view(request.id, RequestDetails.of(request))}

    # --- the owner ------------------------------------------------------------------------

    def press(self, action_id: str, value: str, *, user: str | None,
              clicked: tuple[str, str] | None) -> Pressed:
        """An owner's button on a request's message (`clicked`: its channel and ts)."""
        found, refusal = self._authorised(value, user, clicked[0] if clicked else None)
        if found is None:
            return Pressed(note=refusal)
        request_id = found.request.id
        if action_id == ACTION_DECLINE:
            if Status(found.request.status).final:
                return self._closed(found, clicked)
            return Pressed(view=decline_modal(request_id, clicked[0] if clicked else None))
        status = PRESSES.get(action_id)
        if status is None:
            return Pressed(note="That button is not one of Concierge's.")
        return self._change(request_id, status, user or "", None, clicked)

    def decline(self, view: Mapping[str, Any], *, user: str | None) -> tuple[Ack, Pressed]:
        """The reason modal was submitted: (the `ack`, what to update)."""
        try:
            meta = json.loads(str(view.get("private_metadata") or ""))
        except ValueError:
            meta = None
        if not isinstance(meta, dict):
            return {"response_action": "errors",
                    "errors": {REASON_BLOCK_ID: "This form cannot be sent."}}, Pressed()
        values = ((view.get("state") or {}).get("values") or {}).get(REASON_BLOCK_ID) or {}
        reason = ((values.get(ANSWER_ACTION_ID) or {}).get("value") or "").strip()
        if not reason:
            return {"response_action": "errors",
                    "errors": {REASON_BLOCK_ID: "Please say why, for the requester."}}, Pressed()
        channel = meta.get("c") if isinstance(meta.get("c"), str) else None
        found, refusal = self._authorised(str(meta.get("r") or ""), user, channel)
        if found is None:
            return {"response_action": "errors",
                    "errors": {REASON_BLOCK_ID: refusal or "Not possible."}}, Pressed()
        pressed = self._change(found.request.id, Status.DECLINED, user or "", reason, None)
        if pressed.message is None:
            return {"response_action": "errors",
                    "errors": {REASON_BLOCK_ID: pressed.note or "Not possible."}}, Pressed()
        if pressed.note:  # someone else closed it meanwhile
            return {"response_action": "errors", "errors": {REASON_BLOCK_ID: pressed.note}}, (
                pressed)
        return {}, pressed

    def _authorised(self, value: str, user: str | None,
                    channel: str | None) -> tuple[RequestWithItems | None, str | None]:
        if not _REQUEST_ID.fullmatch(value):
            return None, "That button is not valid."
        try:
            found = self.intake.find(int(value))
        except StoreUnavailable:
            return None, ("Concierge cannot reach its database right now, so nothing changed. "
                          "Please try again in a minute.")
        if found is None:
            return None, (f"Request #{value} is no longer kept (requests are deleted after the "
                          "retention period).")
        details = RequestDetails.of(found.request)
        if not self.owners.may_act(user, details, found.items, channel):
            log.warning("refused a press on request #%d: not an owner", found.request.id,
                        extra=content(user=user))
            return None, (f"Only the owner of {details.offering_name} (members of the channel "
                          "it was sent to, the owner contact) and Concierge admins can change "
                          "this request.")
        return found, None

    def _change(self, request_id: int, status: Status, user: str, reason: str | None,
                clicked: tuple[str, str] | None) -> Pressed:
        try:
            change = self.intake.change_status(request_id, status, by=user, reason=reason)
        except StoreUnavailable:
            return Pressed(note="Concierge cannot reach its database right now, so nothing "
                                "changed. Please try again in a minute.")
        if change is None:
            return Pressed(note=f"Request #{request_id} is no longer kept.")
        log.info("request #%d %s%s", request_id, status.value,
                 "" if change.changed else " (no change: it was already "
                 f"{change.request.status})", extra=content(by=user))
        updates = _locations(change.items, clicked)
        note = None if change.changed else (
            f"Request #{request_id} is already {change.request.status}.")
        return Pressed(updates, request_message(change.request), note=note)

    def _closed(self, found: RequestWithItems, clicked: tuple[str, str] | None) -> Pressed:
        request = found.request
        return Pressed(_locations(found.items, clicked), request_message(request),
                       note=f"Request #{request.id} is already {request.status}.")


def _locations(items: tuple[ItemRow, ...],
               clicked: tuple[str, str] | None) -> tuple[tuple[str, str], ...]:
    """Every message of the request, and the one clicked (its delivery may not be recorded
    yet when the owner is very quick)."""
    found = [(i.message_channel, i.message_ts) for i in items
             if i.kind == MESSAGE and i.state == "delivered" and i.message_channel
             and i.message_ts]
    places = [(str(c), str(t)) for c, t in found]
    if clicked is not None and clicked not in places:
        places.append(clicked)
    return tuple(places)
