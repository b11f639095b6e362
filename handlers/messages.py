"""Direct messages and @mentions: answer in the DM, or in the thread of the mention.

Every answer names its event in the message's metadata (`handlers.answers`), so that a
worker taking over the event from a dead one can see whether the answer got through.
"""

from __future__ import annotations

from logging import Logger
from typing import Any

from slack_bolt import App, BoltContext
from slack_sdk import WebClient

from bot.slack.replies import slack_to_plain
from handlers import Concierge
from handlers.answers import answer_metadata, place_of


def is_from_a_bot(event: dict[str, Any], context: BoltContext) -> bool:
    """Messages by any bot, this one included: answering them risks bot-to-bot loops."""
    user = event.get("user")
    return bool(event.get("bot_id") or event.get("bot_profile") or not user
                or user == context.bot_user_id)


def register(app: App, concierge: Concierge) -> None:
    def answer_direct_message(event: dict[str, Any], body: dict[str, Any], client: WebClient,
                              context: BoltContext, logger: Logger) -> None:
        place = place_of(body)
        if place is None or not place.direct or is_from_a_bot(event, context):
            logger.debug("not answering message %s", event.get("ts"))
            return
        need = slack_to_plain(event.get("text") or "", strip_user=context.bot_user_id)
        replies = concierge.direct_message(need, user=event.get("user"), team=context.team_id)
        # A reply inside a DM thread stays in that thread; a top-level DM gets a top-level answer.
        for reply in replies:
            client.chat_postMessage(channel=place.channel, thread_ts=place.thread_ts,
                                    metadata=answer_metadata(body), **reply.payload())

    def answer_mention(event: dict[str, Any], body: dict[str, Any], client: WebClient,
                       context: BoltContext, logger: Logger) -> None:
        place = place_of(body)
        if place is None or is_from_a_bot(event, context):
            logger.debug("not answering mention %s: by a bot, or nowhere to reply",
                         event.get("ts"))
            return
        need = slack_to_plain(event.get("text") or "", strip_user=context.bot_user_id)
        reply = concierge.reply(need, surface="mention", user=event.get("user"),
                                team=context.team_id)
        client.chat_postMessage(channel=place.channel, thread_ts=place.thread_ts,
                                metadata=answer_metadata(body), **reply.payload())

    def ignore_other_messages(logger: Logger, event: dict[str, Any]) -> None:
        # Edits, deletions, joins and bot posts still need a listener: an unhandled event
        # gets a 404, and Slack retries what it thinks failed.
        logger.debug("ignoring message subtype %s", event.get("subtype"))

    # file_share and thread_broadcast are still a person writing to us.
    app.event({"type": "message", "subtype": (None, "file_share", "thread_broadcast")})(
        answer_direct_message)
    app.event("app_mention")(answer_mention)
    app.event("message")(ignore_other_messages)
