"""App Home: the catalogue by category, and a search modal that answers by direct message."""

from __future__ import annotations

from logging import Logger
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.slack.replies import (
    ACTION_OPEN_SEARCH,
    SEARCH_BLOCK_ID,
    SEARCH_CALLBACK_ID,
    SEARCH_INPUT_ID,
    home_view,
    search_modal,
)
from handlers import Concierge


def _typed_need(view: dict[str, Any]) -> str:
    """The text in the search box; "" when the submitted state is missing or malformed."""
    node: Any = view
    for key in ("state", "values", SEARCH_BLOCK_ID, SEARCH_INPUT_ID, "value"):
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, str) else ""


def register(app: App, concierge: Concierge) -> None:
    def publish_home(event: dict[str, Any], client: WebClient, logger: Logger) -> None:
        if event.get("tab", "home") != "home" or not event.get("user"):
            return  # the Messages tab fires the same event
        client.views_publish(user_id=event["user"], view=home_view(concierge.catalog))

    def open_search(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        client.views_open(trigger_id=body["trigger_id"], view=search_modal())

    def answer_search(ack: Ack, body: dict[str, Any], view: dict[str, Any],
                      client: WebClient) -> None:
        need = _typed_need(view)
        if not need.strip():
            ack(response_action="errors", errors={SEARCH_BLOCK_ID: "Tell me what you need."})
            return
        ack()  # closes the modal; the answer goes to the user's DM with the app
        user = body["user"]["id"]
        # Modal input is raw text (no Slack escaping), so it goes to the core as typed.
        reply = concierge.reply(need, surface="home", user=user,
                                team=(body.get("team") or {}).get("id"))
        client.chat_postMessage(channel=user, **reply.payload())

    app.event("app_home_opened")(publish_home)
    app.action(ACTION_OPEN_SEARCH)(open_search)
    app.view(SEARCH_CALLBACK_ID)(answer_search)
