"""Block Kit for requests made in Slack: the form, its confirmation, the owner's message with
its buttons, the decline modal, and the direct messages about a request.

The rules of `bot.slack.replies` hold here too: every answer, name and reason is escaped
before it enters mrkdwn (an answer `<!channel>` never pings anyone), plain-text objects
carry text as typed, and long content is split, never cut. Only markup built here is live:
mentions of validated Slack ids (`<@U…>`, `<#C…>`) and dates.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    DatePickerElement,
    HeaderBlock,
    InputBlock,
    InputInteractiveElement,
    MarkdownTextObject,
    NumberInputElement,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
    StaticSelectElement,
    UserSelectElement,
)
from slack_sdk.models.views import View

from bot.catalogue.models import FieldType, FormField, Offering
from bot.outbox.forms import LONG_TEXT_LIMIT, TEXT_LIMIT, USER_ID, Answer
from bot.outbox.intake import (
    ALERT,
    FAILURE,
    MAX_REASON_CHARS,
    RECEIPT,
    STATUS,
    WEBHOOK,
    Destination,
    RequestDetails,
    Status,
)
from bot.slack.replies import (
    FIELD_TEXT_LIMIT,
    FIELDS_PER_SECTION,
    HEADER_TEXT_LIMIT,
    MESSAGE_BLOCK_LIMIT,
    MODAL_TITLE_LIMIT,
    Message,
    contact_mrkdwn,
    escape,
    split_text,
)
from bot.store.requests import RequestRow

REQUEST_CALLBACK_ID = "concierge_request"
DECLINE_CALLBACK_ID = "concierge_decline"
ANSWER_ACTION_ID = "answer"
FIELD_BLOCK_PREFIX = "field:"
ACTION_TAKEN = "request_taken"
ACTION_DONE = "request_done"
ACTION_DECLINE = "request_decline"
OWNER_ACTIONS = (ACTION_TAKEN, ACTION_DONE, ACTION_DECLINE)
REASON_BLOCK_ID = "reason"
REQUEST_MESSAGE_TYPE = "concierge_request"
"""The metadata `event_type` of a request's message in the owner's channel."""
OPTION_VALUE_LIMIT = 150
_CHANNEL_ID = re.compile(r"[CG][A-Z0-9]{6,}")

STATUS_WORDS = {
    Status.OPEN: ":inbox_tray: Open: nobody has taken it yet.",
    Status.TAKEN: ":hammer_and_wrench: Taken by {by}",
    Status.DONE: ":white_check_mark: Done ({by})",
    Status.DECLINED: ":no_entry_sign: Declined by {by}",
}


# --- the form ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FormMetadata:
    """What a request modal carries back to its submission (`private_metadata`)."""

    offering_id: str
    question_id: int | None
    form: str
    """A digest of the form it was built from: a reload that changed the form meanwhile
    is noticed, not answered with a mismatched set of answers."""

    def dump(self) -> str:
        return json.dumps({"o": self.offering_id, "q": self.question_id, "f": self.form},
                          separators=(",", ":"))

    @classmethod
    def load(cls, text: object) -> FormMetadata | None:
        try:
            data = json.loads(str(text))
        except ValueError:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("o"), str):
            return None
        question = data.get("q")
        return cls(data["o"], question if isinstance(question, int) else None,
                   str(data.get("f") or ""))


def form_digest(form: Sequence[FormField]) -> str:
    shape = [[f.id, f.label, f.type.value, f.required, list(f.options)] for f in form]
    return hashlib.sha256(json.dumps(shape).encode()).hexdigest()[:16]


def _title(text: str) -> PlainTextObject:
    short = text if len(text) <= MODAL_TITLE_LIMIT else text[: MODAL_TITLE_LIMIT - 1] + "…"
    return PlainTextObject(text=short, emoji=False)


def field_block_id(field_id: str) -> str:
    return f"{FIELD_BLOCK_PREFIX}{field_id}"


def _element(spec: FormField, requester: str) -> InputInteractiveElement:
    if spec.type is FieldType.LONG_TEXT:
        return PlainTextInputElement(action_id=ANSWER_ACTION_ID, multiline=True,
                                     max_length=LONG_TEXT_LIMIT)
    if spec.type is FieldType.NUMBER:
        return NumberInputElement(action_id=ANSWER_ACTION_ID, is_decimal_allowed=True)
    if spec.type is FieldType.DATE:
        return DatePickerElement(action_id=ANSWER_ACTION_ID)
    if spec.type is FieldType.CHOICE:
        return StaticSelectElement(action_id=ANSWER_ACTION_ID, placeholder="Choose one",
                                   options=[Option(text=o, value=o[:OPTION_VALUE_LIMIT])
                                            for o in spec.options])
    if spec.type is FieldType.USER:
        # "For whom": most people request for themselves.
        return UserSelectElement(action_id=ANSWER_ACTION_ID, initial_user=requester)
    return PlainTextInputElement(action_id=ANSWER_ACTION_ID, max_length=TEXT_LIMIT)


def destination_mrkdwn(place: Destination, owner_team: str) -> str:
    """Where a request went, as the requester reads it."""
    if place.kind == WEBHOOK:
        return f"the request tool of {escape(owner_team)} ({escape(place.target)})"
    if _CHANNEL_ID.fullmatch(place.target) or USER_ID.fullmatch(place.target):
        return contact_mrkdwn(place.target)
    return escape(place.target)


def _places(places: Sequence[Destination], owner_team: str) -> str:
    return ", ".join(destination_mrkdwn(p, owner_team) for p in places)


def request_modal(offering: Offering, places: Sequence[Destination], *, requester: str,
                  question_id: int | None = None, note: str | None = None) -> View:
    """The form of `offering` as a modal, prefilled where Slack knows the answer."""
    facts = [f"Requested by <@{requester}>" if USER_ID.fullmatch(requester) else "",
             f"Goes to {_places(places, offering.owner.team)}"]
    if offering.cost:
        facts.append(f"Cost: {escape(offering.cost)}")
    if offering.service_level:
        facts.append(f"Service level: {escape(offering.service_level)}")
    blocks: list[Block] = []
    if note:
        blocks.append(_context(f":warning: {escape(note)}"))
    blocks += [SectionBlock(text=MarkdownTextObject(text=t)) for t in split_text(
        f"*{escape(offering.name)}*\n{escape(offering.summary)}")]
    blocks.append(_context(*(f for f in facts if f)))
    for spec in offering.request.form:
        blocks.append(InputBlock(
            block_id=field_block_id(spec.id), label=PlainTextObject(text=spec.label),
            element=_element(spec, requester), optional=not spec.required,
            hint=PlainTextObject(text=spec.help) if spec.help else None))
    return View(type="modal", callback_id=REQUEST_CALLBACK_ID,
                title=_title(f"Request {offering.name}"),
                submit=PlainTextObject(text="Send request"),
                close=PlainTextObject(text="Cancel"),
                private_metadata=FormMetadata(offering.id, question_id,
                                              form_digest(offering.request.form)).dump(),
                blocks=blocks)


def submitted_values(view: Mapping[str, Any]) -> dict[str, str | None]:
    """Field id → the raw answer from a submitted modal's state, whatever the element."""
    values: dict[str, str | None] = {}
    state = ((view.get("state") or {}).get("values") or {}) if isinstance(view, Mapping) else {}
    if not isinstance(state, Mapping):
        return values
    for block_id, actions in state.items():
        if not (isinstance(block_id, str) and block_id.startswith(FIELD_BLOCK_PREFIX)):
            continue
        action = actions.get(ANSWER_ACTION_ID) if isinstance(actions, Mapping) else None
        values[block_id.removeprefix(FIELD_BLOCK_PREFIX)] = _raw(action)
    return values


def _raw(action: Any) -> str | None:
    if not isinstance(action, Mapping):
        return None
    for key in ("value", "selected_date", "selected_user"):
        if isinstance(action.get(key), str):
            return str(action[key])
    option = action.get("selected_option")
    if isinstance(option, Mapping) and isinstance(option.get("value"), str):
        return str(option["value"])
    return None


def field_errors(errors: Mapping[str, str]) -> dict[str, str]:
    """Errors by field id as Slack shows them next to the fields (`response_action: errors`)."""
    return {field_block_id(field_id): message for field_id, message in errors.items()}


def submitted_view(request_id: int, details: RequestDetails) -> View:
    """What the modal turns into once the request is stored."""
    text = (f":white_check_mark: *Request #{request_id}* for *{escape(details.offering_name)}* "
            f"is on its way to {_places(details.destinations, details.owner_team)}.\n"
            "I'll send you a direct message with it, and again when the owner takes it, "
            "finishes it or declines it.")
    return View(type="modal", title=_title("Request sent"), close=PlainTextObject(text="Done"),
                blocks=[SectionBlock(text=MarkdownTextObject(text=t))
                        for t in split_text(text)])


def gone_view(why: str) -> View:
    return View(type="modal", title=_title("Cannot request this"),
                close=PlainTextObject(text="Close"),
                blocks=[SectionBlock(text=MarkdownTextObject(text=escape(why)))])


# --- the owner's message ----------------------------------------------------------------


def _context(*texts: str) -> ContextBlock:
    pieces = [p for t in texts if t for p in split_text(t)]
    return ContextBlock(elements=[MarkdownTextObject(text=p) for p in pieces][:10])


def slack_date(when: datetime) -> str:
    """A date Slack shows in each reader's own time zone, with a UTC fallback."""
    return (f"<!date^{int(when.timestamp())}^{{date_short_pretty}} {{time}}|"
            f"{when:%Y-%m-%d %H:%M} UTC>")


def answer_mrkdwn(answer: Answer) -> str:
    if answer.value is None:
        return "_(no answer)_"
    if answer.type is FieldType.USER and USER_ID.fullmatch(answer.value):
        return f"<@{answer.value}>"
    return escape(answer.value)


def answer_blocks(answers: Sequence[Answer]) -> list[Block]:
    """Answers as section fields, ten to a section; a long one in sections of its own."""
    short: list[str] = []
    long: list[str] = []
    for answer in answers:
        text = f"*{escape(answer.label)}*\n{answer_mrkdwn(answer)}"
        (short if len(text) <= FIELD_TEXT_LIMIT else long).append(text)
    blocks: list[Block] = [
        SectionBlock(fields=[MarkdownTextObject(text=t)
                             for t in short[i:i + FIELDS_PER_SECTION]])
        for i in range(0, len(short), FIELDS_PER_SECTION)]
    for text in long:
        blocks += [SectionBlock(text=MarkdownTextObject(text=t)) for t in split_text(text)]
    return blocks


def status_mrkdwn(request: RequestRow) -> str:
    status = Status(request.status)
    by = (f"<@{request.status_by}>" if request.status_by and USER_ID.fullmatch(request.status_by)
          else "an owner")
    line = STATUS_WORDS[status].format(by=by)
    if status is not Status.OPEN and request.status_at is not None:
        line += f", {slack_date(request.status_at)}"
    if status is Status.DECLINED and request.status_reason:
        line += "\n" + quoted(request.status_reason)
    return line


def quoted(text: str) -> str:
    """`text` escaped, every line of it a mrkdwn quote."""
    return "\n".join(f">{escape(line)}" for line in text.splitlines() or [""])


def request_message(request: RequestRow) -> Message:
    """The request as its owner sees it: who asked, what, the answers, cost and service
    level, its status, and the buttons that move it on (none once it is closed)."""
    details = RequestDetails.of(request)
    title = f"Request #{request.id}: {details.offering_name}"
    blocks: list[Block] = []
    if len(title) <= HEADER_TEXT_LIMIT:
        blocks.append(HeaderBlock(text=PlainTextObject(text=title, emoji=False)))
    else:
        blocks += [SectionBlock(text=MarkdownTextObject(text=t))
                   for t in split_text(f"*{escape(title)}*")]
    requester = (f"<@{request.requester_id}>" if USER_ID.fullmatch(request.requester_id)
                 else escape(request.requester_id))
    blocks.append(SectionBlock(text=MarkdownTextObject(
        text=f"From {requester}, {slack_date(request.submitted_at)}")))
    blocks += answer_blocks(details.answers)
    facts = [f"Cost: {escape(details.cost)}" if details.cost else "",
             f"Service level: {escape(details.service_level)}" if details.service_level
             else "", f"Offering: `{escape(details.offering_id)}`"]
    blocks.append(_context(*facts))
    blocks += [SectionBlock(text=MarkdownTextObject(text=t))
               for t in split_text(status_mrkdwn(request))]
    status = Status(request.status)
    if not status.final:
        value = str(request.id)
        buttons = []
        if status is Status.OPEN:
            buttons.append(ButtonElement(text="Taken", action_id=ACTION_TAKEN, value=value))
        buttons.append(ButtonElement(
            text="Done", action_id=ACTION_DONE, value=value, style="primary",
            confirm=ConfirmObject(title="Mark it done?", text=f"Request #{request.id} is "
                                  "closed and the requester is told it is done.",
                                  confirm="Done", deny="Not yet")))
        buttons.append(ButtonElement(text="Decline", action_id=ACTION_DECLINE, value=value,
                                     style="danger"))
        blocks.append(ActionsBlock(block_id="owner", elements=buttons))
    text = escape(f"Request #{request.id} for {details.offering_name} from "
                  f"{request.requester_name or request.requester_id}")
    return Message(text, tuple(_fit(blocks)))


def _fit(blocks: list[Block]) -> list[Block]:
    if len(blocks) <= MESSAGE_BLOCK_LIMIT:
        return blocks
    # Keep the status and buttons (last two): they are what the owner acts on.
    kept = [*blocks[: MESSAGE_BLOCK_LIMIT - 3], _context(
        ":warning: Some answers did not fit in one Slack message; `concierge requests --json` "
        "lists the request.")]
    return [*kept, *blocks[-2:]]


def decline_modal(request_id: int, channel: str | None) -> View:
    return View(
        type="modal", callback_id=DECLINE_CALLBACK_ID, title=_title(f"Decline #{request_id}"),
        submit=PlainTextObject(text="Decline"), close=PlainTextObject(text="Cancel"),
        private_metadata=json.dumps({"r": request_id, "c": channel}, separators=(",", ":")),
        blocks=[InputBlock(
            block_id=REASON_BLOCK_ID, label="Why is it declined?",
            hint="The requester gets this in a direct message.",
            element=PlainTextInputElement(action_id=ANSWER_ACTION_ID, multiline=True,
                                          max_length=MAX_REASON_CHARS))])


# --- direct messages --------------------------------------------------------------------


def notice_message(request: RequestRow, purpose: str,
                   payload: Mapping[str, Any] | None) -> Message:
    """The direct message about `request` for one outbox `purpose`."""
    details = RequestDetails.of(request)
    name = escape(details.offering_name)
    number = f"#{request.id}"
    data = payload or {}
    if purpose == RECEIPT:
        text = (f":outbox_tray: Your request *{number}* for *{name}* went to "
                f"{_places(details.destinations, details.owner_team)}. I'll tell you here when "
                "the owner takes it, finishes it or declines it.")
        blocks: list[Block] = [*_sections(text), *answer_blocks(details.answers)]
        return Message(escape(f"Request {number} for {details.offering_name} sent"),
                       tuple(_fit(blocks)))
    if purpose == STATUS:
        status = Status(str(data.get("status") or "open"))
        by = data.get("by")
        who = f"<@{by}>" if isinstance(by, str) and USER_ID.fullmatch(by) else "The owner"
        lines = {
            Status.TAKEN: f":hammer_and_wrench: {who} took your request *{number}* for "
                          f"*{name}*.",
            Status.DONE: f":white_check_mark: Your request *{number}* for *{name}* is done "
                         f"({who}).",
            Status.DECLINED: f":no_entry_sign: {who} declined your request *{number}* for "
                             f"*{name}*.",
            Status.OPEN: f"Your request *{number}* for *{name}* is open again.",
        }
        text = lines[status]
        reason = data.get("reason")
        if status is Status.DECLINED and isinstance(reason, str) and reason:
            text += "\n" + quoted(reason)
        return Message(escape(f"Request {number}: {status.value}"), tuple(_sections(text)))
    place = Destination(str(data.get("kind") or ""), str(data.get("target") or ""))
    where = destination_mrkdwn(place, details.owner_team)
    if purpose == FAILURE:
        contact = (f" ({contact_mrkdwn(details.owner_contact)})" if details.owner_contact
                   else "")
        text = (f":warning: Your request *{number}* for *{name}* could not be delivered to "
                f"{where}. Concierge's admins have been told. To be sure it is not lost, "
                f"please contact {escape(details.owner_team)}{contact} about it.")
        return Message(escape(f"Request {number} could not be delivered"),
                       tuple(_sections(text)))
    if purpose == ALERT:
        requester = (f"<@{request.requester_id}>" if USER_ID.fullmatch(request.requester_id)
                     else escape(request.requester_id))
        error = escape(str(data.get("error") or "unknown error"))
        text = (f":rotating_light: Request *{number}* ({name}, from {requester}) could not be "
                f"delivered to {where}: {error}.\nThe requester was told. "
                "`concierge requests --days 1` lists every request and where it went.")
        return Message(escape(f"Request {number} undeliverable"), tuple(_sections(text)))
    raise ValueError(f"no direct message for purpose {purpose!r}")


def _sections(text: str) -> list[Block]:
    return [SectionBlock(text=MarkdownTextObject(text=t)) for t in split_text(text)]
