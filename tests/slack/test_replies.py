"""Block Kit builders: escaping, mentions, and Slack's size limits (split, never cut silently)."""

from __future__ import annotations

from typing import Any

import pytest
from slackfakes import all_text, buttons

from bot.admin.reports import ReportView, Section
from bot.catalogue.models import (
    Candidate,
    Catalog,
    Decision,
    DecisionKind,
    Evidence,
    Kind,
    Offering,
    Owner,
    RequestInfo,
)
from bot.slack.admin_replies import report_messages
from bot.slack.buttons import ButtonKeys
from bot.slack.replies import (
    BUTTON_TEXT_LIMIT,
    MESSAGE_BLOCK_LIMIT,
    SECTION_TEXT_LIMIT,
    VIEW_BLOCK_LIMIT,
    ServiceDesk,
    answer_message,
    clarify_message,
    contact_mrkdwn,
    decision_message,
    escape,
    home_view,
    none_message,
    search_modal,
    slack_to_plain,
    split_text,
    with_feedback_acknowledged,
)

# The buttons of a card answering question 7 asked by U0ALICE.
CARD = ButtonKeys.from_secret("test-secret").card(7, "U0ALICE")


def offering(oid: str = "thing", **fields: Any) -> Offering:
    base: dict[str, Any] = {
        "id": oid, "name": f"Thing {oid}", "summary": "What you get.", "kind": Kind.SERVICE,
        "owner": Owner("Team", "#it-help"), "request": RequestInfo(url="https://x.test/r"),
        "needs": ("a need",), "category": "Things"}
    return Offering(**(base | fields))


def dicts(message: Any) -> list[dict[str, Any]]:
    return list(message.payload()["blocks"])


@pytest.mark.parametrize(("contact", "shown"), [
    ("U012AB3CD", "<@U012AB3CD>"),
    ("W012AB3CD", "<@W012AB3CD>"),
    ("S012AB3CD", "<!subteam^S012AB3CD>"),
    ("C012AB3CD", "<#C012AB3CD>"),
    ("#it-help", "#it-help"),
    ("help@example.test", "<mailto:help@example.test|help@example.test>"),
])
def test_owner_contact_is_a_real_mention(contact: str, shown: str) -> None:
    assert contact_mrkdwn(contact) == shown


@pytest.mark.parametrize(("slack", "plain"), [
    ("<@U0BOT> my laptop", "my laptop"),
    ("<!channel> help <@U123|ann>", "@channel help @ann"),
    ("<!subteam^S123|@it-team> ping", "@it-team ping"),
    ("see <https://x.test/a|the form> and <#C123|general>", "see the form and #general"),
    ("&lt;!here&gt; fish &amp; chips", "<!here> fish & chips"),
])
def test_slack_text_becomes_what_the_user_typed(slack: str, plain: str) -> None:
    assert slack_to_plain(slack, strip_user="U0BOT") == plain


def test_user_text_is_escaped_wherever_it_is_shown() -> None:
    question = "<!channel> <@U0EVIL> & co"
    card = answer_message(offering(), Catalog((offering(),)), why="w", asked=question,
                          buttons=CARD)
    none = none_message(question, ServiceDesk())
    for message in (card, none):
        sent = str(message.payload())
        assert "<!channel>" not in sent and "<@U0EVIL>" not in sent
        assert "&lt;!channel&gt; &lt;@U0EVIL&gt; &amp; co" in all_text(dicts(message))


def test_split_text_respects_the_limit_and_entities() -> None:
    text = escape("a&b " * 2000)
    pieces = split_text(text, SECTION_TEXT_LIMIT)
    assert all(len(p) <= SECTION_TEXT_LIMIT for p in pieces)
    assert "".join(pieces).replace(" ", "") == text.replace(" ", "")
    assert all(not p.endswith("&") and not p.endswith("&amp") for p in pieces)


def test_long_description_is_split_into_sections_not_cut() -> None:
    description = " ".join(f"word{n}" for n in range(1500))  # ~11,000 characters
    card = answer_message(offering(description=description), Catalog(()), buttons=CARD)
    blocks = dicts(card)
    sections = [b["text"]["text"] for b in blocks if b["type"] == "section" and "text" in b]
    assert all(len(t) <= SECTION_TEXT_LIMIT for t in sections)
    assert "word0 " in all_text(blocks) and "word1499" in all_text(blocks)


def test_a_card_too_big_for_one_message_says_so() -> None:
    huge = " ".join("x" * 2900 for _ in range(80))
    card = answer_message(offering(description=huge), Catalog(()), buttons=CARD)
    blocks = dicts(card)
    assert len(blocks) == MESSAGE_BLOCK_LIMIT
    assert "did not fit in one Slack message" in all_text(blocks[-1])


def test_long_names_fit_buttons_and_headers_and_stay_whole_in_text() -> None:
    name = "A very long offering name " * 8
    options = (offering("a", name=name.strip()), offering("b", name="Short"))
    decision = Decision("q", DecisionKind.CLARIFY, 0.5,
                        tuple(Candidate(o, 0.5, Evidence("needs", "a need")) for o in options),
                        "why", choice_count=2)
    blocks = dicts(clarify_message(decision, CARD))
    assert all(len(b["text"]["text"]) <= BUTTON_TEXT_LIMIT for b in buttons(blocks))
    assert name.strip() in all_text(blocks)
    card = dicts(answer_message(options[0], Catalog(options), buttons=CARD))
    assert card[0]["type"] == "section"  # > 150 characters: no header block


def test_bundle_lists_what_it_includes() -> None:
    laptop = offering("laptop", name="Laptop")
    kit = offering("kit", includes=("laptop", "unknown-id"))
    text = all_text(dicts(answer_message(kit, Catalog((laptop, kit)), buttons=CARD)))
    assert "• Laptop" in text and "• unknown-id" in text


def test_none_message_links_the_service_desk_when_configured() -> None:
    message = none_message("q", ServiceDesk("Call 1234.", "https://desk.test"))
    assert "Call 1234." in all_text(dicts(message))
    assert [b["url"] for b in buttons(dicts(message))] == ["https://desk.test"]


def test_clarify_with_a_single_candidate_falls_back_to_none() -> None:
    only = offering()
    decision = Decision("q", DecisionKind.CLARIFY, 0.5,
                        (Candidate(only, 0.5, Evidence("needs", "n")),), "why", choice_count=1)
    message = decision_message(decision, Catalog((only,)), ServiceDesk(), CARD)
    assert "I don't know" in message.text


def test_feedback_buttons_are_replaced_by_a_thank_you() -> None:
    blocks = dicts(answer_message(offering(), Catalog(()), buttons=CARD))
    after = with_feedback_acknowledged(blocks, helpful=False, user_id="U0ALICE")
    assert len(after) == len(blocks)
    assert not [b for b in buttons(after) if b["action_id"].startswith("feedback_")]
    assert "noted that this was not what you needed" in all_text(after)


def test_home_view_stays_within_the_block_limit_and_says_what_is_missing() -> None:
    offerings = tuple(offering(f"o{n}", category=f"Category {n:03d}") for n in range(120))
    view = home_view(Catalog(offerings)).to_dict()
    assert len(view["blocks"]) <= VIEW_BLOCK_LIMIT
    shown = sum(b["type"] == "header" for b in view["blocks"]) - 1
    assert f"{120 - shown} more offerings in {120 - shown} categories" in all_text(
        view["blocks"][-1])


def test_home_view_packs_a_category_into_few_sections() -> None:
    offerings = tuple(offering(f"o{n}") for n in range(60))
    view = home_view(Catalog(offerings)).to_dict()
    sections = [b for b in view["blocks"] if b["type"] == "section"]
    assert all(len(b["text"]["text"]) <= SECTION_TEXT_LIMIT for b in sections)
    assert len(sections) < 10
    assert all(f"Thing o{n}" in all_text(view["blocks"]) for n in range(60))


def test_search_modal_is_valid() -> None:
    view = search_modal().to_dict()
    assert view["type"] == "modal" and view["callback_id"] == "concierge_search"
    assert len(view["title"]["text"]) <= 24


ECHOED = "see #general, ask @here or <!channel>, go to http://evil.example.test now"


def mrkdwn_objects(node: Any) -> list[dict[str, Any]]:
    """Every mrkdwn text object in a Block Kit structure."""
    if isinstance(node, list):
        return [m for item in node for m in mrkdwn_objects(item)]
    if not isinstance(node, dict):
        return []
    found = [node] if node.get("type") == "mrkdwn" else []
    return found + [m for value in node.values() for m in mrkdwn_objects(value)]


def echoing(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in mrkdwn_objects(blocks) if "http://evil.example.test" in m["text"]]


@pytest.mark.parametrize("kind", list(DecisionKind))
def test_echoed_question_is_shown_verbatim_never_linked(kind: DecisionKind) -> None:
    a, b = offering("a"), offering("b")
    candidates = tuple(Candidate(o, 0.5, Evidence("needs", "a need")) for o in (a, b))
    decision = Decision(ECHOED, kind, 0.5, candidates, f'Read as "{ECHOED}".',
                        offering=a if kind is DecisionKind.ANSWER else None,
                        choice_count=2 if kind is DecisionKind.CLARIFY else 0)
    blocks = dicts(decision_message(decision, Catalog((a, b)), ServiceDesk(), CARD))
    shown = echoing(blocks)
    assert shown, "the question is echoed somewhere"
    # verbatim: Slack leaves #general, @here and the URL as typed instead of linking them.
    assert all(m.get("verbatim") is True for m in shown)
    assert all("<!channel>" not in m["text"] for m in shown)


def test_report_lines_quoting_users_are_verbatim() -> None:
    view = ReportView("Concierge gaps", (Section("Unmet needs", (f"3 × “{ECHOED}”",)),))
    [message] = report_messages(view)
    shown = echoing(dicts(message))
    assert shown and all(m.get("verbatim") is True for m in shown)
