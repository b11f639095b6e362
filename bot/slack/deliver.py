"""The courier's Slack side: a request's message in the owner's channel (or the owner's DM),
and direct messages about a request, each posted once per attempt and judged by Slack's
answer.

The courier decides when to try again (`bot.outbox.courier`), so this client does not wait
inside a call: no rate-limit retries here (a 429 becomes "try again after `Retry-After`",
stored in the outbox, which a restart does not forget) and a short timeout; only a failed
connection is retried once at once.
"""

from __future__ import annotations

import logging

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry import default_retry_handlers

from bot.outbox.courier import SlackSend
from bot.outbox.intake import MESSAGE
from bot.outbox.outcome import Outcome
from bot.outbox.webhooks import retry_after
from bot.slack.request_replies import REQUEST_MESSAGE_TYPE, notice_message, request_message
from bot.store.requests import Parcel

log = logging.getLogger("concierge.requests")

TIMEOUT_SECONDS = 10
# Errors Slack gives for a moment: the next attempt may succeed.
PASSING_ERRORS = frozenset({"ratelimited", "internal_error", "fatal_error",
                            "service_unavailable", "request_timeout", "team_added_to_org"})
HINTS = {
    "not_in_channel": "invite @Concierge to the channel",
    "channel_not_found": "no such channel, or a private one @Concierge is not in",
    "is_archived": "the channel is archived",
}


def courier_client(token: str, base_url: str) -> WebClient:
    return WebClient(token=token, base_url=base_url, timeout=TIMEOUT_SECONDS,
                     retry_handlers=default_retry_handlers())


def slack_sender(client: WebClient) -> SlackSend:
    """Posts what an outbox item holds, rendered now from the stored request."""

    def send(parcel: Parcel) -> Outcome:
        item = parcel.item
        if item.kind == MESSAGE:
            message = request_message(parcel.request)
            metadata = {"event_type": REQUEST_MESSAGE_TYPE,
                        "event_payload": {"request_id": parcel.request.id, "item": item.id}}
        else:
            message = notice_message(parcel.request, item.purpose, item.payload)
            metadata = None
        try:
            response = client.chat_postMessage(channel=item.target, unfurl_links=False,
                                               unfurl_media=False, metadata=metadata,
                                               **message.payload())
        except SlackApiError as exc:
            return judged(exc)
        except (SlackClientError, OSError, TimeoutError) as exc:
            return Outcome.retry(f"Slack unreachable ({type(exc).__name__})")
        return Outcome.delivered(channel=str(response.get("channel") or item.target),
                                 ts=str(response.get("ts") or ""))

    return send


def judged(exc: SlackApiError) -> Outcome:
    """What a Web API error means for the delivery."""
    response = exc.response
    error = str(response.get("error") or "unknown_error")
    status = int(getattr(response, "status_code", 200) or 200)
    if status == 429 or error == "ratelimited":
        headers = getattr(response, "headers", None) or {}
        wait = headers.get("Retry-After") or headers.get("retry-after")
        return Outcome.retry(f"Slack: {error}", retry_after=retry_after(wait))
    if status >= 500 or error in PASSING_ERRORS:
        return Outcome.retry(f"Slack: {error} (HTTP {status})")
    hint = HINTS.get(error)
    return Outcome.failed(f"Slack: {error}" + (f" ({hint})" if hint else ""))
