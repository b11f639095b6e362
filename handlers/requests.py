"""Requests in Slack: the Request button's form, its submission, and the owner's buttons.

Each listener acks (a form submission acks with its answer: errors next to the fields, or
the confirmation), makes one call on the request desk (`bot.slack.request_desk`), then
replies: opens a modal, updates the request's messages in place, or tells the presser alone.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack.replies import ACTION_REQUEST_FORM_RE
from bot.slack.request_desk import Pressed, RequestDesk
from bot.slack.request_replies import (
    ACTION_DECLINE,
    ACTION_DONE,
    ACTION_TAKEN,
    DECLINE_CALLBACK_ID,
    REQUEST_CALLBACK_ID,
)
from handlers.actions import posted_message

log = logging.getLogger("concierge.requests")


def _user(body: dict[str, Any]) -> tuple[str | None, str | None]:
    user = body.get("user") or {}
    return user.get("id"), user.get("name") or user.get("username")


def show(pressed: Pressed, client: WebClient, respond: Respond | None) -> None:
    """Update the request's messages in place and tell the presser what only they need."""
    if pressed.message is not None:
        for channel, ts in pressed.updates:
            try:
                client.chat_update(channel=channel, ts=ts, **pressed.message.payload())
            except SlackApiError as exc:
                # One copy deleted or out of reach must not keep the others stale.
                log.warning("could not update a request's message in %s: %s", channel,
                            exc.response.get("error"))
    if pressed.note and respond is not None:
        respond(response_type="ephemeral", replace_original=False, text=pressed.note)


def register(app: App, desk: RequestDesk) -> None:
    def open_form(ack: Ack, action: dict[str, Any], body: dict[str, Any],
                  client: WebClient) -> None:
        ack()
        offering_id = str(action.get("action_id") or "").partition(":")[2]
        view = desk.form(offering_id, str(action.get("value") or ""), user=_user(body)[0])
        if view is not None:
            client.views_open(trigger_id=body["trigger_id"], view=view)

    def submit_form(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        user, name = _user(body)
        ack(**desk.submit(view, user=user, user_name=name,
                          team=(body.get("team") or {}).get("id")))

    def press(ack: Ack, action: dict[str, Any], body: dict[str, Any], client: WebClient,
              respond: Respond) -> None:
        ack()
        pressed = desk.press(str(action.get("action_id") or ""), str(action.get("value") or ""),
                             user=_user(body)[0], clicked=posted_message(body))
        if pressed.view is not None:
            client.views_open(trigger_id=body["trigger_id"], view=pressed.view)
        show(pressed, client, respond)

    def decline(ack: Ack, body: dict[str, Any], view: dict[str, Any],
                client: WebClient) -> None:
        answer, pressed = desk.decline(view, user=_user(body)[0])
        ack(**answer)
        show(pressed, client, None)

    app.action(ACTION_REQUEST_FORM_RE)(open_form)
    app.view(REQUEST_CALLBACK_ID)(submit_form)
    for action_id in (ACTION_TAKEN, ACTION_DONE, ACTION_DECLINE):
        app.action(action_id)(press)
    app.view(DECLINE_CALLBACK_ID)(decline)
