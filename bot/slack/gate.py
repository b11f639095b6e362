"""The door in front of Bolt: size, signature and shape of a request, before anything parses it.

    POST /slack/events ──▶ Content-Length sane? ── no ─▶ 400 (413 when over MAX_BODY_BYTES)
                           UTF-8? ────────────────── no ─▶ 400
                           signed by Slack, fresh? ─ no ─▶ 401
                           a JSON object (or form),
                           routing fields typed? ─── no ─▶ 400
                           └─ yes: the body, re-readable, goes on to Bolt's adapter

Bolt's WSGI adapter reads whatever `Content-Length` announces, decodes it and parses it
in `BoltRequest`'s constructor (before its own signature check), and its listener
matchers index fields such as `actions[0].action_id` without looking. Garbage
therefore surfaced as a 500 and a traceback, or the server read a body of any size.
The gate answers it with a definite 4xx, reading at most `MAX_BODY_BYTES`. Bolt still
verifies the signature itself afterwards; checking twice costs one HMAC.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from slack_bolt.request.internals import parse_body
from slack_sdk.signature import SignatureVerifier

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

# Slack's own payloads are a few KB (a message is at most 40,000 characters, a modal's
# state similar); 1 MiB leaves room for anything real and bounds what one request costs.
MAX_BODY_BYTES = 1024 * 1024

log = logging.getLogger(__name__)

INTERACTION_TYPES = frozenset({"block_actions", "block_suggestion", "view_submission",
                               "view_closed", "shortcut", "message_action"})


class Rejection(Exception):
    """Why a request is turned away at the door, as an HTTP status and a short reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def read_body(environ: WSGIEnvironment, limit: int = MAX_BODY_BYTES) -> bytes:
    """The request body, reading no more than `limit` bytes; `Rejection` when it is longer."""
    raw = str(environ.get("CONTENT_LENGTH") or "0").strip()
    if not raw.isdigit():
        raise Rejection(400, "malformed Content-Length")
    length = int(raw)
    if length > limit:
        raise Rejection(413, f"body over {limit} bytes")
    stream = environ.get("wsgi.input")
    return stream.read(length) if stream is not None and length else b""


def decode(body: bytes) -> str:
    """The body as text; `Rejection(400)` when it is not UTF-8 (Slack only sends UTF-8)."""
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise Rejection(400, "the body is not UTF-8") from None


def check_signature(verifier: SignatureVerifier | None, body: str,
                    environ: WSGIEnvironment) -> None:
    """`Rejection(401)` unless Slack signed this body within the last five minutes."""
    if verifier is None:
        return
    timestamp = environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP")
    try:
        valid = verifier.is_valid(body, timestamp, environ.get("HTTP_X_SLACK_SIGNATURE"))
    except ValueError:  # a timestamp that is not a number
        valid = False
    if not valid:
        raise Rejection(401, "invalid or stale signature")


def parse(body: str, content_type: str | None) -> dict[str, Any]:
    """The payload the way Bolt will read it; `Rejection(400)` when Bolt could not."""
    try:
        payload = parse_body(body, content_type)
    except ValueError as exc:
        raise Rejection(400, f"unreadable body ({type(exc).__name__})") from None
    if not isinstance(payload, dict):
        raise Rejection(400, "the body is not a JSON object")
    check_shape(payload)
    return payload


def check_shape(payload: dict[str, Any]) -> None:
    """The fields Bolt routes on, present and typed (Slack always sends them)."""
    kind = payload.get("type")
    if kind == "event_callback" and "event" in payload:
        _require(isinstance(payload["event"], dict) and _is_text(payload["event"], "type"),
                 "event without a type")
    if kind in INTERACTION_TYPES:
        _require(isinstance(payload.get("user"), dict) and _is_text(payload["user"], "id"),
                 f"{kind} without a user id")
    if kind == "block_actions":
        actions = payload.get("actions")
        _require(isinstance(actions, list) and bool(actions)
                 and all(isinstance(a, dict) and _is_text(a, "action_id") for a in actions),
                 "block_actions without actions that have an action_id")
        container = payload.get("container")
        if isinstance(container, dict) and container.get("type") == "message":
            # Clicks in a message always come with one; the listener answers through it.
            _require(_is_text(payload, "response_url"), "message click without a response_url")
    if kind in ("view_submission", "view_closed"):
        view = payload.get("view")
        _require(isinstance(view, dict) and _is_text(view, "callback_id")
                 and _is_text(view, "type"), f"{kind} without a view callback_id and type")
    if "command" in payload:
        _require(_is_text(payload, "command") and _is_text(payload, "response_url"),
                 "slash command without a response_url")


def _is_text(mapping: dict[str, Any], key: str) -> bool:
    value = mapping.get(key)
    return isinstance(value, str) and bool(value)


def _require(condition: bool, reason: str) -> None:
    if not condition:
        raise Rejection(400, reason)


def gate(inner: WSGIApplication, *, signing_secret: str | None) -> WSGIApplication:
    """`inner` behind the door. Without a signing secret the signature is left to Bolt."""
    verifier = SignatureVerifier(signing_secret) if signing_secret else None

    def guarded(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        try:
            body = read_body(environ)
            text = decode(body)
            check_signature(verifier, text, environ)
            parse(text, environ.get("CONTENT_TYPE"))
        except Rejection as rejection:
            log.warning("rejected %s %s: %d %s", environ.get("REQUEST_METHOD"),
                        environ.get("PATH_INFO"), rejection.status, rejection.reason)
            # No `Connection: close` (WSGI forbids hop-by-hop headers): an unread body is
            # safe anyway, as gunicorn's sync workers and wsgiref close after each response.
            reason = f"{rejection.reason}\n".encode()
            start_response(f"{rejection.status} {_REASONS[rejection.status]}", [
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Content-Length", str(len(reason)))])
            return [reason]
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        return inner(environ, start_response)

    return guarded


_REASONS = {400: "Bad Request", 401: "Unauthorized", 413: "Content Too Large"}
