"""`handlers.answers`: where an event's answer goes, and the lookup that finds it in Slack,
over real HTTP against the fake Web API, with what Slack answers when it cannot help.

The client here retries nothing (the app's own waits out 429s and retries connection
errors before a lookup counts as failed), so each failure shows in one call.
"""

from __future__ import annotations

from typing import Any

import pytest
from slack_sdk import WebClient
from slackfakes import BOT_ID, BOT_TOKEN, BOT_USER_ID, FakeSlackAPI
from test_serve_process import free_port

from bot.slack.history import MAX_PAGES, PAGE_SIZE
from bot.store.takeover import InSlack
from handlers.answers import (
    ANSWER_EVENT_TYPE,
    Place,
    answer_lookup,
    answer_metadata,
    place_of,
)

QUESTION_TS = "1700000000.000100"


def body(event: dict[str, Any], event_id: str = "Ev0ASKED") -> dict[str, Any]:
    return {"type": "event_callback", "event_id": event_id, "team_id": "T0TEAM",
            "event": event}


def dm(**fields: str) -> dict[str, Any]:
    return body({"type": "message", "channel_type": "im", "channel": "D0ALICE",
                 "user": "U0ALICE", "text": "my laptop is old", "ts": QUESTION_TS, **fields})


def mention(**fields: str) -> dict[str, Any]:
    return body({"type": "app_mention", "channel": "C0GENERAL", "user": "U0ALICE",
                 "text": f"<@{BOT_USER_ID}> laptop", "ts": QUESTION_TS, **fields})


def no_retries(fake: FakeSlackAPI) -> WebClient:
    return WebClient(token=BOT_TOKEN, base_url=fake.api_url, retry_handlers=[])


def answer(fake: FakeSlackAPI, channel: str, event_id: str = "Ev0ASKED",
           **fields: Any) -> None:
    fake.add_message(channel, bot_id=BOT_ID, user=BOT_USER_ID, text="Standard laptop",
                     metadata={"event_type": ANSWER_EVENT_TYPE,
                               "event_payload": {"event_id": event_id}}, **fields)


def test_answers_go_where_the_listeners_post_them() -> None:
    assert place_of(dm()) == Place("D0ALICE", None, QUESTION_TS, direct=True)
    assert place_of(dm(thread_ts="1699999999.000001")) == Place(
        "D0ALICE", "1699999999.000001", QUESTION_TS, direct=True)
    assert place_of(mention()) == Place("C0GENERAL", QUESTION_TS, QUESTION_TS, direct=False)
    assert place_of(mention(thread_ts="1699999999.000001")) == Place(
        "C0GENERAL", "1699999999.000001", QUESTION_TS, direct=False)
    assert place_of(body({"type": "app_home_opened", "user": "U0ALICE"})) is None
    assert place_of(body({"type": "message", "channel_type": "im", "channel": "D0A"})) is None
    assert answer_metadata(dm()) == {"event_type": ANSWER_EVENT_TYPE,
                                     "event_payload": {"event_id": "Ev0ASKED"}}
    assert answer_metadata({"type": "block_actions"}) is None


def test_only_a_bot_message_naming_this_event_counts(fake_slack: FakeSlackAPI) -> None:
    lookup = answer_lookup(no_retries(fake_slack))
    fake_slack.add_message("D0ALICE", user="U0ALICE", text="spoof", metadata={
        "event_type": ANSWER_EVENT_TYPE, "event_payload": {"event_id": "Ev0ASKED"}})
    answer(fake_slack, "D0ALICE", event_id="Ev0OTHER")
    answer(fake_slack, "D0ALICE", ts="1699999999.000001")  # before the question
    assert lookup("Ev0ASKED", dm()) is InSlack.NO
    answer(fake_slack, "D0ALICE")
    assert lookup("Ev0ASKED", dm()) is InSlack.YES


def test_the_answer_is_found_in_its_dm_thread(fake_slack: FakeSlackAPI) -> None:
    lookup = answer_lookup(no_retries(fake_slack))
    threaded = dm(thread_ts="1699999999.000001")
    # No such thread yet (Slack: thread_not_found), then the thread without the answer.
    assert lookup("Ev0ASKED", threaded) is InSlack.NO
    fake_slack.add_message("D0ALICE", user="U0ALICE", text="hi", ts="1699999999.000001")
    answer(fake_slack, "D0ALICE")  # top level: not where a thread's answer goes
    assert lookup("Ev0ASKED", threaded) is InSlack.NO
    answer(fake_slack, "D0ALICE", thread_ts="1699999999.000001")
    assert lookup("Ev0ASKED", threaded) is InSlack.YES
    assert {c.method for c in fake_slack.calls} == {"conversations.replies"}


def test_beyond_the_pages_it_reads_it_cannot_tell(fake_slack: FakeSlackAPI) -> None:
    lookup = answer_lookup(no_retries(fake_slack))
    answer(fake_slack, "D0ALICE")
    for n in range(MAX_PAGES * PAGE_SIZE):
        fake_slack.add_message("D0ALICE", user="U0ALICE", text=f"and {n}")
    assert lookup("Ev0ASKED", dm()) is InSlack.CANNOT_TELL
    assert len(fake_slack.calls_to("conversations.history")) == MAX_PAGES
    assert {c.params["limit"] for c in fake_slack.calls} == {str(PAGE_SIZE)}


def test_a_mention_without_the_history_scope_cannot_be_looked_up(
        fake_slack: FakeSlackAPI) -> None:
    lookup = answer_lookup(no_retries(fake_slack))
    answer(fake_slack, "C0GENERAL", thread_ts=QUESTION_TS)
    assert lookup("Ev0ASKED", mention()) is InSlack.CANNOT_TELL
    fake_slack.scopes.add("channels:history")
    assert lookup("Ev0ASKED", mention()) is InSlack.YES


def test_a_rate_limited_lookup_failed_and_is_not_an_answer(fake_slack: FakeSlackAPI) -> None:
    lookup = answer_lookup(no_retries(fake_slack))
    answer(fake_slack, "D0ALICE")
    fake_slack.rate_limit("conversations.history", times=1)
    assert lookup("Ev0ASKED", dm()) is InSlack.LOOKUP_FAILED
    assert lookup("Ev0ASKED", dm()) is InSlack.YES


def test_an_unreachable_web_api_is_a_failed_lookup(fake_slack: FakeSlackAPI) -> None:
    gone = WebClient(token=BOT_TOKEN, base_url=f"http://127.0.0.1:{free_port()}/api/",
                     retry_handlers=[], timeout=5)
    assert answer_lookup(gone)("Ev0ASKED", dm()) is InSlack.LOOKUP_FAILED


@pytest.mark.parametrize("event", [
    {"type": "app_home_opened", "user": "U0ALICE", "tab": "home"},
    {"type": "reaction_added", "user": "U0ALICE", "reaction": "tada"},
])
def test_events_not_answered_with_a_message_are_not_looked_up(
        fake_slack: FakeSlackAPI, event: dict[str, Any]) -> None:
    assert answer_lookup(no_retries(fake_slack))("Ev0ASKED", body(event)) is (
        InSlack.CANNOT_TELL)
    assert fake_slack.calls == []
