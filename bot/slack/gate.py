"""The door in front of Bolt: size, signature and shape of a request, before anything parses it.

    POST /slack/events ──▶ Content-Length sane? ── no ─▶ 400 (413 when over MAX_BODY_BYTES)
                           UTF-8? ────────────────── no ─▶ 400
                           signed by Slack, fresh? ─ no ─▶ 401
                           a JSON object (or form)
                           at most MAX_DEPTH deep,
                           the fields Concierge and
                           Bolt read of the right
                           type? ─────────────────── no ─▶ 400
                           └─ yes: the body, re-readable, goes on to Bolt's adapter

Bolt's WSGI adapter reads whatever `Content-Length` announces, decodes it and parses it
in `BoltRequest`'s constructor (before its own signature check), and its listener
matchers index fields such as `actions[0].action_id` without looking. Garbage
therefore surfaced as a 500 and a traceback, or the server read a body of any size.
The gate answers it with a definite 4xx, reading at most `MAX_BODY_BYTES`. Bolt still
verifies the signature itself afterwards; checking twice costs one HMAC.

A signed body is Slack's, but the shape check does not rest on that: a leaked signing
secret, a proxy that rewrites bodies or a change on Slack's side must meet a 400 here,
not a `TypeError` in a listener thread after the request was acknowledged (a channel that
is a number, a text that is a list) or a `RecursionError` in the JSON parser.
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
# Slack's deepest payloads (rich-text blocks inside a message inside an event) nest about
# ten levels; code that walks a payload recursively must never meet a thousand.
MAX_DEPTH = 40
# Slack's ids (events, teams, users, channels) are a dozen characters or so.
MAX_ID_CHARS = 64

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
    except (ValueError, RecursionError) as exc:
        raise Rejection(400, f"unreadable body ({type(exc).__name__})") from None
    if not isinstance(payload, dict):
        raise Rejection(400, "the body is not a JSON object")
    _require(depth(payload) <= MAX_DEPTH, f"nested deeper than {MAX_DEPTH} levels")
    check_shape(payload)
    check_types(payload)
    return payload


def depth(value: object) -> int:
    """How deeply lists and objects nest in `value` (walked without recursion)."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict):
            children: Iterable[object] = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_DEPTH:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest


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


# Fields read by Concierge's listeners or by Bolt (routing, context), by where they are:
# each must be text when present and not null. Slack always sends them as text.
_ENVELOPE_TEXT = ("type", "token", "team_id", "api_app_id", "event_id", "enterprise_id",
                  "response_url", "trigger_id", "command", "text", "user_id", "channel_id")
_EVENT_TEXT = ("type", "subtype", "channel", "channel_type", "user", "ts", "thread_ts",
               "event_ts", "text", "bot_id", "tab", "team", "client_msg_id")
# Events whose fields the listeners read; other event types only need their `type`
# (in some of them `user` is an object, e.g. `user_change`).
_READ_EVENTS = frozenset({"message", "app_mention", "app_home_opened"})
_ACTION_TEXT = ("action_id", "block_id", "value", "type", "action_ts")
_NESTED_TEXT = {"user": ("id", "team_id", "name", "username"), "team": ("id", "domain"),
                "channel": ("id", "name"), "container": ("type", "channel_id", "message_ts"),
                "message": ("ts", "text", "thread_ts", "user", "bot_id"),
                "view": ("id", "type", "callback_id", "hash", "private_metadata")}


def check_types(payload: dict[str, Any]) -> None:
    """Every field the listeners or Bolt read has the type Slack sends; `Rejection(400)`
    naming the first that does not."""
    _texts(payload, _ENVELOPE_TEXT, "")
    # The event id is the dedupe key (a 64-character column): Slack's are about a dozen.
    event_id = payload.get("event_id")
    _require(event_id is None or 0 < len(event_id) <= MAX_ID_CHARS,
             f"event_id longer than {MAX_ID_CHARS} characters")
    authorizations = payload.get("authorizations")
    _require(authorizations is None or (isinstance(authorizations, list) and all(
        isinstance(a, dict) for a in authorizations)), "authorizations is not a list of objects")
    event = payload.get("event")
    if isinstance(event, dict) and event.get("type") in _READ_EVENTS:
        _texts(event, _EVENT_TEXT, "event.")
    actions = payload.get("actions")
    if isinstance(actions, list):
        for action in actions:
            _require(isinstance(action, dict), "an action is not an object")
            _texts(action, _ACTION_TEXT, "actions[].")
    for key, fields in _NESTED_TEXT.items():
        if payload.get(key) is None:
            continue
        nested = payload[key]
        _require(isinstance(nested, dict), f"{key} is not an object")
        _texts(nested, fields, f"{key}.")
    container = payload.get("container")
    if isinstance(container, dict):
        ephemeral = container.get("is_ephemeral")
        _require(ephemeral is None or isinstance(ephemeral, bool),
                 "container.is_ephemeral is not true or false")
    message = payload.get("message")
    if isinstance(message, dict):
        blocks = message.get("blocks")
        _require(blocks is None or isinstance(blocks, list), "message.blocks is not a list")


def _texts(mapping: dict[str, Any], fields: Iterable[str], prefix: str) -> None:
    for name in fields:
        value = mapping.get(name)
        _require(value is None or isinstance(value, str), f"{prefix}{name} is not text")


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
