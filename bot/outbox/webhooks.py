"""Webhooks: where they are configured, how their POSTs are signed, and what an answer means.

An offering's form names a webhook (`deliver_to: {webhook: servicedesk}`); its URL and
secret are set where Concierge runs, never in the catalogue:

    CONCIERGE_WEBHOOK_SERVICEDESK_URL      https://desk.example.com/hooks/concierge
    CONCIERGE_WEBHOOK_SERVICEDESK_SECRET   at least 16 characters, shared with the receiver

Each POST carries the request as JSON, signed the way Slack signs its own requests, so the
receiving tool can verify it with the same few lines:

    X-Concierge-Request-Timestamp: 1764000000          (Unix seconds of this attempt)
    X-Concierge-Signature: v1=<hex HMAC-SHA256(secret, "v1:" + timestamp + ":" + body)>
    Idempotency-Key: <the same on every attempt of this delivery>

2xx is delivered. 408, 425, 429 (after `Retry-After`), 5xx, timeouts and connection errors
are tried again later; any other answer (a redirect included: POSTs are not followed) fails
at once, since trying again would get the same answer. A response body is never read into a
message or a log: it may hold anything, and nobody but the receiver's operators should see it.
"""

from __future__ import annotations

import email.utils
import hashlib
import hmac
import http.client
import json
import os
import re
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from bot import __version__
from bot.catalogue.models import KnownWebhooks
from bot.errors import ConfigError
from bot.outbox.forms import Answer
from bot.outbox.outcome import Outcome

SIGNATURE_VERSION = "v1"
TIMESTAMP_HEADER = "X-Concierge-Request-Timestamp"
SIGNATURE_HEADER = "X-Concierge-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
ATTEMPT_HEADER = "X-Concierge-Delivery-Attempt"
TIMEOUT_SECONDS = 10.0
MIN_SECRET_CHARS = 16
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
RETRIED_STATUSES = frozenset({408, 425, 429})
_VARIABLE = re.compile(r"CONCIERGE_WEBHOOK_(.+)_(URL|SECRET)")
_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
NAMES_VARIABLE = "CONCIERGE_WEBHOOKS"
VARIABLES = "CONCIERGE_WEBHOOK_<NAME>_URL"


@dataclass(frozen=True)
class Webhook:
    """One configured webhook. Its URL may itself hold a token, so neither it nor the
    secret appears in a repr or a log."""

    name: str
    url: str = field(repr=False)
    secret: str = field(repr=False)


@dataclass(frozen=True)
class Webhooks:
    """The webhooks configured in the environment, by name."""

    by_name: Mapping[str, Webhook] = field(default_factory=dict)

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self.by_name)

    def get(self, name: str) -> Webhook | None:
        return self.by_name.get(name)

    def known(self) -> KnownWebhooks:
        """What the loader checks a served catalogue against: exactly these names."""
        return KnownWebhooks(self.names, f"the webhooks configured with {VARIABLES}")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Webhooks:
        """Every `CONCIERGE_WEBHOOK_<NAME>_URL` with its `_SECRET`; a bad or half-set one is
        a `ConfigError` naming the variable."""
        env = os.environ if env is None else env
        found: dict[str, dict[str, str]] = {}
        for variable, value in env.items():
            match = _VARIABLE.fullmatch(variable)
            if match is None or not value.strip():
                continue
            name = match.group(1).lower()
            if not _NAME.fullmatch(name):
                raise ConfigError("the name between CONCIERGE_WEBHOOK_ and _URL/_SECRET must "
                                  "be letters, digits and _, starting with a letter",
                                  setting=variable)
            found.setdefault(name, {})[match.group(2)] = value.strip()
        hooks = {}
        for name, parts in sorted(found.items()):
            prefix = f"CONCIERGE_WEBHOOK_{name.upper()}"
            if "URL" not in parts:
                raise ConfigError(f"is set but {prefix}_URL is not", setting=f"{prefix}_SECRET")
            if "SECRET" not in parts:
                raise ConfigError("is not set: every webhook needs a secret to sign its "
                                  "requests (a random string of at least "
                                  f"{MIN_SECRET_CHARS} characters, e.g. from `openssl rand "
                                  "-hex 32`)", setting=f"{prefix}_SECRET")
            check_url(parts["URL"], f"{prefix}_URL")
            if len(parts["SECRET"]) < MIN_SECRET_CHARS:
                raise ConfigError(f"must be at least {MIN_SECRET_CHARS} characters",
                                  setting=f"{prefix}_SECRET")
            hooks[name] = Webhook(name, parts["URL"], parts["SECRET"])
        return cls(hooks)


def check_url(url: str, setting: str) -> None:
    """https only; plain http only to this machine (a test receiver)."""
    parts = urlsplit(url)
    try:
        host = parts.hostname
    except ValueError:
        host = None
    if not host or parts.scheme not in ("https", "http"):
        raise ConfigError("must be an https:// URL", setting=setting)
    if parts.scheme == "http" and host not in LOCAL_HOSTS:
        local = ", ".join(sorted(LOCAL_HOSTS))
        raise ConfigError(f"must be an https:// URL (http:// only for {local})",
                          setting=setting)
    if parts.username or parts.password:
        raise ConfigError("must not carry a user name or password; the secret signs the "
                          "requests instead", setting=setting)


def known_for_check(env: Mapping[str, str] | None = None,
                    listed: str | None = None) -> KnownWebhooks:
    """The names `concierge check` checks forms against: those configured in this
    environment (`CONCIERGE_WEBHOOK_<NAME>_URL`), plus those listed in `--webhooks` or
    `CONCIERGE_WEBHOOKS` (names only, for a CI job that has no URLs or secrets)."""
    env = os.environ if env is None else env
    names = {m.group(1).lower() for variable, value in env.items()
             if value.strip() and (m := _VARIABLE.fullmatch(variable)) and m.group(2) == "URL"}
    for source, text in ((NAMES_VARIABLE, env.get(NAMES_VARIABLE, "")),
                         ("--webhooks", listed or "")):
        for name in filter(None, re.split(r"[\s,]+", text.strip())):
            if not _NAME.fullmatch(name):
                raise ConfigError(f"{name!r} is not a webhook name (lowercase letters, digits "
                                  "and _)", setting=source)
            names.add(name)
    return KnownWebhooks(frozenset(names), f"{VARIABLES}, {NAMES_VARIABLE} or --webhooks",
                         strict=False)


# --- the body and its signature -------------------------------------------------------


def request_body(*, request_id: int, idempotency_key: str, submitted_at: datetime,
                 offering: Mapping[str, Any], requester: Mapping[str, Any],
                 answers: list[Answer]) -> bytes:
    """The JSON a webhook receives (documented field by field in docs/slack-setup.md)."""
    body = {
        "type": "concierge.request",
        "version": 1,
        "request_id": request_id,
        "idempotency_key": idempotency_key,
        "submitted_at": submitted_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "offering": dict(offering),
        "requester": dict(requester),
        "answers": [a.to_json() for a in answers],
    }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """`v1=` and the hex HMAC-SHA256 of `v1:{timestamp}:{body}` keyed with the secret."""
    base = f"{SIGNATURE_VERSION}:{timestamp}:".encode() + body
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_VERSION}={digest}"


# --- sending ----------------------------------------------------------------------------


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # urllib would follow a 301/302 with a GET and lose the body: a redirect is an answer.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def post(webhook: Webhook, body: bytes, idempotency_key: str, *, attempt: int = 1,
         timeout: float = TIMEOUT_SECONDS,
         clock: Callable[[], float] = time.time) -> Outcome:
    """POST `body` to the webhook, signed; what the answer means for the delivery."""
    timestamp = str(int(clock()))
    request = urllib.request.Request(webhook.url, data=body, method="POST", headers={
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": f"Concierge/{__version__}",
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: signature(webhook.secret, timestamp, body),
        IDEMPOTENCY_HEADER: idempotency_key,
        ATTEMPT_HEADER: str(attempt),
    })
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return Outcome.delivered(f"HTTP {response.status}")
    except urllib.error.HTTPError as error:
        with error:
            return _answered(error.code, error.headers)
    except TimeoutError:
        return Outcome.retry(f"no answer within {timeout:g} s")
    except urllib.error.URLError as error:
        reason = error.reason
        if isinstance(reason, ssl.SSLCertVerificationError):
            return Outcome.retry("TLS certificate not trusted")
        if isinstance(reason, TimeoutError):
            return Outcome.retry(f"no answer within {timeout:g} s")
        return Outcome.retry(f"cannot connect ({type(reason).__name__})")
    except (OSError, http.client.HTTPException) as error:
        return Outcome.retry(f"connection failed ({type(error).__name__})")


def _answered(status: int, headers: Any) -> Outcome:
    if 300 <= status < 400:
        return Outcome.failed(f"HTTP {status}: a redirect (set the final URL)")
    if status in RETRIED_STATUSES or status >= 500:
        return Outcome.retry(f"HTTP {status}", retry_after=retry_after(
            headers.get("Retry-After") if headers is not None else None))
    return Outcome.failed(f"HTTP {status}")


def retry_after(value: str | None, *, now: Callable[[], float] = time.time) -> float | None:
    """`Retry-After` as seconds from now: a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now())

