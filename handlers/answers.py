"""Where an event's answer goes, the metadata that names the event on it, and the lookup
that finds it there again: a taken-over event whose answer the dead worker did post is
not answered twice (`bot.store.takeover`).

    answering   chat.postMessage(channel, thread_ts,
                                 metadata={"event_type": "concierge_answer",
                                           "event_payload": {"event_id": "Ev…"}})
    looking     a DM             conversations.history (channel, oldest = the event's ts)
                a DM thread      conversations.replies (channel, ts = thread, oldest = …)
                a mention        conversations.replies in the mention's thread
                                 ──▶ a message by a bot whose metadata names the event?

`im:history`, which the bot has to receive DMs at all, lets it read its DMs. A mention's
thread is in a channel: reading it needs `channels:history` (or `groups:history`,
`mpim:history`), which lets the bot read every message of every channel it is in, so the
manifest does not ask for them. Slack then refuses the lookup (`missing_scope`), and the
mention is answered again, at least once rather than at most once. Messages come newest
first from `conversations.history`, oldest first from `conversations.replies`; either
way a few pages of 15 cover the five minutes in which an event may be taken over
(`bot.slack.history` reads them, for the digests too).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from slack_sdk import WebClient

from bot.slack.history import find_message, metadata_matches
from bot.store.takeover import InSlack, Lookup, event_id_of

log = logging.getLogger("concierge.takeover")

ANSWER_EVENT_TYPE = "concierge_answer"
"""The metadata `event_type` of every answer to an event."""
@dataclass(frozen=True, slots=True)
class Place:
    """Where the answer to an event goes: a conversation, perhaps a thread in it."""

    channel: str
    thread_ts: str | None
    after: str
    """The event's own ts: its answer is newer."""
    direct: bool
    """A DM: readable with `im:history`."""


def place_of(body: Mapping[str, Any]) -> Place | None:
    """Where the listeners in `handlers.messages` post the answer to this event callback;
    None for events that are not answered with a message."""
    event = body.get("event")
    if not isinstance(event, dict):
        return None
    channel, ts = event.get("channel"), event.get("ts")
    if not (isinstance(channel, str) and channel and isinstance(ts, str) and ts):
        return None
    thread_ts = event.get("thread_ts")
    thread_ts = thread_ts if isinstance(thread_ts, str) and thread_ts else None
    if event.get("type") == "message" and event.get("channel_type") == "im":
        # A reply inside a DM thread is answered in that thread, a top-level DM at the top.
        return Place(channel, thread_ts, ts, direct=True)
    if event.get("type") == "app_mention":
        return Place(channel, thread_ts or ts, ts, direct=False)
    return None


def answer_metadata(body: Mapping[str, Any]) -> dict[str, Any] | None:
    """Message metadata naming the event an answer answers; None outside event callbacks."""
    event_id = event_id_of(body)
    if event_id is None:
        return None
    return {"event_type": ANSWER_EVENT_TYPE, "event_payload": {"event_id": event_id}}


def names_event(message: Mapping[str, Any], event_id: str) -> bool:
    """Whether `message` is a bot's answer to the event `event_id`. Only apps can attach
    metadata, and only a bot's message counts: the metadata is the app's own word."""
    return metadata_matches(message, ANSWER_EVENT_TYPE, {"event_id": event_id})


def answer_lookup(client: WebClient) -> Lookup:
    """A `bot.store.takeover.Lookup` asking the Web API through `client` (which waits out rate
    limits and retries connection errors itself)."""

    def lookup(event_id: str, body: dict[str, Any]) -> InSlack:
        place = place_of(body)
        if place is None:
            return InSlack.CANNOT_TELL  # nothing to look for: its replay posts nothing either
        return find_message(
            client, place.channel, lambda m: names_event(m, event_id), oldest=place.after,
            thread_ts=place.thread_ts, what=f"event {event_id}",
            refused_level=logging.WARNING if place.direct else logging.INFO)

    return lookup
