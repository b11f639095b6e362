"""Button clicks: a "Did you mean…" choice, feedback, and link buttons (which only need an ack)."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot.replies import (
    ACTION_CHOOSE_NONE,
    ACTION_CHOOSE_RE,
    ACTION_HELPFUL,
    ACTION_NOT_HELPFUL,
    ACTION_REQUEST_RE,
    ACTION_SERVICE_DESK,
    Message,
    chosen_message,
    feedback_note,
    none_message,
    with_feedback_acknowledged,
)
from handlers import Concierge

feedback_log = logging.getLogger("concierge.feedback")


def _posted_message(body: dict[str, Any]) -> tuple[str, str] | None:
    """(channel, ts) of the clicked message when chat.update can edit it (not ephemeral)."""
    container = body.get("container") or {}
    channel = container.get("channel_id") or (body.get("channel") or {}).get("id")
    ts = container.get("message_ts") or (body.get("message") or {}).get("ts")
    if container.get("type") != "message" or container.get("is_ephemeral") or not (
            channel and ts):
        return None
    return str(channel), str(ts)


def replace_clicked_message(body: dict[str, Any], client: WebClient, respond: Respond,
                            message: Message) -> None:
    """Show `message` in place of the one whose button was clicked."""
    posted = _posted_message(body)
    if posted is not None:
        # chat.update keeps working after the response_url's 30 minutes have passed.
        client.chat_update(channel=posted[0], ts=posted[1], **message.payload())
    else:
        respond(replace_original=True, **message.payload())


def register(app: App, concierge: Concierge) -> None:
    def choose_offering(ack: Ack, action: dict[str, Any], body: dict[str, Any],
                        client: WebClient, respond: Respond) -> None:
        ack()
        offering = concierge.catalog.get(str(action.get("value", "")))
        if offering is None:
            # The catalogue was reloaded between the question and the click.
            message = none_message(None, concierge.service_desk,
                                   why="That offering is no longer in the catalogue.")
        else:
            message = chosen_message(offering, concierge.catalog)
        replace_clicked_message(body, client, respond, message)

    def choose_none(ack: Ack, body: dict[str, Any], client: WebClient,
                    respond: Respond) -> None:
        ack()
        feedback_log.info("unmet need: no suggestion fitted (user=%s)",
                          (body.get("user") or {}).get("id"))
        replace_clicked_message(body, client, respond, none_message(
            None, concierge.service_desk, why="None of the suggestions fitted."))

    def give_feedback(ack: Ack, action: dict[str, Any], body: dict[str, Any],
                      client: WebClient, respond: Respond) -> None:
        ack()
        helpful = action.get("action_id") == ACTION_HELPFUL
        user = (body.get("user") or {}).get("id")
        feedback_log.info("feedback offering=%s helpful=%s user=%s", action.get("value"),
                          helpful, user)
        posted = _posted_message(body)
        original = (body.get("message") or {}).get("blocks")
        if posted is not None and original:
            client.chat_update(channel=posted[0], ts=posted[1],
                               text=(body.get("message") or {}).get("text", ""),
                               blocks=with_feedback_acknowledged(original, helpful, user))
        else:
            # Ephemeral messages arrive without their blocks: thank in a new ephemeral line.
            respond(response_type="ephemeral", replace_original=False,
                    text=feedback_note(helpful, user))

    def open_link(ack: Ack) -> None:
        # Link buttons open in the browser by themselves; Slack still expects an ack.
        ack()

    app.action(ACTION_CHOOSE_RE)(choose_offering)
    app.action(ACTION_CHOOSE_NONE)(choose_none)
    app.action(ACTION_HELPFUL)(give_feedback)
    app.action(ACTION_NOT_HELPFUL)(give_feedback)
    app.action(ACTION_REQUEST_RE)(open_link)
    app.action(ACTION_SERVICE_DESK)(open_link)
