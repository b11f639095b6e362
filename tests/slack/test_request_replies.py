"""The Block Kit of requests within Slack's limits, whatever the answers: ten long answers full
of characters that escaping lengthens, a name longer than a header, hostile markup."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from slackfakes import all_text, buttons

from bot.catalogue.models import (
    DeliverTo,
    FieldType,
    FormField,
    Kind,
    Offering,
    Owner,
    RequestInfo,
)
from bot.outbox.forms import LONG_TEXT_LIMIT, Answer
from bot.outbox.intake import RECEIPT, STATUS, destinations
from bot.slack.replies import MESSAGE_BLOCK_LIMIT, VIEW_BLOCK_LIMIT
from bot.slack.request_replies import notice_message, request_message, request_modal
from bot.store.requests import RequestRow

FORM = tuple(FormField(f"q{n}", f"Question {n} <b>", FieldType.LONG_TEXT, n % 2 == 0,
                       "Help & hints" if n else None) for n in range(10))
OFFERING = Offering(
    id="laptop", name="A" * 200, summary="Summary <!here>", kind=Kind.PRODUCT,
    owner=Owner("Workplace & Co", "U0OWNER1"),
    request=RequestInfo(form=FORM, deliver_to=DeliverTo("#it-requests", True, "servicedesk")),
    needs=("x",), cost="€1 <b>", service_level="fast & good")


def row(status: str = "open", **answers: str) -> RequestRow:
    long = ("& <" * LONG_TEXT_LIMIT)[:LONG_TEXT_LIMIT]
    values = [Answer(f.id, f.label, f.type, answers.get(f.id, long)) for f in FORM]
    return RequestRow(
        id=42, submitted_at=datetime(2026, 11, 24, 10, 15, tzinfo=UTC), offering_id="laptop",
        requester_id="U0ALICE", requester_name="alice", team_id="T0TEAM", status=status,
        status_by="U0OWNER1" if status != "open" else None,
        status_reason="no <!channel>" if status == "declined" else None,
        details={"offering": {"name": OFFERING.name, "owner_team": "Workplace & Co",
                              "owner_contact": "U0OWNER1", "cost": "€1 <b>",
                              "service_level": "fast"},
                 "answers": [a.to_json() for a in values],
                 "destinations": [d.to_json() for d in destinations(OFFERING)]})


def payload_blocks(blocks: Any) -> list[dict[str, Any]]:
    return [b.to_dict() for b in blocks]  # to_dict validates Slack's limits


def test_a_request_full_of_long_hostile_answers_fits_one_message_with_its_buttons() -> None:
    message = request_message(row())
    blocks = payload_blocks(message.blocks)
    assert len(blocks) <= MESSAGE_BLOCK_LIMIT
    shown = all_text(blocks)
    assert "<!here>" not in shown and "<b>" not in shown and "<!channel>" not in shown
    assert shown.count("&amp; &lt;") >= 10 * 100  # every answer there, escaped, not cut
    assert [b["action_id"] for b in buttons(blocks)] == ["request_taken", "request_done",
                                                         "request_decline"]
    # Once declined: the reason escaped, no buttons left.
    declined = payload_blocks(request_message(row("declined")).blocks)
    assert buttons(declined) == [] and "\n>no &lt;!channel&gt;" in all_text(declined)


def test_the_form_of_ten_fields_fits_a_modal() -> None:
    view = request_modal(OFFERING, destinations(OFFERING), requester="U0ALICE").to_dict()
    assert len(view["blocks"]) <= VIEW_BLOCK_LIMIT
    assert len(view["title"]["text"]) <= 24
    inputs = [b for b in view["blocks"] if b["type"] == "input"]
    assert [b.get("optional", False) for b in inputs] == [n % 2 != 0 for n in range(10)]
    shown = all_text(view["blocks"])
    assert "Summary &lt;!here&gt;" in shown and "Goes to #it-requests, <@U0OWNER1>" in shown


def test_the_direct_messages_fit_and_escape_too() -> None:
    receipt = payload_blocks(notice_message(row(), RECEIPT, None).blocks)
    assert len(receipt) <= MESSAGE_BLOCK_LIMIT and "<b>" not in all_text(receipt)
    declined = notice_message(row("declined"), STATUS,
                              {"status": "declined", "by": "U0OWNER1",
                               "reason": "<!here> no\n> and never"})
    assert "\n>&lt;!here&gt; no\n>&gt; and never" in all_text(payload_blocks(declined.blocks))
