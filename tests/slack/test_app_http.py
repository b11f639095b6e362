"""End to end over real HTTP: signed requests in, Web API calls out to a fake Slack."""

from __future__ import annotations

import json
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from conftest import (
    ANSWER_LAPTOP,
    CLARIFY_SHARING,
    NONE_QUESTION,
    RETIRED_DIALIN,
    RunningApp,
    slack_env,
)
from slack_bolt.request import BoltRequest
from slackfakes import BOT_ID, BOT_USER_ID, Call, FakeSlackAPI, all_text, button_parts, buttons

from bot.slack.app import DUPLICATE_HEADER as DUPLICATE
from bot.slack.app import SlackConfig, create_app
from bot.store.database import Store

DUPLICATE_HEADER = DUPLICATE.lower()


def in_channel(channel: str) -> Any:
    return lambda c: c.params.get("channel") == channel


def sentinel(app: RunningApp, channel: str = "D0SENTINEL") -> None:
    """Send a DM and wait for its answer: every event sent before it is then fully handled
    (the test app runs listeners one at a time, in order)."""
    assert app.slack.dm(ANSWER_LAPTOP, channel=channel).status == 200
    app.fake.wait_for("chat.postMessage", in_channel(channel))


def header(call: Call) -> str:
    return str(next(b["text"]["text"] for b in call.params["blocks"] if b["type"] == "header"))


# --- the request gate ----------------------------------------------------------------


def test_url_verification_echoes_the_challenge(running_app: RunningApp) -> None:
    body = json.dumps({"token": "x", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7",
                       "type": "url_verification"}).encode()
    reply = running_app.slack.post(body, "application/json")
    assert reply.status == 200
    assert "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7" in reply.body.decode()


def test_bad_signature_is_rejected(running_app: RunningApp) -> None:
    reply = running_app.slack.post(b'{"type":"url_verification","challenge":"c"}',
                                   "application/json", sign_with="not-the-secret")
    assert reply.status == 401


def test_stale_timestamp_is_rejected_even_when_signed(running_app: RunningApp) -> None:
    six_minutes_ago = str(int(time.time()) - 6 * 60)
    reply = running_app.slack.post(b'{"type":"url_verification","challenge":"c"}',
                                   "application/json", timestamp=six_minutes_ago)
    assert reply.status == 401


def test_health_check(running_app: RunningApp) -> None:
    with urllib.request.urlopen(f"{running_app.url}/healthz", timeout=10) as response:
        assert response.status == 200
        assert response.read() == b"ok\n"


# --- conversations ---------------------------------------------------------------------


def test_direct_message_gets_an_answer_card_in_the_dm(running_app: RunningApp) -> None:
    reply = running_app.slack.dm(ANSWER_LAPTOP)
    assert reply.status == 200
    [call] = running_app.fake.wait_for("chat.postMessage", in_channel("D0ALICE"))
    blocks = call.params["blocks"]
    text = all_text(blocks)
    assert header(call) == "Standard laptop"
    assert "This is a product: something you get and use yourself." in text
    assert "A managed Windows laptop" in text
    assert "Workplace Services · <#C0WORKPLACE>" in text
    assert "€1,150 one-off" in text and "Delivered within 5 business days" in text
    assert 'Matched need "my laptop is old and slow"' in text
    request = next(b for b in buttons(blocks) if b["text"]["text"] == "Request")
    assert request["url"] == "https://it.example.test/request/laptop?x=1&y=2"
    assert {b["action_id"] for b in buttons(blocks)} >= {"feedback_helpful",
                                                         "feedback_not_helpful"}
    assert call.params["text"].startswith("Standard laptop (product)")
    assert "thread_ts" not in call.params
    # Names its event, so a worker taking the event over can find this answer (takeover).
    assert call.params["metadata"]["event_type"] == "concierge_answer"
    assert call.params["metadata"]["event_payload"]["event_id"].startswith("Ev")


def test_mention_is_answered_in_its_thread(running_app: RunningApp) -> None:
    event = {"type": "app_mention", "user": "U0ALICE", "channel": "C0GENERAL",
             "text": f"<@{BOT_USER_ID}> {ANSWER_LAPTOP}", "ts": "1700000000.000200",
             "event_ts": "1700000000.000200"}
    assert running_app.slack.event(event, event_id="Ev0MENTION").status == 200
    [call] = running_app.fake.wait_for("chat.postMessage", in_channel("C0GENERAL"))
    assert call.params["thread_ts"] == "1700000000.000200"
    assert call.params["metadata"] == {"event_type": "concierge_answer",
                                       "event_payload": {"event_id": "Ev0MENTION"}}
    assert header(call) == "Standard laptop"
    assert BOT_USER_ID not in all_text(call.params["blocks"])  # the mention is not the question


def test_mention_inside_a_thread_answers_in_that_thread(running_app: RunningApp) -> None:
    event = {"type": "app_mention", "user": "U0ALICE", "channel": "C0GENERAL",
             "text": f"<@{BOT_USER_ID}> {ANSWER_LAPTOP}", "ts": "1700000000.000900",
             "thread_ts": "1700000000.000500", "event_ts": "1700000000.000900"}
    assert running_app.slack.event(event).status == 200
    [call] = running_app.fake.wait_for("chat.postMessage", in_channel("C0GENERAL"))
    assert call.params["thread_ts"] == "1700000000.000500"


def test_slash_command_answers_ephemerally(running_app: RunningApp) -> None:
    reply = running_app.slack.command(ANSWER_LAPTOP)
    assert reply.status == 200
    [call] = running_app.fake.wait_for("response_url")
    assert call.params["response_type"] == "ephemeral"
    assert "Standard laptop" in all_text(call.params["blocks"])
    assert not running_app.fake.calls_to("chat.postMessage")


def test_slash_command_without_text_shows_help(running_app: RunningApp) -> None:
    assert running_app.slack.command("   ").status == 200
    [call] = running_app.fake.wait_for("response_url")
    assert call.params["response_type"] == "ephemeral"
    assert "/concierge" in all_text(call.params["blocks"])


def test_nothing_fits_points_to_the_service_desk(running_app: RunningApp) -> None:
    running_app.slack.dm(NONE_QUESTION)
    [call] = running_app.fake.wait_for("chat.postMessage")
    text = all_text(call.params["blocks"])
    assert "I don't know an offering for “how do I bake sourdough bread”" in text
    assert "service desk" in text
    assert any(b.get("url") == "https://it.example.test/desk"
               for b in buttons(call.params["blocks"]))


def test_retired_offering_answers_with_its_replacement(running_app: RunningApp) -> None:
    running_app.slack.dm(RETIRED_DIALIN)
    [call] = running_app.fake.wait_for("chat.postMessage")
    assert header(call) == "VPN and remote access"
    text = all_text(call.params["blocks"])
    assert "*Dial-in remote access* is retired; *VPN and remote access* replaces it." in text
    assert "<!subteam^S0NETWORK1>" in text


def test_mentions_typed_by_a_user_are_not_echoed_live(running_app: RunningApp) -> None:
    running_app.slack.dm(f"<!channel> <@U0EVIL> &lt;!here&gt; {ANSWER_LAPTOP}")
    [call] = running_app.fake.wait_for("chat.postMessage")
    sent = json.dumps(call.params)
    for live in ("<!channel>", "<@U0EVIL>", "<!here>"):
        assert live not in sent
    text = all_text(call.params["blocks"])
    assert "@channel @U0EVIL &lt;!here&gt;" in text  # shown, as text


# --- who is not answered ----------------------------------------------------------------


def test_bot_ignores_itself_other_bots_and_edits(running_app: RunningApp) -> None:
    slack = running_app.slack
    assert slack.dm(ANSWER_LAPTOP, user=BOT_USER_ID, bot_id=BOT_ID).status == 200
    assert slack.dm(ANSWER_LAPTOP, user="U0OTHERBOT", bot_id="B0OTHER").status == 200
    assert slack.dm(ANSWER_LAPTOP, user=None, subtype="bot_message",
                    bot_id="B0OTHER").status == 200
    edited = {"type": "message", "subtype": "message_changed", "channel": "D0ALICE",
              "channel_type": "im", "ts": "1700000000.000300",
              "message": {"user": "U0ALICE", "text": ANSWER_LAPTOP, "ts": "1700000000.000100"}}
    assert slack.event(edited).status == 200
    sentinel(running_app)
    assert not running_app.fake.calls_to("chat.postMessage", ok_only=False)[:-1]


def test_a_retried_event_is_answered_once(running_app: RunningApp) -> None:
    slack = running_app.slack
    event = {"type": "message", "channel_type": "im", "channel": "D0ALICE", "user": "U0ALICE",
             "text": ANSWER_LAPTOP, "ts": "1700000000.000400"}
    first = slack.event(event, event_id="Ev0RETRIED")
    retry = slack.event(event, event_id="Ev0RETRIED", retry_num=1)
    assert first.status == retry.status == 200
    assert DUPLICATE_HEADER not in first.headers
    assert retry.headers[DUPLICATE_HEADER] == "Ev0RETRIED"
    sentinel(running_app)
    assert len(running_app.fake.calls_to("chat.postMessage", ok_only=False)) == 2  # + sentinel


def test_concurrent_deliveries_of_one_event_are_answered_once(running_app: RunningApp) -> None:
    event = {"type": "message", "channel_type": "im", "channel": "D0ALICE", "user": "U0ALICE",
             "text": ANSWER_LAPTOP, "ts": "1700000000.000410"}
    with ThreadPoolExecutor(max_workers=4) as pool:
        replies = list(pool.map(lambda n: running_app.slack.event(
            event, event_id="Ev0RACE", retry_num=n or None), range(4)))
    assert [r.status for r in replies] == [200] * 4
    assert sum(DUPLICATE_HEADER in r.headers for r in replies) == 3
    sentinel(running_app)
    assert len(running_app.fake.calls_to("chat.postMessage", ok_only=False)) == 2  # + sentinel


def test_rate_limited_post_is_retried_after_retry_after(running_app: RunningApp) -> None:
    running_app.fake.rate_limit("chat.postMessage", times=1)
    running_app.slack.dm(ANSWER_LAPTOP)
    [posted] = running_app.fake.wait_for("chat.postMessage")
    attempts = running_app.fake.calls_to("chat.postMessage", ok_only=False)
    assert [c.status for c in attempts] == [429, 200]
    assert header(posted) == "Standard laptop"


# --- buttons ----------------------------------------------------------------------------


def test_clarify_choice_replaces_the_card_in_place(running_app: RunningApp) -> None:
    running_app.slack.dm(CLARIFY_SHARING)
    [posted] = running_app.fake.wait_for("chat.postMessage")
    blocks = posted.params["blocks"]
    assert "Did you mean one of these?" in all_text(blocks)
    choices = [b for b in buttons(blocks) if b["action_id"].startswith("choose_offering_")]
    # Each value names the offering and the recorded question it answers.
    assert {button_parts(b["value"])[0] for b in choices} == {"team-site", "shared-drive"}
    drive = next(b for b in choices if b["value"].startswith("shared-drive#"))
    message = {"type": "message", "ts": "1700000100.000001", "text": posted.params["text"],
               "blocks": blocks}
    reply = running_app.slack.click(drive["action_id"], drive["value"], message=message)
    assert reply.status == 200
    [update] = running_app.fake.wait_for("chat.update")
    assert update.params["channel"] == "D0ALICE"
    assert update.params["ts"] == "1700000100.000001"
    assert header(update) == "Shared drive"
    assert "You picked this from the suggestions." in all_text(update.params["blocks"])


def test_clarify_choice_on_an_ephemeral_card_uses_the_response_url(
        running_app: RunningApp) -> None:
    running_app.slack.command(CLARIFY_SHARING)
    [card] = running_app.fake.wait_for("response_url")
    choice = next(b for b in buttons(card.params["blocks"])
                  if button_parts(b.get("value", ""))[0] == "team-site")
    running_app.slack.click(choice["action_id"], choice["value"], channel="C0GENERAL",
                            ephemeral=True, response="click")
    [replaced] = running_app.fake.wait_for("response_url",
                                           lambda c: c.params.get("replace_original") is True)
    assert "Team site" in all_text(replaced.params["blocks"])


def test_feedback_click_is_acknowledged_on_the_card(running_app: RunningApp) -> None:
    running_app.slack.dm(ANSWER_LAPTOP)
    [posted] = running_app.fake.wait_for("chat.postMessage")
    message = {"type": "message", "ts": "1700000100.000001", "text": posted.params["text"],
               "blocks": posted.params["blocks"]}
    helpful = next(b for b in buttons(posted.params["blocks"])
                   if b["action_id"] == "feedback_helpful")
    assert running_app.slack.click("feedback_helpful", helpful["value"],
                                   message=message).status == 200
    [update] = running_app.fake.wait_for("chat.update")
    blocks = update.params["blocks"]
    assert "Thanks, <@U0ALICE>: glad it helped." in all_text(blocks)
    assert not [b for b in buttons(blocks) if b["action_id"].startswith("feedback_")]
    assert header(update) == "Standard laptop"  # the rest of the card stays


def test_request_link_click_is_acknowledged(running_app: RunningApp) -> None:
    reply = running_app.slack.click("request_offering:standard-laptop", "")
    assert reply.status == 200


# --- App Home ---------------------------------------------------------------------------


def test_app_home_lists_the_catalogue_by_category(running_app: RunningApp) -> None:
    event = {"type": "app_home_opened", "user": "U0ALICE", "channel": "D0ALICE",
             "tab": "home", "event_ts": "1700000000.000500"}
    assert running_app.slack.event(event).status == 200
    [call] = running_app.fake.wait_for("views.publish")
    assert call.params["user_id"] == "U0ALICE"
    view = call.params["view"]
    assert view["type"] == "home"
    headers = [b["text"]["text"] for b in view["blocks"] if b["type"] == "header"]
    assert headers[1:] == ["Collaboration", "Network", "Onboarding", "Workplace devices"]
    text = all_text(view["blocks"])
    assert "<https://it.example.test/request/vpn|VPN and remote access>" in text
    assert "_service_" in text and "Network Team · <!subteam^S0NETWORK1>" in text
    assert "Dial-in" not in text  # retired offerings are not offered
    assert any(b["action_id"] == "open_search" for b in buttons(view["blocks"]))


def test_search_modal_answers_in_a_direct_message(running_app: RunningApp) -> None:
    slack = running_app.slack
    opened = slack.interaction({
        "type": "block_actions", "container": {"type": "view", "view_id": "V0HOME"},
        "view": {"id": "V0HOME", "type": "home"},
        "actions": [{"type": "button", "action_id": "open_search", "block_id": "search",
                     "action_ts": "1700000300.000002"}]})
    assert opened.status == 200
    [modal] = running_app.fake.wait_for("views.open")
    assert modal.params["trigger_id"] == "1337.42.efgh"
    view = modal.params["view"]
    [field] = [b for b in view["blocks"] if b["type"] == "input"]

    submission = {"type": "view_submission", "view": {
        "id": "V0MODAL", "type": "modal", "callback_id": view["callback_id"],
        "state": {"values": {field["block_id"]: {field["element"]["action_id"]: {
            "type": "plain_text_input", "value": "I cannot reach the intranet from home"}}}}}}
    reply = slack.interaction(submission)
    assert reply.status == 200
    assert not reply.body  # an empty ack closes the modal
    [answer] = running_app.fake.wait_for("chat.postMessage")
    assert answer.params["channel"] == "U0ALICE"
    assert header(answer) == "VPN and remote access"


def test_empty_search_keeps_the_modal_open_with_an_error(running_app: RunningApp) -> None:
    reply = running_app.slack.interaction({"type": "view_submission", "view": {
        "id": "V0MODAL", "type": "modal", "callback_id": "concierge_search",
        "state": {"values": {"need": {"need": {"type": "plain_text_input", "value": "  "}}}}}})
    assert reply.status == 200
    assert reply.json() == {"response_action": "errors",
                            "errors": {"need": "Tell me what you need."}}


# --- Socket Mode ------------------------------------------------------------------------


def test_socket_mode_app_handles_unsigned_envelopes(fake_slack: FakeSlackAPI,
                                                    catalogue_dir: Path,
                                                    tmp_path: Path) -> None:
    """What SocketModeHandler hands to the app: an unsigned request body (the WebSocket
    itself is authenticated with the app token). No signing secret is configured."""
    env = slack_env(fake_slack, catalogue_dir, tmp_path / "data")
    del env["SLACK_SIGNING_SECRET"]
    config = SlackConfig.from_env({**env, "SLACK_APP_TOKEN": "xapp-1-A0APP-1-abc"})
    assert config.socket_mode
    store = Store(config.database_url)
    with ThreadPoolExecutor(max_workers=1) as listeners:
        app = create_app(config, store=store, listener_executor=listeners)
        body = {"type": "event_callback", "team_id": "T0TEAM", "event_id": "Ev0SOCKET",
                "event": {"type": "message", "channel_type": "im", "channel": "D0SOCKET",
                          "user": "U0ALICE", "text": ANSWER_LAPTOP, "ts": "1700000000.000800"}}
        response = app.dispatch(BoltRequest(body=body, mode="socket_mode"))
        assert response.status == 200
        [call] = fake_slack.wait_for("chat.postMessage")
    store.close()
    assert header(call) == "Standard laptop"
