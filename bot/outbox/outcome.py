"""What one delivery attempt came to: delivered, try again later, or failed for good."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Verdict(enum.StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    """A passing failure: a 5xx, a timeout, a rate limit, the network."""
    FAILED = "failed"
    """Trying again would get the same answer (a 4xx, a channel that does not exist)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    verdict: Verdict
    detail: str
    """For admins and logs: a status and an error class, never a response body."""
    retry_after: float | None = None
    """Seconds the receiver asked to wait (`Retry-After`), for RETRY."""
    message_channel: str | None = None
    """For a Slack message: where it was posted (an id) and its ts, to update it later."""
    message_ts: str | None = None

    @classmethod
    def delivered(cls, detail: str = "ok", *, channel: str | None = None,
                  ts: str | None = None) -> Outcome:
        return cls(Verdict.DELIVERED, detail, message_channel=channel, message_ts=ts)

    @classmethod
    def retry(cls, detail: str, *, retry_after: float | None = None) -> Outcome:
        return cls(Verdict.RETRY, detail, retry_after=retry_after)

    @classmethod
    def failed(cls, detail: str) -> Outcome:
        return cls(Verdict.FAILED, detail)
