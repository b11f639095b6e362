"""Looking for one of Concierge's own messages in Slack: did a message a dead worker was
posting get through?

Both the takeover of events (`handlers.answers`) and the digests (`bot.slack.digests`)
write before they post and settle after; a worker that dies in between leaves the outcome
in doubt, and only Slack can tell. Each message names what it is in its metadata (only
apps can attach metadata, so a bot message carrying it is Concierge's own word), and
`find_message` reads the conversation after a given time for a message whose metadata
matches: `conversations.history` at the top level (newest first), `conversations.replies`
in a thread (oldest first), in pages of `PAGE_SIZE`, at most `MAX_PAGES`.

    found                   InSlack.YES
    read everything, none   InSlack.NO
    more than MAX_PAGES     InSlack.CANNOT_TELL (it could be further on)
    Slack refuses           InSlack.CANNOT_TELL (missing_scope: a channel without the
                            history scope; channel_not_found …): waiting will not help
    429, 5xx, network       InSlack.LOOKUP_FAILED (after the client's own retries): look
                            again later
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.store.takeover import InSlack

log = logging.getLogger("concierge.takeover")

# 15 is the most Slack lets apps outside its Marketplace ask for at once since 2025 (an
# app built for one's own workspace may ask for more). A DM rarely has 15 messages in the
# minutes between a post and its lookup, so one page is the rule.
PAGE_SIZE = 15
# At most this many pages: 60 messages after the post. Past that it could still be
# there: "cannot tell".
MAX_PAGES = 4
# Failures that pass: later, Slack may answer again.
PASSING_ERRORS = frozenset({"ratelimited", "internal_error", "fatal_error",
                            "service_unavailable", "request_timeout"})

Match = Callable[[Mapping[str, Any]], bool]


def metadata_matches(message: Mapping[str, Any], event_type: str,
                     payload: Mapping[str, Any]) -> bool:
    """Whether `message` is a bot's message whose metadata is `event_type` and carries
    every item of `payload`."""
    metadata = message.get("metadata")
    if not (message.get("bot_id") and isinstance(metadata, dict)):
        return False
    found = metadata.get("event_payload")
    return (metadata.get("event_type") == event_type and isinstance(found, dict)
            and all(found.get(k) == v for k, v in payload.items()))


def pages(client: WebClient, channel: str, *, oldest: str,
          thread_ts: str | None = None) -> Iterator[dict[str, Any]]:
    """The conversation's messages after `oldest`, page by page (metadata included)."""
    cursor: str | None = None
    while True:
        if thread_ts is None:
            response = client.conversations_history(
                channel=channel, oldest=oldest, include_all_metadata=True,
                limit=PAGE_SIZE, cursor=cursor)
        else:
            response = client.conversations_replies(
                channel=channel, ts=thread_ts, oldest=oldest, include_all_metadata=True,
                limit=PAGE_SIZE, cursor=cursor)
        page = response.data if isinstance(response.data, dict) else {}
        yield page
        cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
        if not (page.get("has_more") and cursor):
            return


def find_message(client: WebClient, channel: str, match: Match, *, oldest: str,
                 thread_ts: str | None = None, what: str = "a message",
                 refused_level: int = logging.INFO) -> InSlack:
    """Whether a message matching `match` is in `channel` (or its thread) after `oldest`;
    Slack refusing to show it is logged at `refused_level`."""
    try:
        for count, page in enumerate(pages(client, channel, oldest=oldest,
                                           thread_ts=thread_ts), start=1):
            if any(match(m) for m in page.get("messages") or []):
                return InSlack.YES
            if page.get("has_more") and count >= MAX_PAGES:
                log.info("%s: not in %d messages of %s; cannot tell", what,
                         count * PAGE_SIZE, channel)
                return InSlack.CANNOT_TELL
        return InSlack.NO
    except SlackApiError as exc:
        error = str(exc.response.get("error") or "")
        if error == "thread_not_found":
            return InSlack.NO  # no thread, so nothing in it
        if exc.response.status_code == 429 or exc.response.status_code >= 500 or (
                error in PASSING_ERRORS):
            log.info("%s: looking it up failed (%s)", what, error or exc.response.status_code)
            return InSlack.LOOKUP_FAILED
        # missing_scope (a channel), channel_not_found, not_in_channel, …: waiting will
        # not change the answer.
        log.log(refused_level, "%s: Slack will not show %s (%s); sending it again if "
                "need be", what, channel, error)
        return InSlack.CANNOT_TELL
    except (SlackClientError, OSError) as exc:
        log.info("%s: looking it up failed (%s)", what, exc)
        return InSlack.LOOKUP_FAILED
