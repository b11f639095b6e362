"""Block Kit messages and views for every Slack surface, built from core values.

Everything Slack shows is built here with `slack_sdk.models` classes (which
validate Slack's limits when serialised), so handlers only decide *where* a reply
goes. Two rules hold throughout:

- Text that came from a person or from the catalogue is escaped (`&`, `<`, `>`)
  before it enters mrkdwn: `<!channel>` typed by a user never becomes a live
  mention. Only the markup built here (owner mentions, links) is live.
- Text that echoes what a person typed (their question, how it was read) is also
  `verbatim`: Slack then leaves `@here`, `#channel` and bare URLs in it as typed,
  instead of turning them into mentions and links on its own.
- Long content is split across blocks, never cut silently; when a message would
  exceed Slack's block limit, its last block says what was left out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    InputBlock,
    MarkdownTextObject,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from bot.catalogue.models import Catalog, Decision, DecisionKind, Lifecycle, Offering
from bot.matching.thresholds import MAX_QUERY_CHARS
from bot.slack.buttons import CardButtons

# Slack's limits (https://docs.slack.dev/reference/block-kit/blocks).
SECTION_TEXT_LIMIT = 3000
FIELD_TEXT_LIMIT = 2000
FIELDS_PER_SECTION = 10
HEADER_TEXT_LIMIT = 150
BUTTON_TEXT_LIMIT = 75
MESSAGE_BLOCK_LIMIT = 50
VIEW_BLOCK_LIMIT = 100
MODAL_TITLE_LIMIT = 24
# A question is echoed back only so the reader knows what was asked; the card itself
# is what matters, so a long question is shortened (visibly) rather than split.
ECHO_LIMIT = 200

# Interaction identifiers: the handlers route on these.
ACTION_CHOOSE_PREFIX = "choose_offering_"
ACTION_CHOOSE_RE = re.compile(r"^choose_offering_\d+$")
ACTION_CHOOSE_NONE = "choose_none"
ACTION_HELPFUL = "feedback_helpful"
ACTION_NOT_HELPFUL = "feedback_not_helpful"
ACTION_REQUEST_PREFIX = "request_offering"
ACTION_REQUEST_RE = re.compile(r"^request_offering(:.*)?$")
# The Request button of an offering with a form in Slack: it opens the form.
ACTION_REQUEST_FORM_PREFIX = "open_request_form"
ACTION_REQUEST_FORM_RE = re.compile(r"^open_request_form(:.*)?$")
ACTION_SERVICE_DESK = "open_service_desk"
ACTION_OPEN_SEARCH = "open_search"
FEEDBACK_BLOCK_ID = "feedback"
SEARCH_CALLBACK_ID = "concierge_search"
SEARCH_BLOCK_ID = "need"
SEARCH_INPUT_ID = "need"
# What a "None of these" button's value names in place of an offering (an offering may be
# called `none` too: the button's action id tells the two apart).
NONE_OF_THESE = "none"
SERVICE_DESK_TEXT = "Ask the IT service desk, and we'll note that the catalogue is missing this."


@dataclass(frozen=True, slots=True)
class ServiceDesk:
    """Where to send people when the catalogue has no answer (configurable per company)."""

    text: str = SERVICE_DESK_TEXT
    url: str | None = None


@dataclass(frozen=True, slots=True)
class Message:
    """A chat message: Block Kit blocks plus the plain `text` used in notifications."""

    text: str
    blocks: tuple[Block, ...]

    def payload(self) -> dict[str, Any]:
        """Keyword arguments for `chat.postMessage`, `chat.update` and `respond`."""
        return {"text": self.text, "blocks": [b.to_dict() for b in self.blocks]}


# --- text -----------------------------------------------------------------------------


def escape(text: str) -> str:
    """Slack's three control characters as entities, so text shows as typed."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_TOKEN = re.compile(r"<([^<>]*)>")


def slack_to_plain(text: str, *, strip_user: str | None = None) -> str:
    """A message's Slack-formatted text as the words a person typed.

    `<@U123|ann>` becomes `@ann`, `<!channel>` becomes `@channel`, links become their
    label, entities are decoded; `strip_user` (the bot's own user id) is removed, so
    "@Concierge my laptop is broken" reads "my laptop is broken".
    """

    def token(match: re.Match[str]) -> str:
        inner = match.group(1)
        target, _, label = inner.partition("|")
        if target.startswith("@"):
            if strip_user and target[1:] == strip_user:
                return ""
            return "@" + (label or target[1:])
        if target.startswith("#"):
            return "#" + (label or target[1:])
        if target.startswith("!"):
            name = target[1:].split("^", 1)[0]
            return label if label.startswith("@") else "@" + (label or name)
        return label or target.removeprefix("mailto:")

    plain = _TOKEN.sub(token, text)
    plain = plain.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return " ".join(plain.split())


def _echo(query: str) -> str:
    short = " ".join(query.split())
    if len(short) > ECHO_LIMIT:
        short = short[: ECHO_LIMIT - 1].rstrip() + "…"
    return f"“{escape(short)}”"


def split_text(text: str, limit: int = SECTION_TEXT_LIMIT) -> list[str]:
    """Escaped mrkdwn `text` in pieces of at most `limit` characters.

    Cuts at a line break, else a space, and never inside an entity such as `&amp;`.
    """
    pieces: list[str] = []
    rest = text
    while len(rest) > limit:
        window = rest[:limit]
        cut = max(window.rfind("\n"), window.rfind(" "))
        if cut <= limit // 2:
            cut = limit
        amp = window.rfind("&", 0, cut)
        if amp != -1 and ";" not in window[amp:cut] and amp > 0:
            cut = amp
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest or not pieces:
        pieces.append(rest)
    return pieces


def contact_mrkdwn(contact: str) -> str:
    """An owner contact as Slack shows it: IDs become live mentions, emails mail links."""
    if re.fullmatch(r"[UW][A-Z0-9]{6,}", contact):
        return f"<@{contact}>"
    if re.fullmatch(r"S[A-Z0-9]{6,}", contact):
        return f"<!subteam^{contact}>"
    if re.fullmatch(r"[CG][A-Z0-9]{6,}", contact):
        return f"<#{contact}>"
    if "@" in contact and not contact.startswith("#") and "|" not in contact:
        return f"<mailto:{escape(contact)}|{escape(contact)}>"
    return escape(contact)


def owner_mrkdwn(offering: Offering) -> str:
    team = escape(offering.owner.team)
    if offering.owner.contact:
        return f"{team} · {contact_mrkdwn(offering.owner.contact)}"
    return team


def _label(text: str, limit: int = BUTTON_TEXT_LIMIT) -> str:
    """Button and header text; the full text is always shown elsewhere on the card."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# --- blocks ---------------------------------------------------------------------------


def _sections(text: str, *, verbatim: bool = False, **first: Any) -> list[Block]:
    """`text` as one section, or several when it is longer than a section may be;
    `verbatim` when it echoes what someone typed."""
    blocks: list[Block] = []
    for n, piece in enumerate(split_text(text)):
        extra = first if n == 0 else {}
        blocks.append(SectionBlock(text=_mrkdwn(piece, verbatim), **extra))
    return blocks


def _mrkdwn(text: str, verbatim: bool) -> MarkdownTextObject:
    # Slack's default (verbatim false) links URLs and #channel names and parses some
    # mentions by itself; for echoed input only what is built here may be live.
    return MarkdownTextObject(text=text, verbatim=True) if verbatim else MarkdownTextObject(
        text=text)


def _context(*texts: str, verbatim: bool = False) -> ContextBlock:
    pieces = [p for t in texts if t for p in split_text(t)]
    return ContextBlock(elements=[_mrkdwn(p, verbatim) for p in pieces])


def _fit(blocks: list[Block], limit: int) -> list[Block]:
    """At most `limit` blocks; what does not fit is announced, never dropped silently."""
    if len(blocks) <= limit:
        return blocks
    kept = blocks[: limit - 1]
    left = len(blocks) - len(kept)
    return [*kept, _context(f":warning: {left} more parts did not fit in one Slack message. "
                            "The full entry is in the catalogue.")]


def _feedback_block(offering: Offering, buttons: CardButtons) -> ActionsBlock:
    value = buttons.value(offering.id)
    return ActionsBlock(block_id=FEEDBACK_BLOCK_ID, elements=[
        ButtonElement(text="Helpful", action_id=ACTION_HELPFUL, value=value),
        ButtonElement(text="Not what I need", action_id=ACTION_NOT_HELPFUL, value=value),
    ])


def _field(label: str, value: str) -> str:
    return f"*{label}*\n{value}"


def offering_blocks(offering: Offering, catalog: Catalog, *, why: str | None = None,
                    asked: str | None = None, retired: Offering | None = None,
                    feedback: bool = True, buttons: CardButtons) -> list[Block]:
    """The answer card of one offering; `buttons` ties its buttons to the question and the
    person who asked it (`bot.slack.buttons`)."""
    blocks: list[Block] = []
    if len(offering.name) <= HEADER_TEXT_LIMIT:
        blocks.append(HeaderBlock(text=PlainTextObject(text=offering.name, emoji=False)))
    else:
        blocks += _sections(f"*{escape(offering.name)}*")
    if retired is not None:
        blocks += _sections(f":information_source: {retired_note(retired, offering)}")
    blocks += _sections(f"_{escape(offering.kind.explain())}_\n{escape(offering.summary)}")
    if offering.lifecycle is Lifecycle.PILOT:
        blocks.append(_context(":test_tube: Pilot: available to a limited group and may "
                               "still change."))
    if offering.description:
        blocks += _sections(escape(offering.description))
    if offering.includes:
        names = [catalog[i].name if i in catalog else i for i in offering.includes]
        blocks += _sections("*Includes*\n" + "\n".join(f"• {escape(n)}" for n in names))

    fields = [("Owner", owner_mrkdwn(offering))]
    for label, value in (("Cost", offering.cost), ("Service level", offering.service_level),
                         ("For", offering.audience)):
        if value:
            fields.append((label, escape(value)))
    short = [_field(k, v) for k, v in fields if len(_field(k, v)) <= FIELD_TEXT_LIMIT]
    long = [_field(k, v) for k, v in fields if len(_field(k, v)) > FIELD_TEXT_LIMIT]
    blocks.append(SectionBlock(fields=[MarkdownTextObject(text=f) for f in short]))
    for text in long:
        blocks += _sections(text)

    if offering.request.steps:
        blocks += _sections(_field("How to request", escape(offering.request.steps)))
    request_buttons = []
    if offering.request.has_form and not offering.is_retired:
        # Requested right here: the button opens the offering's form in a modal.
        request_buttons.append(ButtonElement(
            text="Request", style="primary", value=buttons.value(offering.id),
            action_id=f"{ACTION_REQUEST_FORM_PREFIX}:{offering.id}"[:255]))
    if offering.request.url:
        request_buttons.append(ButtonElement(
            text="Request" if not request_buttons else "Open the request portal",
            url=offering.request.url, style=None if request_buttons else "primary",
            value=buttons.value(offering.id),
            action_id=f"{ACTION_REQUEST_PREFIX}:{offering.id}"[:255]))
    if request_buttons:
        blocks.append(ActionsBlock(block_id="request", elements=request_buttons))
    context = []
    if asked:
        context.append(f"You asked: {_echo(asked)}")
    if why:
        context.append(escape(why))
    if context:
        blocks.append(_context(*context, verbatim=True))
    if feedback:
        blocks.append(_feedback_block(offering, buttons))
    return blocks


def _fallback(offering: Offering) -> str:
    text = f"{offering.name} ({offering.kind.value}): {offering.summary}"
    if offering.request.url:
        text += f" Request: {offering.request.url}"
    return escape(text)


def answer_message(offering: Offering, catalog: Catalog, *, buttons: CardButtons,
                   why: str | None = None, asked: str | None = None,
                   retired: Offering | None = None) -> Message:
    blocks = offering_blocks(offering, catalog, why=why, asked=asked, retired=retired,
                             buttons=buttons)
    text = _fallback(offering)
    if retired is not None:
        text = escape(f"{retired.name} is retired. ") + text
    return Message(text, tuple(_fit(blocks, MESSAGE_BLOCK_LIMIT)))


def clarify_message(decision: Decision, buttons: CardButtons) -> Message:
    """"Did you mean…": one button per candidate; a click replaces this card."""
    choices = decision.choices
    blocks = _sections(f"Did you mean one of these? You asked: {_echo(decision.query)}",
                       verbatim=True)
    for n, offering in enumerate(choices):
        blocks += _sections(
            f"*{escape(offering.name)}* · {offering.kind.value}\n{escape(offering.summary)}",
            accessory=ButtonElement(text=_label(offering.name),
                                    value=buttons.value(offering.id),
                                    action_id=f"{ACTION_CHOOSE_PREFIX}{n}"))
    blocks.append(ActionsBlock(block_id="choose_none", elements=[
        ButtonElement(text="None of these", action_id=ACTION_CHOOSE_NONE,
                      value=buttons.value(NONE_OF_THESE))]))
    blocks.append(_context(escape(decision.why), verbatim=True))
    names = ", ".join(o.name for o in choices)
    return Message(escape(f"Did you mean one of these: {names}?"),
                   tuple(_fit(blocks, MESSAGE_BLOCK_LIMIT)))


def none_message(query: str | None, desk: ServiceDesk, *, why: str | None = None) -> Message:
    """Nothing fits: say so plainly and point to the service desk."""
    head = (f"I don't know an offering for {_echo(query)}." if query
            else "I don't know an offering for that.")
    blocks: list[Block] = _sections(f"{head}\n{escape(desk.text)}", verbatim=True)
    if desk.url:
        blocks.append(ActionsBlock(block_id="service_desk", elements=[ButtonElement(
            text="Contact the service desk", url=desk.url, action_id=ACTION_SERVICE_DESK)]))
    if why:
        blocks.append(_context(escape(why), verbatim=True))
    return Message(escape(f"I don't know an offering for that. {desk.text}"), tuple(blocks))


def decision_message(decision: Decision, catalog: Catalog, desk: ServiceDesk,
                     buttons: CardButtons) -> Message:
    """The reply to a question, whatever the matcher decided; `buttons` carry the
    question's record and its asker, so that clicks are tied to both."""
    if decision.kind is DecisionKind.ANSWER and decision.offering is not None:
        return answer_message(decision.offering, catalog, why=decision.why,
                              asked=decision.query, retired=decision.retired,
                              buttons=buttons)
    if decision.kind is DecisionKind.CLARIFY and len(decision.choices) >= 2:
        return clarify_message(decision, buttons)
    return none_message(decision.query, desk, why=decision.why)


def chosen_message(offering: Offering, catalog: Catalog, buttons: CardButtons) -> Message:
    """The card shown in place of a "Did you mean…" after the user picked `offering`."""
    live = catalog.live_replacement(offering) if offering.is_retired else offering
    if live is None:
        return Message(escape(f"{offering.name} is retired and has no replacement."),
                       tuple(_sections(f"*{escape(offering.name)}* is retired and has no "
                                       "replacement. Ask the IT service desk.")))
    retired = offering if live is not offering else None
    return answer_message(live, catalog, why="You picked this from the suggestions.",
                          retired=retired, buttons=buttons)


def feedback_note(helpful: bool, user_id: str | None) -> str:
    who = f"<@{user_id}>" if user_id and re.fullmatch(r"[UW][A-Z0-9]+", user_id) else "you"
    if helpful:
        return f":white_check_mark: Thanks, {who}: glad it helped."
    return (f":memo: Thanks, {who}: noted that this was not what you needed. "
            "Try asking in other words, or ask the IT service desk.")


def with_feedback_acknowledged(blocks: Sequence[dict[str, Any]], helpful: bool,
                               user_id: str | None) -> list[dict[str, Any]]:
    """A posted card's blocks with the feedback buttons replaced by a thank-you line."""
    note = _context(feedback_note(helpful, user_id)).to_dict()
    note["block_id"] = FEEDBACK_BLOCK_ID
    out = [note if b.get("block_id") == FEEDBACK_BLOCK_ID else dict(b) for b in blocks]
    return out if any(b.get("block_id") == FEEDBACK_BLOCK_ID for b in blocks) else [*out, note]


HELP_TEXT = (
    "Tell me what you need in plain words and I'll find the IT offering for it: whether it "
    "is a product or a service, who owns it, and how to request it.\n"
    "• *Direct message:* just write to me here.\n"
    "• *In a channel:* mention me, e.g. `@Concierge my laptop is too slow`; I answer in "
    "the thread.\n"
    "• *Anywhere:* `/concierge I need access to the VPN` answers only you.\n"
    "• *App Home:* browse the catalogue by category or search it."
)


def note_blocks(text: str) -> list[Block]:
    """A short note in one section (text built here, Slack markup allowed)."""
    return _sections(text)


def help_message() -> Message:
    blocks: list[Block] = [*_sections(HELP_TEXT), _context(
        "Examples: “I spilled coffee on my keyboard” · “a new colleague starts on Monday” · "
        "“I can't reach the intranet from home”")]
    return Message("Tell me what you need in plain words and I'll find the IT offering for it.",
                   tuple(blocks))


def retired_note(retired: Offering, replacement: Offering) -> str:
    """The line on a replacement's card when the question matched a retired offering."""
    return f"*{escape(retired.name)}* is retired; *{escape(replacement.name)}* replaces it."


# --- views ----------------------------------------------------------------------------


def link(url: str, label: str) -> str:
    """A mrkdwn link; `label` is already escaped. A `|` in the URL cannot be linked safely."""
    if "|" in url:
        return f"{label} ({escape(url)})"
    return f"<{escape(url)}|{label}>"


def _catalogue_line(offering: Offering) -> str:
    name = escape(offering.name)
    title = link(offering.request.url, name) if offering.request.url else name
    line = (f"*{title}* · _{offering.kind.value}_\n{escape(offering.summary)}\n"
            f"Owner: {owner_mrkdwn(offering)}")
    if not offering.request.url and offering.request.steps:
        line += f"\nHow to request: {escape(offering.request.steps)}"
    if offering.request.has_form:
        line += "\nRequest it right here: ask me for it and press *Request*."
    return line


def pack_lines(lines: Iterable[str], limit: int = SECTION_TEXT_LIMIT, *,
               separator: str = "\n") -> list[str]:
    """Lines joined with `separator` into as few section texts of at most `limit`
    characters as fit; an over-long line is split, never cut."""
    texts: list[str] = []
    current = ""
    for line in lines:
        for piece in split_text(line, limit):
            candidate = f"{current}{separator}{piece}" if current else piece
            if len(candidate) <= limit:
                current = candidate
            else:
                texts.append(current)
                current = piece
    if current:
        texts.append(current)
    return texts


def home_view(catalog: Catalog) -> View:
    """App Home: how to ask, a search button, and the catalogue by category."""
    blocks: list[Block] = [
        HeaderBlock(text="Concierge: find the right IT offering"),
        *_sections(HELP_TEXT),
        ActionsBlock(block_id="search", elements=[ButtonElement(
            text="Search the catalogue", action_id=ACTION_OPEN_SEARCH, style="primary")]),
        DividerBlock(),
    ]
    categories = catalog.categories()
    body: list[Block] = []
    hidden_categories = hidden_offerings = 0
    room = VIEW_BLOCK_LIMIT - len(blocks) - 1  # one block kept for the "more" note
    for category, offerings in categories.items():
        part: list[Block] = [HeaderBlock(text=_label(category, HEADER_TEXT_LIMIT))]
        part += [SectionBlock(text=MarkdownTextObject(text=t))
                 for t in pack_lines((_catalogue_line(o) for o in offerings), separator="\n\n")]
        if hidden_categories or len(body) + len(part) > room:
            hidden_categories += 1
            hidden_offerings += len(offerings)
            continue
        body += part
    if hidden_categories:
        body.append(_context(f":mag: {hidden_offerings} more offerings in {hidden_categories} "
                             "categories did not fit on this page. Use *Search the catalogue* "
                             "to find any offering."))
    if not categories:
        body = _sections("The catalogue is empty.")
    return View(type="home", blocks=[*blocks, *body])


def search_modal() -> View:
    """The App Home search box: a modal whose answer arrives as a direct message."""
    return View(
        type="modal", callback_id=SEARCH_CALLBACK_ID,
        title=PlainTextObject(text="Ask Concierge"[:MODAL_TITLE_LIMIT]),
        submit=PlainTextObject(text="Ask"), close=PlainTextObject(text="Cancel"),
        blocks=[InputBlock(
            block_id=SEARCH_BLOCK_ID, label="What do you need?",
            hint="I'll answer in a direct message.",
            element=PlainTextInputElement(
                action_id=SEARCH_INPUT_ID, max_length=MAX_QUERY_CHARS,
                placeholder="e.g. my laptop is five years old and slow"))])
