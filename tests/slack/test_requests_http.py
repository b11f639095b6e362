"""Requests in Slack over real HTTP, signed as Slack signs: the Request button opens the form
(views.open), a submission is checked (errors next to the fields) and stored, the courier
posts it to the owner's channel, DMs the requester and POSTs it to a webhook that verifies
the signature; the owner's buttons update the message in place and DM the requester; a
database that is down at submission leaves nothing half-sent.

The real Bolt app behind the request gate on 127.0.0.1, the fake Web API (tests/slack/
slackfakes.py) and a receiving tool (tests/webhookfake.py). The courier is ticked by the
test (one tick delivers everything due), so each step is checked when it has happened.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import serving
from slackfakes import Call, FakeSlackAPI, SlackSender, all_text, buttons
from sqlalchemy import func, select
from webhookfake import WEBHOOK_SECRET, FakeWebhook

from bot.slack.app import Runtime, SlackConfig, build_runtime, create_app, make_client
from bot.slack.request_desk import DATABASE_DOWN
from bot.store.tables import OfferingRequest, OutboxItem, RequestClick

CATALOGUE = """\
offerings:
  - id: laptop
    name: Standard laptop
    summary: A managed laptop with a dock.
    kind: product
    owner: {team: Workplace Services, contact: U0OWNER1}
    cost: €1,150 one-off
    service_level: Delivered within 5 business days
    request:
      url: https://it.example.test/request/laptop
      form:
        - label: Which model?
          type: choice
          options: [ThinkPad T14, MacBook Air]
          required: true
        - label: For whom
          type: user
          required: true
        - label: Needed by
          type: date
          help: We deliver within 5 business days.
        - label: How many?
          type: number
        - label: Anything else?
          type: long text
      deliver_to:
        channel: C0REQUESTS
        webhook: servicedesk
    needs: [my laptop is old and slow, I need a new laptop]
  - id: vpn
    name: VPN access
    summary: Secure access from home.
    kind: service
    owner: {team: Network, contact: "#network"}
    request: {url: "https://it.example.test/request/vpn"}
    needs: [I cannot reach the intranet from home]
"""
OWNER = "U0OWNER1"
MEMBER = "U0MEMBER"
OUTSIDER = "U0OUTSIDE"


@dataclass
class App:
    slack: SlackSender
    fake: FakeSlackAPI
    webhook: FakeWebhook
    runtime: Runtime

    def deliver(self) -> None:
        """One courier tick: everything due is delivered before it returns."""
        self.runtime.courier.tick()

    def count(self, table: type) -> int:
        with self.runtime.guard.store.engine.connect() as conn:
            return int(conn.scalar(select(func.count()).select_from(table)) or 0)


def env_for(fake: FakeSlackAPI, knowledge: Path, data: Path, webhook: FakeWebhook,
            **extra: str) -> dict[str, str]:
    return {"SLACK_BOT_TOKEN": "xoxb-test-token",
            "SLACK_SIGNING_SECRET": "0123456789abcdef0123456789abcdef",
            "SLACK_API_URL": fake.api_url, "CONCIERGE_KNOWLEDGE": str(knowledge),
            "CONCIERGE_MATCHER": "lexical", "CONCIERGE_DATA_DIR": str(data),
            "CONCIERGE_WEBHOOK_SERVICEDESK_URL": webhook.url,
            "CONCIERGE_WEBHOOK_SERVICEDESK_SECRET": WEBHOOK_SECRET,
            "CONCIERGE_ADMINS": "U0ADMIN1", **extra}


@pytest.fixture
def knowledge(tmp_path: Path) -> Path:
    folder = tmp_path / "knowledge"
    folder.mkdir()
    (folder / "catalogue.yaml").write_text(textwrap.dedent(CATALOGUE), encoding="utf-8")
    return folder


@pytest.fixture
def app(fake_slack: FakeSlackAPI, knowledge: Path, webhook: FakeWebhook,
        tmp_path: Path) -> Iterator[App]:
    config = SlackConfig.from_env(env_for(fake_slack, knowledge, tmp_path / "data", webhook))
    client = make_client(config)
    runtime = build_runtime(config, client)
    # One listener thread, as in conftest.running_app: a later reply means every earlier
    # interaction has been handled.
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="listener")
    bolt = create_app(config, client=client, runtime=runtime, listener_executor=executor)
    fake_slack.members["C0REQUESTS"] = [OWNER, MEMBER]
    with serving(bolt, config) as url:
        yield App(SlackSender(url, fake_slack), fake_slack, webhook, runtime)
    executor.shutdown(wait=True)
    runtime.courier.stop()
    runtime.guard.store.close()


# --- the requester's side ---------------------------------------------------------------


def card_for(app: App, question: str = "I need a new laptop",
             channel: str = "D0ALICE") -> dict[str, Any]:
    def here(c: Call) -> bool:
        return c.params.get("channel") == channel

    # A test may ask more than once in one channel: wait for this question's card.
    before = len([c for c in app.fake.calls_to("chat.postMessage") if here(c)])
    assert app.slack.dm(question, channel=channel).status == 200
    posted = app.fake.wait_for("chat.postMessage", here, count=before + 1)[-1]
    return {"ts": posted.params.get("ts") or "1700000001.000100",
            "blocks": posted.params["blocks"], "text": posted.params["text"]}


def open_form(app: App, channel: str = "D0ALICE") -> dict[str, Any]:
    card = card_for(app, channel=channel)
    [request] = [b for b in buttons(card["blocks"])
                 if b["action_id"].startswith("open_request_form:")]
    before = len(app.fake.calls_to("views.open"))
    assert app.slack.click(request["action_id"], request["value"], message=card,
                           channel=channel).status == 200
    opened = app.fake.wait_for("views.open", count=before + 1)[-1]
    assert opened.params["trigger_id"] == "1337.42.efgh"
    view: dict[str, Any] = opened.params["view"]
    return view


def filled(view: dict[str, Any], answers: dict[str, Any], *,
           view_id: str = "V0FORM0001") -> dict[str, Any]:
    """The view as Slack submits it: our blocks' inputs answered with `answers` (by block)."""
    values: dict[str, Any] = {}
    for block in view["blocks"]:
        if block["type"] != "input" or block["block_id"] not in answers:
            continue
        element, answer = block["element"], answers[block["block_id"]]
        kind = element["type"]
        if kind == "static_select":
            state = {"selected_option": {"value": answer, "text": {"type": "plain_text",
                                                                    "text": answer}}}
        elif kind == "users_select":
            state = {"selected_user": answer}
        elif kind == "datepicker":
            state = {"selected_date": answer}
        else:
            state = {"value": answer}
        values[block["block_id"]] = {element["action_id"]: {"type": kind, **state}}
    return {"id": view_id, "type": "modal", "callback_id": view["callback_id"],
            "private_metadata": view["private_metadata"], "state": {"values": values}}


GOOD = {"field:which-model": "ThinkPad T14", "field:for-whom": "U0BOB",
        "field:needed-by": "2026-12-01", "field:how-many": "2",
        "field:anything-else": "<!channel> & <https://evil.example|click me>"}


def submit(app: App, answers: dict[str, Any] = GOOD, **kw: Any) -> dict[str, Any]:
    view = open_form(app)
    reply = app.slack.submit_view(filled(view, answers, **kw))
    assert reply.status == 200
    result: dict[str, Any] = reply.json()
    return result


def test_the_request_button_opens_the_form_built_from_the_catalogue(app: App) -> None:
    card = card_for(app)
    labels = [b["text"]["text"] for b in buttons(card["blocks"])
              if b.get("action_id", "").startswith(("open_request_form", "request_offering"))]
    assert labels == ["Request", "Open the request portal"]
    view = open_form(app)
    assert (view["type"], view["callback_id"], view["submit"]["text"]) == (
        "modal", "concierge_request", "Send request")
    inputs = [b for b in view["blocks"] if b["type"] == "input"]
    assert [(b["block_id"], b["element"]["type"], b.get("optional", False)) for b in inputs] == [
        ("field:which-model", "static_select", False),
        ("field:for-whom", "users_select", False),
        ("field:needed-by", "datepicker", True),
        ("field:how-many", "number_input", True),
        ("field:anything-else", "plain_text_input", True)]
    assert [o["value"] for o in inputs[0]["element"]["options"]] == ["ThinkPad T14",
                                                                      "MacBook Air"]
    # Prefilled where Slack knows: for whom = me; who is asking is shown.
    assert inputs[1]["element"]["initial_user"] == "U0ALICE"
    assert inputs[2]["hint"]["text"] == "We deliver within 5 business days."
    assert inputs[4]["element"]["multiline"] is True
    shown = all_text(view["blocks"])
    assert "Requested by <@U0ALICE>" in shown and "Goes to <#C0REQUESTS>" in shown
    assert "the request tool of Workplace Services (servicedesk)" in shown
    assert "€1,150 one-off" in shown
    assert app.count(RequestClick) == 1


def test_a_missing_required_field_is_answered_next_to_it_and_nothing_is_stored(
        app: App) -> None:
    answers = {k: v for k, v in GOOD.items() if k != "field:which-model"}
    result = submit(app, answers | {"field:how-many": "lots"})
    assert result == {"response_action": "errors", "errors": {
        "field:which-model": "Please fill out this field.",
        "field:how-many": "Please enter a number, e.g. 2 or 2.5."}}
    assert app.count(OfferingRequest) == 0
    app.deliver()
    assert app.webhook.posts() == []


def test_a_good_request_goes_to_the_channel_the_requester_and_the_webhook(app: App) -> None:
    result = submit(app)
    assert result["response_action"] == "update"
    confirmation = all_text(result["view"]["blocks"])
    assert "Request #1" in confirmation and "<#C0REQUESTS>" in confirmation
    app.deliver()

    [posted] = app.fake.wait_for("chat.postMessage",
                                 lambda c: c.params.get("channel") == "C0REQUESTS")
    shown = all_text(posted.params["blocks"])
    assert "Request #1: Standard laptop" in shown and "From <@U0ALICE>" in shown
    assert "*For whom*\n<@U0BOB>" in shown and "ThinkPad T14" in shown
    # Answers are escaped: no live @channel, no disguised link.
    assert "&lt;!channel&gt; &amp; &lt;https://evil.example|click me&gt;" in shown
    assert "<!channel>" not in shown
    assert "Cost: €1,150 one-off" in shown and "Delivered within 5 business days" in shown
    assert [b["action_id"] for b in buttons(posted.params["blocks"])] == [
        "request_taken", "request_done", "request_decline"]

    [receipt] = app.fake.wait_for("chat.postMessage",
                                  lambda c: c.params.get("channel") == "U0ALICE")
    told = all_text(receipt.params["blocks"])
    assert "request *#1*" in told and "<#C0REQUESTS>" in told and "servicedesk" in told

    [post] = app.webhook.posts()
    assert post.verified
    body = post.json()
    assert (body["request_id"], body["requester"]) == (
        1, {"slack_id": "U0ALICE", "name": "alice", "team_id": "T0TEAM"})
    assert {a["id"]: a["value"] for a in body["answers"]} == {
        "which-model": "ThinkPad T14", "for-whom": "U0BOB", "needed-by": "2026-12-01",
        "how-many": 2, "anything-else": "<!channel> & <https://evil.example|click me>"}
    app.deliver()  # nothing twice
    assert len(app.webhook.posts()) == 1
    assert len(app.fake.calls_to("chat.postMessage")) == 3  # the card, the channel, the DM


def test_the_same_form_sent_twice_is_one_request(app: App) -> None:
    view = open_form(app)
    first = app.slack.submit_view(filled(view, GOOD)).json()
    again = app.slack.submit_view(filled(view, GOOD)).json()
    assert all_text(first["view"]["blocks"]) == all_text(again["view"]["blocks"])
    assert app.count(OfferingRequest) == 1 and app.count(OutboxItem) == 3


def test_a_form_changed_by_a_reload_is_shown_again(app: App, knowledge: Path) -> None:
    view = open_form(app)
    path = knowledge / "catalogue.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace(
        "        - label: How many?\n          type: number\n", ""), encoding="utf-8")
    assert app.runtime.live.reload().ok
    result = app.slack.submit_view(filled(view, GOOD)).json()
    assert result["response_action"] == "update"
    assert "This form changed while you were filling it in" in all_text(result["view"])
    assert "field:how-many" not in all_text(result["view"]) and app.count(
        OfferingRequest) == 0


def test_a_crafted_submission_is_refused(app: App) -> None:
    view = open_form(app)
    forged = filled(view, GOOD | {"field:for-whom": "<!here>"})
    assert app.slack.submit_view(forged).json() == {
        "response_action": "errors", "errors": {"field:for-whom": "Please pick a person."}}
    unknown = filled(view, GOOD) | {"private_metadata": '{"o":"no-such-thing","q":null,"f":""}'}
    gone = app.slack.submit_view(unknown).json()
    assert gone["response_action"] == "update"
    assert "no longer in the catalogue" in all_text(gone["view"])
    assert app.count(OfferingRequest) == 0


def test_an_offering_with_only_a_url_keeps_its_link_button(app: App) -> None:
    card = card_for(app, "I cannot reach the intranet from home", channel="D0VPN")
    [request] = [b for b in buttons(card["blocks"]) if b["text"]["text"] == "Request"]
    assert request["url"] == "https://it.example.test/request/vpn"
    assert request["action_id"] == "request_offering:vpn"


# --- the owner's side -------------------------------------------------------------------


def delivered_message(app: App) -> dict[str, Any]:
    submit(app)
    app.deliver()
    [posted] = app.fake.wait_for("chat.postMessage",
                                 lambda c: c.params.get("channel") == "C0REQUESTS")
    [message] = app.fake.messages_in("C0REQUESTS")
    assert message["blocks"] == posted.params["blocks"]
    return message


def press(app: App, action: str, message: dict[str, Any], user: str, *,
          channel: str = "C0REQUESTS", response: str = "press") -> None:
    assert app.slack.click(action, "1", message=message, channel=channel, user=user,
                           response=response).status == 200


def dms_to_alice(app: App) -> list[str]:
    return [all_text(c.params.get("blocks") or []) for c in app.fake.calls_to("chat.postMessage")
            if c.params.get("channel") == "U0ALICE"]


def test_owner_buttons_update_the_message_in_place_and_dm_the_requester(app: App) -> None:
    message = delivered_message(app)
    press(app, "request_taken", message, MEMBER)
    [update] = app.fake.wait_for("chat.update")
    assert (update.params["channel"], update.params["ts"]) == ("C0REQUESTS", message["ts"])
    shown = all_text(update.params["blocks"])
    assert "Taken by <@U0MEMBER>" in shown
    assert [b["action_id"] for b in buttons(update.params["blocks"])] == [
        "request_done", "request_decline"]
    app.deliver()
    assert "<@U0MEMBER> took your request *#1* for *Standard laptop*." in dms_to_alice(app)[-1]

    # Decline asks for a reason in a modal, then closes the request with it.
    press(app, "request_decline", message, OWNER)
    opened = app.fake.wait_for("views.open", count=2)[-1]
    decline = opened.params["view"]
    assert decline["callback_id"] == "concierge_decline"
    submitted = {"id": "V0DECLINE1", "type": "modal", "callback_id": "concierge_decline",
                 "private_metadata": decline["private_metadata"],
                 "state": {"values": {"reason": {"answer": {
                     "type": "plain_text_input", "value": "Out of stock <!here>"}}}}}
    assert app.slack.submit_view(submitted, user=OWNER).status == 200
    last = app.fake.wait_for("chat.update", count=2)[-1]
    shown = all_text(last.params["blocks"])
    assert "Declined by <@U0OWNER1>" in shown and "Out of stock &lt;!here&gt;" in shown
    assert buttons(last.params["blocks"]) == []
    app.deliver()
    assert "declined your request *#1*" in dms_to_alice(app)[-1]
    assert "Out of stock &lt;!here&gt;" in dms_to_alice(app)[-1]
    found = app.runtime.concierge.requests.intake.find(1)  # type: ignore[union-attr]
    assert found is not None and (found.request.status, found.request.status_reason) == (
        "declined", "Out of stock <!here>")


def test_only_owners_may_press_and_a_closed_request_stays_closed(app: App) -> None:
    message = delivered_message(app)
    press(app, "request_done", message, OUTSIDER, response="outsider")
    [note] = app.fake.wait_for("response_url", lambda c: c.params.get("text", "").startswith(
        "Only the owner"))
    assert note.params["response_type"] == "ephemeral"
    assert app.fake.calls_to("chat.update") == []

    press(app, "request_done", message, "U0ADMIN1")  # an admin may
    app.fake.wait_for("chat.update")
    press(app, "request_taken", message, MEMBER, response="late")
    [late] = app.fake.wait_for("response_url", lambda c: "already done" in c.params.get(
        "text", ""))
    assert late.params["text"] == "Request #1 is already done."
    app.deliver()
    statuses = [t for t in dms_to_alice(app) if "request *#1*" in t and "went to" not in t]
    assert len(statuses) == 1 and "is done" in statuses[0]


def test_a_crafted_button_value_changes_nothing(app: App) -> None:
    message = delivered_message(app)
    for value in ("1 OR 1=1", "-1", "99999999999999999999", ""):
        assert app.slack.click("request_done", value, message=message, channel="C0REQUESTS",
                               user=OWNER, response=f"v{len(value)}").status == 200
    app.fake.wait_for("response_url", count=4)
    assert app.fake.calls_to("chat.update") == []


def test_with_the_database_down_the_requester_is_told_and_nothing_is_sent(
        fake_slack: FakeSlackAPI, knowledge: Path, webhook: FakeWebhook,
        tmp_path: Path) -> None:
    env = env_for(fake_slack, knowledge, tmp_path / "data", webhook,
                  DATABASE_URL="postgresql+psycopg://concierge@127.0.0.1:1/gone")
    config = SlackConfig.from_env(env)
    client = make_client(config)
    runtime = build_runtime(config, client)
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="listener")
    bolt = create_app(config, client=client, runtime=runtime, listener_executor=executor)
    try:
        with serving(bolt, config) as url:
            down = App(SlackSender(url, fake_slack), fake_slack, webhook, runtime)
            result = submit(down)
            assert result == {"response_action": "errors",
                              "errors": {"field:which-model": DATABASE_DOWN}}
            down.deliver()
    finally:
        executor.shutdown(wait=True)
        runtime.courier.stop()
        runtime.guard.store.close()
    # Only the answer card was posted: no channel message, no DM, no webhook call.
    assert [c.params["channel"] for c in fake_slack.calls_to("chat.postMessage")] == [
        "D0ALICE"]
    assert webhook.posts() == []


def test_admins_list_requests_and_their_deliveries_in_slack(app: App) -> None:
    app.webhook.answer_with(503)
    submit(app)
    app.deliver()
    assert app.slack.command("requests 7", user="U0ADMIN1", response="list").status == 200
    [listing] = app.fake.wait_for("response_url", lambda c: "Concierge requests" in all_text(
        c.params.get("blocks") or []))
    shown = all_text(listing.params["blocks"])
    assert "Requests made in Slack: 1 (0 delivered, 1 being delivered, 0 undeliverable)" in shown
    assert "webhook servicedesk pending (attempt 1 failed: HTTP 503; next " in shown
    assert "message C0REQUESTS delivered" in shown and "receipt to U0ALICE delivered" in shown
    # The webhook's answer body is never shown, here or anywhere.
    assert "stack trace" not in shown and "password" not in shown
    assert app.slack.command("requests", user="U0ALICE", response="refused").status == 200
    [refusal] = app.fake.wait_for("response_url", lambda c: "Admins only" in all_text(
        c.params.get("blocks") or []))
    assert "Concierge requests" not in all_text(refusal.params["blocks"])


def test_a_message_that_cannot_be_updated_does_not_stop_the_change(app: App) -> None:
    message = delivered_message(app)
    app.fake.refuse[("chat.update", "C0REQUESTS")] = "message_not_found"  # deleted meanwhile
    press(app, "request_taken", message, MEMBER)
    app.fake.wait_for("chat.update")
    app.deliver()
    assert "took your request *#1*" in dms_to_alice(app)[-1]
    found = app.runtime.concierge.requests.intake.find(1)  # type: ignore[union-attr]
    assert found is not None and found.request.status == "taken"
