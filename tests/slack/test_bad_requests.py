"""Garbage at the door: bad, forged, oversized and incomplete requests over real HTTP.

Each one gets a definite HTTP status, nothing reaches the (fake) Slack Web API, no
listener crashes, and the server goes on answering real questions afterwards.
"""

from __future__ import annotations

import http.client
import json
import logging
import time
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from conftest import ANSWER_LAPTOP, RunningApp
from slackfakes import SIGNING_SECRET, TEAM_ID, WAIT_SECONDS, Reply, signature

from bot.slack.gate import MAX_BODY_BYTES

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
# Web API methods that would mean "the bot said something".
SPEAKING = ("chat.postMessage", "chat.postEphemeral", "chat.update", "views.publish",
            "views.open", "response_url")


def raw_post(app: RunningApp, body: bytes, headers: dict[str, str], *,
             send: bytes | None = None) -> Reply:
    """POST with exactly these headers; `send` (default: the whole body) is what goes out."""
    parts = urlsplit(app.slack.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=WAIT_SECONDS)
    try:
        conn.putrequest("POST", parts.path)
        for name, value in {"Content-Length": str(len(body)), **headers}.items():
            conn.putheader(name, value)
        conn.endheaders(body if send is None else send)
        response = conn.getresponse()
        return Reply(response.status, response.read(),
                     {k.lower(): v for k, v in response.getheaders()})
    finally:
        conn.close()


def signed(body: bytes, content_type: str = JSON, *, timestamp: str | None = None,
           secret: str = SIGNING_SECRET) -> dict[str, str]:
    ts = timestamp or str(int(time.time()))
    return {"Content-Type": content_type, "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature(secret, ts, body)}


def event_body(event: dict[str, Any], event_id: str = "Ev0BAD") -> bytes:
    return json.dumps({"type": "event_callback", "team_id": TEAM_ID, "api_app_id": "A0APP",
                       "event_id": event_id, "event_time": int(time.time()),
                       "event": event}).encode()


def interaction_body(payload: dict[str, Any]) -> bytes:
    base = {"team": {"id": TEAM_ID}, "api_app_id": "A0APP", "user": {"id": "U0ALICE"},
            "trigger_id": "1337.42.bad"}
    return urlencode({"payload": json.dumps(base | payload)}).encode()


@pytest.fixture(autouse=True)
def _errors_logged(caplog: pytest.LogCaptureFixture) -> None:
    # A listener that crashes on a bad payload is logged by Bolt at ERROR level.
    caplog.set_level(logging.ERROR)


def still_serving_and_silent(app: RunningApp, caplog: pytest.LogCaptureFixture) -> None:
    """A real question is answered, it is the only thing the bot said, nothing crashed.

    The test app runs listeners one at a time in arrival order, so once this answer
    has arrived every earlier request has been fully handled."""
    assert app.slack.dm(ANSWER_LAPTOP, channel="D0SENTINEL").status == 200
    app.fake.wait_for("chat.postMessage", lambda c: c.params.get("channel") == "D0SENTINEL")
    said = [c for c in app.fake.calls if c.method in SPEAKING]
    assert [c.params.get("channel") for c in said] == ["D0SENTINEL"]
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


# --- who is asking -----------------------------------------------------------------------

GOOD_DM = {"type": "message", "channel_type": "im", "channel": "D0ALICE", "user": "U0ALICE",
           "text": ANSWER_LAPTOP, "ts": "1700000000.000100"}


def test_unsigned_request_is_rejected(running_app: RunningApp,
        caplog: pytest.LogCaptureFixture) -> None:
    reply = raw_post(running_app, event_body(GOOD_DM), {"Content-Type": JSON})
    assert reply.status == 401
    still_serving_and_silent(running_app, caplog)


def test_signature_with_the_wrong_secret_is_rejected(running_app: RunningApp,
        caplog: pytest.LogCaptureFixture) -> None:
    body = event_body(GOOD_DM)
    reply = raw_post(running_app, body, signed(body, secret="0123456789abcdefwrongsecret"))
    assert reply.status == 401
    still_serving_and_silent(running_app, caplog)


def test_signature_of_another_body_is_rejected(running_app: RunningApp,
        caplog: pytest.LogCaptureFixture) -> None:
    body = event_body(GOOD_DM)
    headers = signed(event_body(GOOD_DM | {"text": "something harmless"}))
    assert raw_post(running_app, body, headers).status == 401
    still_serving_and_silent(running_app, caplog)


def test_replayed_request_with_an_old_timestamp_is_rejected(running_app: RunningApp,
        caplog: pytest.LogCaptureFixture) -> None:
    # A genuine request captured ten minutes ago and sent again, signature and all.
    body = event_body(GOOD_DM)
    captured = signed(body, timestamp=str(int(time.time()) - 10 * 60))
    assert raw_post(running_app, body, captured).status == 401
    still_serving_and_silent(running_app, caplog)


def test_timestamp_that_is_not_a_number_is_rejected(running_app: RunningApp,
        caplog: pytest.LogCaptureFixture) -> None:
    body = event_body(GOOD_DM)
    headers = signed(body) | {"X-Slack-Request-Timestamp": "yesterday"}
    assert raw_post(running_app, body, headers).status == 401
    still_serving_and_silent(running_app, caplog)


# --- what is sent ------------------------------------------------------------------------


def test_oversized_body_gets_413_without_being_read(running_app: RunningApp,
        caplog: pytest.LogCaptureFixture) -> None:
    # Declares 64 MiB but sends 1 KiB: a server that tried to read it all would hang here
    # until the client's timeout, instead of answering at once.
    declared = b"x" * (64 * 1024 * 1024)
    reply = raw_post(running_app, declared, signed(b"{}"), send=b"{" + b" " * 1023)
    assert reply.status == 413
    still_serving_and_silent(running_app, caplog)


def test_body_one_byte_over_the_limit_gets_413(running_app: RunningApp,
        caplog: pytest.LogCaptureFixture) -> None:
    # Only the start is sent: the server must answer from the declared length alone.
    body = b"{" + b" " * MAX_BODY_BYTES
    assert raw_post(running_app, body, signed(body), send=body[:4096]).status == 413
    still_serving_and_silent(running_app, caplog)


def test_body_of_exactly_the_limit_is_read(running_app: RunningApp,
        caplog: pytest.LogCaptureFixture) -> None:
    body = b"{" + b" " * (MAX_BODY_BYTES - 1)  # read in full, then found to be cut short
    assert raw_post(running_app, body, signed(body)).status == 400
    still_serving_and_silent(running_app, caplog)


def test_malformed_content_length_gets_400(running_app: RunningApp,
        caplog: pytest.LogCaptureFixture) -> None:
    body = event_body(GOOD_DM)
    reply = raw_post(running_app, body, signed(body) | {"Content-Length": "12abc"},
                     send=b"")
    assert reply.status == 400
    still_serving_and_silent(running_app, caplog)


@pytest.mark.parametrize(("body", "content_type"), [
    (b'{"type": "event_callback", "event": {', JSON),
    (b"[1, 2, 3]", JSON),
    (b'"just a string"', JSON),
    (b"payload=%7Bnot+json", FORM),
    (b"payload=%5B1%2C2%5D", FORM),
    (b"\xff\xfe{\x00}\x00", JSON),
    (b"payload=\xc3\x28", FORM),
    (json.dumps({"type": "event_callback", "event_id": "Ev0X", "event": {}}).encode(), JSON),
    (json.dumps({"type": "event_callback", "event_id": "Ev0X", "event": "hi"}).encode(), JSON),
], ids=["truncated-json", "json-array", "json-string", "form-payload-not-json",
        "form-payload-array", "utf16-bytes", "invalid-utf8", "event-without-type",
        "event-not-an-object"])
def test_signed_but_malformed_body_gets_400(
        running_app: RunningApp, caplog: pytest.LogCaptureFixture, body: bytes,
        content_type: str) -> None:
    assert raw_post(running_app, body, signed(body, content_type)).status == 400
    still_serving_and_silent(running_app, caplog)


def test_unsigned_malformed_body_is_rejected_as_unsigned(running_app: RunningApp,
        caplog: pytest.LogCaptureFixture) -> None:
    body = b'{"type": "event_callback", "event": {'
    assert raw_post(running_app, body, {"Content-Type": JSON}).status == 401
    still_serving_and_silent(running_app, caplog)


# --- what it says ------------------------------------------------------------------------


def test_unknown_event_type_is_acknowledged_and_ignored(
        running_app: RunningApp, caplog: pytest.LogCaptureFixture) -> None:
    # A 2xx, so Slack does not redeliver an event nobody here will ever handle.
    body = event_body({"type": "reaction_added", "user": "U0ALICE", "reaction": "tada",
                       "item": {"type": "message", "channel": "C0X", "ts": "1.2"}})
    assert raw_post(running_app, body, signed(body)).status == 200
    still_serving_and_silent(running_app, caplog)


def test_unknown_request_type_is_not_found(running_app: RunningApp,
        caplog: pytest.LogCaptureFixture) -> None:
    body = json.dumps({"type": "something_new", "team_id": TEAM_ID}).encode()
    assert raw_post(running_app, body, signed(body)).status == 404
    still_serving_and_silent(running_app, caplog)


@pytest.mark.parametrize("event", [
    {"type": "message", "channel_type": "im", "channel": "D0ALICE", "text": ANSWER_LAPTOP,
     "ts": "1700000000.000200"},
    {"type": "message", "channel_type": "im", "user": "U0ALICE", "text": ANSWER_LAPTOP,
     "ts": "1700000000.000201"},
    {"type": "app_mention", "user": "U0ALICE", "text": "<@U0BOT> " + ANSWER_LAPTOP,
     "ts": "1700000000.000202"},
    {"type": "app_mention", "channel": "C0GENERAL", "user": "U0ALICE",
     "text": "<@U0BOT> " + ANSWER_LAPTOP},
    {"type": "app_home_opened", "tab": "home"},
    {"type": "message"},
], ids=["dm-without-user", "dm-without-channel", "mention-without-channel",
        "mention-without-ts", "home-without-user", "bare-message"])
def test_event_missing_fields_is_acknowledged_and_not_answered(
        running_app: RunningApp, caplog: pytest.LogCaptureFixture,
        event: dict[str, Any]) -> None:
    body = event_body(event)
    assert raw_post(running_app, body, signed(body)).status == 200
    still_serving_and_silent(running_app, caplog)


def test_event_callback_without_event_is_acknowledged_and_not_answered(
        running_app: RunningApp, caplog: pytest.LogCaptureFixture) -> None:
    body = json.dumps({"type": "event_callback", "team_id": TEAM_ID,
                       "event_id": "Ev0EMPTY"}).encode()
    # Bolt finds no event in it, so no listener: "not found", and no answer.
    assert raw_post(running_app, body, signed(body)).status == 404
    still_serving_and_silent(running_app, caplog)


SEARCH_VIEW = {"id": "V0MODAL", "type": "modal", "callback_id": "concierge_search"}
CHOOSE = {"type": "button", "action_id": "choose_offering_1", "value": "vpn"}


@pytest.mark.parametrize("payload", [
    {"type": "block_actions", "container": {"type": "message"}},
    {"type": "block_actions", "actions": []},
    {"type": "block_actions", "actions": [{"type": "button"}]},
    {"type": "block_actions", "actions": "choose_offering_1"},
    {"type": "block_actions", "actions": [CHOOSE],
     "container": {"type": "message", "channel_id": "D0ALICE"}},
    {"type": "view_submission"},
    {"type": "view_submission", "view": {"id": "V0MODAL", "type": "modal"}},
    {"type": "view_submission", "view": SEARCH_VIEW | {"state": {"values": {"need": {"need": {
        "value": ANSWER_LAPTOP}}}}}, "user": None},
], ids=["actions-missing", "actions-empty", "action-without-id", "actions-not-a-list",
        "message-click-without-response-url", "submission-without-view",
        "submission-without-callback-id", "submission-without-user"])
def test_interaction_missing_routing_fields_gets_400(
        running_app: RunningApp, caplog: pytest.LogCaptureFixture,
        payload: dict[str, Any]) -> None:
    body = interaction_body(payload)
    assert raw_post(running_app, body, signed(body, FORM)).status == 400
    still_serving_and_silent(running_app, caplog)


@pytest.mark.parametrize("view", [
    SEARCH_VIEW,
    SEARCH_VIEW | {"state": {"values": "nonsense"}},
    SEARCH_VIEW | {"state": {"values": {"need": {"need": {"value": 42}}}}},
], ids=["without-state", "state-not-an-object", "value-not-text"])
def test_search_submission_without_usable_text_keeps_the_modal_open(
        running_app: RunningApp, caplog: pytest.LogCaptureFixture,
        view: dict[str, Any]) -> None:
    body = interaction_body({"type": "view_submission", "view": view})
    reply = raw_post(running_app, body, signed(body, FORM))
    assert reply.status == 200
    assert reply.json()["response_action"] == "errors"
    still_serving_and_silent(running_app, caplog)


def test_command_without_response_url_gets_400(
        running_app: RunningApp, caplog: pytest.LogCaptureFixture) -> None:
    form = {"team_id": TEAM_ID, "command": "/concierge", "text": ANSWER_LAPTOP,
            "user_id": "U0ALICE", "channel_id": "C0GENERAL"}
    body = urlencode(form).encode()
    assert raw_post(running_app, body, signed(body, FORM)).status == 400
    still_serving_and_silent(running_app, caplog)


# --- signed, well-formed JSON, wrong inside ------------------------------------------------


@pytest.mark.parametrize("body", [
    b'{"type": "event_callback", "event": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    b'{"a": ' * 50_000 + b"1" + b"}" * 50_000,
    urlencode({"payload": "[" * 100_000 + "]" * 100_000}).encode(),
], ids=["nested-arrays", "nested-objects", "nested-form-payload"])
def test_deeply_nested_json_gets_400(running_app: RunningApp,
                                     caplog: pytest.LogCaptureFixture, body: bytes) -> None:
    content_type = FORM if body.startswith(b"payload=") else JSON
    assert raw_post(running_app, body, signed(body, content_type)).status == 400
    still_serving_and_silent(running_app, caplog)


@pytest.mark.parametrize("wrong", [
    {"channel": 42}, {"channel": ["D0ALICE"]}, {"user": 7}, {"user": {"id": "U0ALICE"}},
    {"ts": 1700000000.0001}, {"text": 12}, {"text": ["my laptop"]}, {"thread_ts": 3},
    {"channel_type": True}, {"subtype": 5}, {"bot_id": 1},
], ids=lambda wrong: "-".join(f"{k}={type(v).__name__}" for k, v in wrong.items()))
def test_event_with_a_field_of_the_wrong_type_gets_400(
        running_app: RunningApp, caplog: pytest.LogCaptureFixture,
        wrong: dict[str, Any]) -> None:
    body = event_body(GOOD_DM | wrong, event_id="Ev0TYPED")
    assert raw_post(running_app, body, signed(body)).status == 400
    still_serving_and_silent(running_app, caplog)


@pytest.mark.parametrize("wrong", [
    {"event_id": 12345}, {"team_id": 7}, {"api_app_id": ["A0APP"]},
    {"authorizations": "everyone"}, {"event_id": "Ev" + "0" * 100},
], ids=["event-id-number", "team-id-number", "app-id-list", "authorizations-text",
        "event-id-too-long"])
def test_envelope_with_a_field_of_the_wrong_type_gets_400(
        running_app: RunningApp, caplog: pytest.LogCaptureFixture,
        wrong: dict[str, Any]) -> None:
    body = json.dumps(json.loads(event_body(GOOD_DM)) | wrong).encode()
    assert raw_post(running_app, body, signed(body)).status == 400
    still_serving_and_silent(running_app, caplog)


@pytest.mark.parametrize("wrong", [
    {"actions": [CHOOSE | {"value": 42}]},
    {"actions": [CHOOSE | {"action_id": 5}]},
    {"container": {"type": "message", "channel_id": 5, "message_ts": "1.2"},
     "response_url": "https://hooks.slack.test/x"},
    {"channel": {"id": 12}},
    {"message": {"ts": 1.5, "blocks": "nope"}},
    {"team": "T0TEAM"},
    {"user": {"id": "U0ALICE", "team_id": 7}},
], ids=["value-number", "action-id-number", "container-channel-number", "channel-id-number",
        "message-fields-wrong", "team-not-object", "user-team-number"])
def test_click_with_a_field_of_the_wrong_type_gets_400(
        running_app: RunningApp, caplog: pytest.LogCaptureFixture,
        wrong: dict[str, Any]) -> None:
    payload = {"type": "block_actions", "actions": [CHOOSE],
               "response_url": "https://hooks.slack.test/x"} | wrong
    body = interaction_body(payload)
    assert raw_post(running_app, body, signed(body, FORM)).status == 400
    still_serving_and_silent(running_app, caplog)
