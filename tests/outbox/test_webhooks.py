"""Webhooks: configured from the environment (https only, a secret each), signed as documented,
and every kind of answer from a real HTTP receiver on 127.0.0.1 read as delivered, try again
or failed, without a response body ever showing up."""

from __future__ import annotations

import hmac
import json
import socket
import threading
import time
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
from webhookfake import WEBHOOK_SECRET, FakeWebhook, verify

from bot.catalogue.models import FieldType
from bot.errors import ConfigError
from bot.outbox.forms import Answer
from bot.outbox.outcome import Verdict
from bot.outbox.webhooks import (
    Webhook,
    Webhooks,
    known_for_check,
    post,
    request_body,
    retry_after,
    signature,
)

SECRET = WEBHOOK_SECRET
BODY = b'{"type":"concierge.request"}'


@pytest.fixture
def receiver(webhook: FakeWebhook) -> FakeWebhook:
    return webhook


def hook(url: str) -> Webhook:
    return Webhook("servicedesk", url, SECRET)


def test_webhooks_come_from_pairs_of_variables() -> None:
    env = {"CONCIERGE_WEBHOOK_SERVICEDESK_URL": "https://desk.example.test/hook?token=x",
           "CONCIERGE_WEBHOOK_SERVICEDESK_SECRET": SECRET,
           "CONCIERGE_WEBHOOK_FACILITIES_DESK_URL": "http://127.0.0.1:9/hook",
           "CONCIERGE_WEBHOOK_FACILITIES_DESK_SECRET": SECRET,
           "CONCIERGE_WEBHOOK_EMPTY_URL": "  ", "OTHER": "x"}
    webhooks = Webhooks.from_env(env)
    assert webhooks.names == {"servicedesk", "facilities_desk"}
    assert webhooks.known().names == webhooks.names and webhooks.known().strict
    # Neither the URL (it may hold a token) nor the secret shows in a repr.
    shown = repr(webhooks)
    assert "token" not in shown and SECRET not in shown


@pytest.mark.parametrize(("env", "setting", "message"), [
    ({"CONCIERGE_WEBHOOK_SD_URL": "https://x.test/h"}, "CONCIERGE_WEBHOOK_SD_SECRET",
     "is not set: every webhook needs a secret"),
    ({"CONCIERGE_WEBHOOK_SD_SECRET": SECRET}, "CONCIERGE_WEBHOOK_SD_SECRET",
     "is set but CONCIERGE_WEBHOOK_SD_URL is not"),
    ({"CONCIERGE_WEBHOOK_SD_URL": "http://desk.example.test/h",
      "CONCIERGE_WEBHOOK_SD_SECRET": SECRET}, "CONCIERGE_WEBHOOK_SD_URL",
     "must be an https:// URL (http:// only for 127.0.0.1, ::1, localhost)"),
    ({"CONCIERGE_WEBHOOK_SD_URL": "ftp://x.test/h", "CONCIERGE_WEBHOOK_SD_SECRET": SECRET},
     "CONCIERGE_WEBHOOK_SD_URL", "must be an https:// URL"),
    ({"CONCIERGE_WEBHOOK_SD_URL": "https://me:pw@x.test/h",
      "CONCIERGE_WEBHOOK_SD_SECRET": SECRET}, "CONCIERGE_WEBHOOK_SD_URL",
     "must not carry a user name or password"),
    ({"CONCIERGE_WEBHOOK_SD_URL": "https://x.test/h", "CONCIERGE_WEBHOOK_SD_SECRET": "short"},
     "CONCIERGE_WEBHOOK_SD_SECRET", "must be at least 16 characters"),
    ({"CONCIERGE_WEBHOOK_9X_URL": "https://x.test/h"}, "CONCIERGE_WEBHOOK_9X_URL",
     "must be letters, digits and _, starting with a letter"),
])
def test_a_bad_webhook_setting_names_its_variable(env: dict[str, str], setting: str,
                                                   message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Webhooks.from_env(env)
    assert caught.value.setting == setting and message in str(caught.value)


def test_check_learns_names_from_urls_the_names_variable_and_the_flag() -> None:
    env = {"CONCIERGE_WEBHOOK_SERVICEDESK_URL": "https://x.test/h",
           "CONCIERGE_WEBHOOKS": "facilities, hr"}
    known = known_for_check(env, "legal")
    assert known.names == {"servicedesk", "facilities", "hr", "legal"} and not known.strict
    assert known_for_check({}).names == frozenset()
    with pytest.raises(ConfigError, match="--webhooks"):
        known_for_check({}, "Bad-Name")


def test_the_signature_is_hmac_sha256_of_version_timestamp_and_body() -> None:
    # The documented example (docs/slack-setup.md), computed by hand.
    assert signature("my-shared-secret-123", "1764000000", b'{"a":1}') == (
        "v1=" + hmac.new(b"my-shared-secret-123", b'v1:1764000000:{"a":1}',
                         "sha256").hexdigest())


def test_a_post_is_signed_keyed_and_verified_by_the_receiver(receiver: FakeWebhook) -> None:
    outcome = post(hook(receiver.url), BODY, "key-1", attempt=3)
    assert outcome.verdict is Verdict.DELIVERED
    [got] = receiver.posts()
    assert got.verified and got.body == BODY
    assert (got.key, got.headers["x-concierge-delivery-attempt"]) == ("key-1", "3")
    assert got.headers["content-type"] == "application/json; charset=utf-8"
    # A receiver with another secret, or a replay after five minutes, refuses it.
    assert not verify("another-secret-0123456", got.headers, got.body)
    assert not verify(SECRET, got.headers, got.body, now=time.time() + 301)
    assert not verify(SECRET, got.headers, got.body + b" ")


@pytest.mark.parametrize(("status", "verdict"), [
    (201, Verdict.DELIVERED), (204, Verdict.DELIVERED), (500, Verdict.RETRY),
    (503, Verdict.RETRY), (408, Verdict.RETRY), (429, Verdict.RETRY), (400, Verdict.FAILED),
    (404, Verdict.FAILED), (410, Verdict.FAILED), (302, Verdict.FAILED),
])
def test_each_answer_is_read_without_its_body(receiver: FakeWebhook, status: int,
                                              verdict: Verdict) -> None:
    receiver.answer_with(status)
    outcome = post(hook(receiver.url), BODY, "key")
    assert outcome.verdict is verdict
    assert "stack trace" not in outcome.detail and "password" not in outcome.detail
    if verdict is not Verdict.DELIVERED:
        assert outcome.detail.startswith(f"HTTP {status}")


def test_a_wrong_secret_is_a_lasting_failure(receiver: FakeWebhook) -> None:
    outcome = post(Webhook("sd", receiver.url, "not-the-shared-secret"), BODY, "key")
    assert (outcome.verdict, outcome.detail) == (Verdict.FAILED, "HTTP 401")


def test_retry_after_is_honoured_in_seconds_or_as_a_date(receiver: FakeWebhook) -> None:
    receiver.answer_with(429, retry_after="120")
    outcome = post(hook(receiver.url), BODY, "key")
    assert (outcome.verdict, outcome.retry_after) == (Verdict.RETRY, 120.0)
    later = datetime.fromtimestamp(1_800_000_060, UTC)
    assert retry_after(format_datetime(later, usegmt=True), now=lambda: 1_800_000_000) == 60.0
    assert retry_after("soon") is None and retry_after(None) is None


def test_a_receiver_that_does_not_answer_in_time_is_tried_again(
        receiver: FakeWebhook) -> None:
    held = receiver.hold_next()
    outcome = post(hook(receiver.url), BODY, "key", timeout=0.5)
    held.release.set()
    assert (outcome.verdict, outcome.detail) == (Verdict.RETRY, "no answer within 0.5 s")


def test_a_receiver_that_is_not_there_is_tried_again() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    outcome = post(hook(f"http://127.0.0.1:{port}/hook"), BODY, "key")
    assert outcome.verdict is Verdict.RETRY and outcome.detail.startswith("cannot connect")


def test_the_body_carries_the_documented_fields() -> None:
    answers = [Answer("model", "Which model?", FieldType.CHOICE, "T14"),
               Answer("how-many", "How many?", FieldType.NUMBER, "2"),
               Answer("notes", "Notes", FieldType.LONG_TEXT, None)]
    body = json.loads(request_body(
        request_id=42, idempotency_key="k", submitted_at=datetime(2026, 11, 24, 10, 15, tzinfo=UTC),
        offering={"id": "laptop", "name": "Laptop"},
        requester={"slack_id": "U0ALICE", "name": "alice", "team_id": "T0TEAM"},
        answers=answers))
    assert body == {
        "type": "concierge.request", "version": 1, "request_id": 42, "idempotency_key": "k",
        "submitted_at": "2026-11-24T10:15:00Z", "offering": {"id": "laptop", "name": "Laptop"},
        "requester": {"slack_id": "U0ALICE", "name": "alice", "team_id": "T0TEAM"},
        "answers": [
            {"id": "model", "label": "Which model?", "type": "choice", "value": "T14"},
            {"id": "how-many", "label": "How many?", "type": "number", "value": 2},
            {"id": "notes", "label": "Notes", "type": "long text", "value": None}]}


def test_posts_from_many_threads_are_each_verified(receiver: FakeWebhook) -> None:
    threads = [threading.Thread(target=post, args=(hook(receiver.url), BODY, f"k{n}"))
               for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.key for r in receiver.accepted()) == sorted(f"k{n}" for n in range(8))
    assert all(r.verified for r in receiver.posts())
