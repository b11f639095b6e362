"""Who may press a card's buttons, and what the record says afterwards, over real HTTP.

A card answers one person: only they may pick a choice or rate it; a click by anyone else,
or with a value Concierge did not make, gets a note only the clicker sees, changes no card
and records nothing. A rating is one per answer, the last click standing; a choice and
"None of these" never both stand.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from conftest import ANSWER_LAPTOP, CLARIFY_SHARING
from slackfakes import BOT_USER_ID, Call, all_text, button_parts, buttons
from test_admin_http import ALICE, App, StartApp, dm, start_app

from bot.slack.buttons import ButtonKeys

__all__ = ["start_app"]

BOB = "U0BOB"
# The question the test asked (the sentinel's questions come after it).
ASKED_FIRST = ("SELECT chosen_offering_id, none_fitted FROM questions "
               "WHERE id = (SELECT MIN(id) FROM questions)")


def mention(app: App, question: str, channel: str) -> Call:
    """@Concierge in a channel: the card is posted in the thread, for everyone to see."""
    event = {"type": "app_mention", "channel": channel, "user": ALICE,
             "text": f"<@{BOT_USER_ID}> {question}", "ts": "1700000000.000300",
             "event_ts": "1700000000.000300"}
    assert app.slack.event(event).status == 200
    [posted] = app.fake.wait_for("chat.postMessage", lambda c: c.params["channel"] == channel)
    return posted


def button(card: Call, prefix: str) -> dict[str, Any]:
    return next(b for b in buttons(card.params["blocks"]) if b["action_id"].startswith(prefix))


def as_message(card: Call, ts: str) -> dict[str, Any]:
    return {"type": "message", "ts": ts, "text": card.params["text"],
            "blocks": card.params["blocks"]}


def test_another_users_click_on_a_thread_card_changes_nothing(start_app: StartApp) -> None:
    app = start_app()
    card = mention(app, CLARIFY_SHARING, "C0TEAM")
    choice = button(card, "choose_offering_")
    message = as_message(card, "1700000100.000010")
    app.slack.click(choice["action_id"], choice["value"], message=message, channel="C0TEAM",
                    user=BOB, response="bob")
    app.sentinel()
    assert not app.fake.calls_to("chat.update"), "Bob's click replaced Alice's card"
    [note] = [c for c in app.fake.calls_to("response_url") if c.params.get("text")]
    assert note.params["response_type"] == "ephemeral" and not note.params["replace_original"]
    assert "Only the person who asked can use these buttons" in note.params["text"]
    assert app.rows(ASKED_FIRST) == [(None, False)]
    # Alice's own click is taken.
    app.slack.click(choice["action_id"], choice["value"], message=message, channel="C0TEAM")
    [update] = app.fake.wait_for("chat.update")
    offering_id, _ = button_parts(choice["value"])
    assert app.rows(ASKED_FIRST) == [(offering_id, False)]
    assert "You picked this" in all_text(update.params["blocks"])


def test_one_rating_per_answer_the_last_click_standing(start_app: StartApp) -> None:
    app = start_app()
    assert app.slack.command(ANSWER_LAPTOP, user=ALICE, response="card").status == 200
    [card] = app.fake.wait_for("response_url")
    not_helpful = button(card, "feedback_not_helpful")
    helpful = button(card, "feedback_helpful")
    for _ in range(5):  # an ephemeral card: its buttons stay, and can be clicked again
        app.slack.click(not_helpful["action_id"], not_helpful["value"], ephemeral=True)
    app.slack.click(helpful["action_id"], helpful["value"], ephemeral=True)
    app.slack.click(not_helpful["action_id"], not_helpful["value"], ephemeral=True, user=BOB)
    app.sentinel()
    [(question_id,)] = app.rows("SELECT MIN(id) FROM questions")
    assert app.rows("SELECT question_id, offering_id, helpful FROM feedback") == [
        (question_id, "standard-laptop", True)]


def test_none_of_these_after_a_choice_leaves_one_of_them(start_app: StartApp) -> None:
    app = start_app()
    card = dm(app, CLARIFY_SHARING, "D0BOTH")
    choice, none = button(card, "choose_offering_"), button(card, "choose_none")
    app.slack.click(choice["action_id"], choice["value"], ephemeral=True)
    app.slack.click(none["action_id"], none["value"], ephemeral=True)
    app.sentinel()
    assert app.rows(ASKED_FIRST) == [(None, True)]
    app.slack.click(choice["action_id"], choice["value"], ephemeral=True)
    app.sentinel()
    offering_id, _ = button_parts(choice["value"])
    assert app.rows(ASKED_FIRST) == [
        (offering_id, False)]


def _crafted(app: App, question_id: int) -> list[str]:
    keys = ButtonKeys.from_secret("not the app's secret")
    real = keys.card(question_id, ALICE).value("vpn")
    return [
        "x" * 5000,                                   # a 5,000-character "offering id"
        f"vpn\x1b[31m#{question_id}#{real[-16:]}",    # a terminal escape sequence
        f"vpn#²#{real[-16:]}",                        # a digit that is not 0-9
        f"vpn#{'9' * 40}#{real[-16:]}",               # beyond any row id
        f"vpn#{question_id}",                         # the format before cards were tagged
        real,                                         # well-formed, tagged with another key
        "",
    ]


@pytest.mark.parametrize("action", ["choose_offering_0", "choose_none", "feedback_helpful",
                                    "feedback_not_helpful"])
def test_crafted_values_are_refused_and_nothing_is_stored(
        start_app: StartApp, caplog: pytest.LogCaptureFixture, action: str) -> None:
    app = start_app()
    card = dm(app, CLARIFY_SHARING, "D0CRAFT")
    [(question_id,)] = app.rows("SELECT MIN(id) FROM questions")
    with caplog.at_level(logging.INFO):
        for n, value in enumerate(_crafted(app, question_id)):
            reply = app.slack.click(action, value, message=as_message(card, f"1700000200.{n}"),
                                    channel="D0CRAFT")
            assert reply.status == 200
        app.sentinel()
    assert not app.fake.calls_to("chat.update")
    notes = [c.params["text"] for c in app.fake.calls_to("response_url")]
    assert len(notes) == len(_crafted(app, question_id))
    assert all("This button does not work" in t or "Only the person who asked" in t
               for t in notes)
    assert app.rows(ASKED_FIRST) == [(None, False)]
    assert app.rows("SELECT COUNT(*) FROM feedback") == [(0,)]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "\x1b" not in caplog.text and "x" * 100 not in caplog.text


def test_a_request_click_by_anyone_counts_for_the_offering_only(start_app: StartApp) -> None:
    app = start_app()
    card = dm(app, ANSWER_LAPTOP, "D0REQ")
    request = button(card, "request_offering")
    app.slack.click(request["action_id"], request["value"])  # Alice: tied to her question
    app.slack.click(request["action_id"], request["value"], user=BOB)  # Bob: the offering
    app.slack.click("request_offering:no-such-offering", "x" * 5000, user=BOB)
    app.sentinel()
    [(question_id,)] = app.rows("SELECT MIN(id) FROM questions")
    assert sorted(app.rows("SELECT question_id, offering_id FROM request_clicks"),
                  key=str) == sorted([(question_id, "standard-laptop"),
                                      (None, "standard-laptop")], key=str)
