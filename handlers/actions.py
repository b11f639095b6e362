"""Button clicks: a "Did you mean…" choice, feedback, and link buttons.

Choices, "None of these", feedback and Request clicks are recorded against the
question whose card was clicked (its id travels in the button value, tagged with its
asker: `bot.slack.buttons`). Only the asker may pick or rate; anyone else's click gets a
note only they see, and the card stays as it is.
"""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot.slack.replies import (
    ACTION_CHOOSE_NONE,
    ACTION_CHOOSE_RE,
    ACTION_HELPFUL,
    ACTION_NOT_HELPFUL,
    ACTION_REQUEST_RE,
    ACTION_SERVICE_DESK,
    Message,
    feedback_note,
    with_feedback_acknowledged,
)
from handlers import Click, Concierge


def posted_message(body: dict[str, Any]) -> tuple[str, str] | None:
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
    posted = posted_message(body)
    if posted is not None:
        # chat.update keeps working after the response_url's 30 minutes have passed.
        client.chat_update(channel=posted[0], ts=posted[1], **message.payload())
    else:
        respond(replace_original=True, **message.payload())


def _clicker(body: dict[str, Any]) -> str | None:
    user = (body.get("user") or {}).get("id")
    return str(user) if user else None


def show(click: Click, body: dict[str, Any], client: WebClient, respond: Respond) -> None:
    """A click's outcome: in place of the card, or (refused) to the clicker alone."""
    if click.replace:
        replace_clicked_message(body, client, respond, click.message)
    else:
        respond(response_type="ephemeral", replace_original=False, **click.message.payload())


def register(app: App, concierge: Concierge) -> None:
    def choose_offering(ack: Ack, action: dict[str, Any], body: dict[str, Any],
                        client: WebClient, respond: Respond) -> None:
        ack()
        click = concierge.choose(str(action.get("value") or ""), user=_clicker(body))
        show(click, body, client, respond)

    def choose_none(ack: Ack, action: dict[str, Any], body: dict[str, Any], client: WebClient,
                    respond: Respond) -> None:
        ack()
        click = concierge.none_fitted(str(action.get("value") or ""), user=_clicker(body))
        show(click, body, client, respond)

    def give_feedback(ack: Ack, action: dict[str, Any], body: dict[str, Any],
                      client: WebClient, respond: Respond) -> None:
        ack()
        helpful = action.get("action_id") == ACTION_HELPFUL
        user = _clicker(body)
        refused = concierge.feedback(str(action.get("value") or ""), helpful=helpful,
                                     user=user)
        if refused is not None:
            show(refused, body, client, respond)
            return
        posted = posted_message(body)
        original = (body.get("message") or {}).get("blocks")
        if posted is not None and original:
            client.chat_update(channel=posted[0], ts=posted[1],
                               text=(body.get("message") or {}).get("text", ""),
                               blocks=with_feedback_acknowledged(original, helpful, user))
        else:
            # Ephemeral messages arrive without their blocks: thank in a new ephemeral line.
            respond(response_type="ephemeral", replace_original=False,
                    text=feedback_note(helpful, user))

    def open_request(ack: Ack, action: dict[str, Any], body: dict[str, Any]) -> None:
        # The browser opens the link by itself; Slack still expects an ack.
        ack()
        offering_id = str(action.get("action_id") or "").partition(":")[2]
        concierge.request_clicked(offering_id, str(action.get("value") or ""),
                                  user=_clicker(body))

    def open_link(ack: Ack) -> None:
        ack()

    app.action(ACTION_CHOOSE_RE)(choose_offering)
    app.action(ACTION_CHOOSE_NONE)(choose_none)
    app.action(ACTION_HELPFUL)(give_feedback)
    app.action(ACTION_NOT_HELPFUL)(give_feedback)
    app.action(ACTION_REQUEST_RE)(open_request)
    app.action(ACTION_SERVICE_DESK)(open_link)
