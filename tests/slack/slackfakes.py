"""Real-HTTP stand-ins for Slack: a fake Web API server and a client that signs like Slack.

The fake Web API is a stdlib HTTP server on 127.0.0.1 that records every call
(`/api/<method>` and `/response/<id>` for response_url posts), can answer
HTTP 429 with `Retry-After` a given number of times, and can hold a call until
the test has done something to its caller (such as killing it), having carried it out or
not. Like Slack it keeps the messages posted, with their metadata, per conversation, and
reads them back with `conversations.history` (top-level messages, newest first) and
`conversations.replies` (a thread, oldest first): `oldest`/`latest` (exclusive unless
`inclusive`), `limit` with cursors, metadata only with `include_all_metadata`, and
`missing_scope` for conversations the bot's scopes do not cover (DMs only, as in
manifest.yaml). `conversations.open` opens (and names) a DM with a user. Files arrive by
Slack's external upload flow, checked step by step as Slack checks it:

    files.getUploadURLExternal(filename, length)   ──▶ {upload_url, file_id}   (files:write)
    POST <upload_url> with the raw bytes              ──▶ 200 "OK - <length>"  (the fake
                                                          keeps the bytes: `uploads`)
    files.completeUploadExternal(files=[{id, title}], channel_id, initial_comment)
                                                      ──▶ the file is shared: a message
                                                          with it lands in the channel

An upload of another length than announced, or a completion before the bytes arrived, is
refused. `SlackSender` posts to the app the way Slack does: `v0:timestamp:body` signed with
HMAC-SHA256.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode

BOT_TOKEN = "xoxb-test-token"
SIGNING_SECRET = "0123456789abcdef0123456789abcdef"
TEAM_ID = "T0TEAM"
BOT_USER_ID = "U0BOT"
BOT_ID = "B0BOT"
APP_ID = "A0APP"
WAIT_SECONDS = 20.0
# What a conversation's id starts with → the scope that lets a bot read it.
HISTORY_SCOPES = {"D": "im:history", "C": "channels:history", "G": "groups:history"}
MANIFEST_SCOPES = frozenset({"app_mentions:read", "channels:read", "chat:write",
                             "chat:write.public", "commands", "files:write", "groups:read",
                             "im:history", "im:write", "usergroups:read"})
# Methods → the scope Slack asks for (those the fake checks).
METHOD_SCOPES = {"files.getUploadURLExternal": "files:write",
                 "files.completeUploadExternal": "files:write",
                 "conversations.open": "im:write"}
DEFAULT_LIMIT = 100
MAX_LIMIT = 999


@dataclass
class Hold:
    """A call the fake Web API keeps waiting: `arrived` is set when it comes in; after
    `release` is set it is dropped unanswered (its caller is presumed dead). Unless
    `carried_out`, it is also unrecorded and without effect: it never reached Slack. With
    `carried_out` it is recorded and takes effect first (a message is posted), as a call
    Slack received does even when its caller dies waiting for the response."""

    arrived: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    carried_out: bool = False


@dataclass
class Upload:
    """A file announced by files.getUploadURLExternal, its bytes once POSTed."""

    file_id: str
    filename: str
    length: int
    alt_txt: str | None
    data: bytes | None = None
    title: str | None = None
    channel: str | None = None
    """Where files.completeUploadExternal shared it."""


@dataclass
class Call:
    """One request the fake Web API received."""

    method: str
    params: dict[str, Any]
    status: int
    headers: dict[str, str] = field(repr=False)


class FakeSlackAPI:
    """Records Web API calls and response_url posts; answers like Slack would."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._lock = threading.Lock()
        self._rate_limits: dict[str, int] = {}
        self._holds: dict[tuple[str, str], Hold] = {}
        self._last_ts = Decimal(0)
        self.usergroups: dict[str, list[str]] = {}
        """Usergroup id → member ids, for `usergroups.users.list`."""
        self.messages: dict[str, list[dict[str, Any]]] = {}
        """Conversation id → its messages (thread replies included), oldest first."""
        self.scopes: set[str] = set(MANIFEST_SCOPES)
        """The bot token's scopes: which conversations `conversations.*` may read."""
        self.members: dict[str, list[str]] = {}
        """Channel id → member ids, for `conversations.members` (paged by `limit`)."""
        self.refuse: dict[tuple[str, str], str] = {}
        """(method, channel) → the error Slack answers, e.g. not_in_channel."""
        self.refused: dict[str, str] = {}
        """Channel → the error chat.postMessage answers for it (`channel_not_found`…)."""
        self.uploads: dict[str, Upload] = {}
        """File id → the file uploaded through the external upload flow."""
        self._file_ids = itertools.count(1)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                fake._handle(self)

            def do_GET(self) -> None:
                fake._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.api_url = f"{self.url}/api/"
        self._thread = threading.Thread(target=self.server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    def start(self) -> FakeSlackAPI:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join()

    def response_url(self, name: str = "1") -> str:
        return f"{self.url}/response/{name}"

    def hold(self, method: str, channel: str, *, carried_out: bool = False) -> Hold:
        """Hold the next call of `method` for `channel` (see `Hold`)."""
        hold = Hold(carried_out=carried_out)
        with self._lock:
            self._holds[(method, channel)] = hold
        return hold

    def add_message(self, channel: str, **fields: Any) -> dict[str, Any]:
        """Put a message into a conversation as if someone had written it (a `ts` is made
        unless given); returns it."""
        with self._lock:
            message = {"type": "message", "ts": fields.pop("ts", None) or self._next_ts(),
                       **fields}
            self.messages.setdefault(channel, []).append(message)
            self.messages[channel].sort(key=lambda m: Decimal(m["ts"]))
            return message

    def messages_in(self, channel: str) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(m) for m in self.messages.get(channel, [])]

    def rate_limit(self, method: str, times: int = 1) -> None:
        """Answer the next `times` calls of `method` with 429 and `Retry-After: 1`."""
        with self._lock:
            self._rate_limits[method] = times

    # -- recording ---------------------------------------------------------------------

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length) if length else b""
        path, _, query = request.path.partition("?")
        headers = {k.lower(): v for k, v in request.headers.items()}
        if path.startswith("/upload/"):  # raw bytes, not a form
            self._receive_upload(request, path.removeprefix("/upload/"), raw, headers)
            return
        params = _parse(raw, request.headers.get("Content-Type", ""), query)
        if path.startswith("/response/"):
            self._record(Call("response_url", params, 200, headers))
            self._reply(request, 200, b"ok", "text/plain")
            return
        method = path.removeprefix("/api/")
        with self._lock:
            hold = self._holds.pop((method, str(params.get("channel"))), None)
            limited = self._rate_limits.get(method, 0)
            if limited and hold is None:
                self._rate_limits[method] = limited - 1
        if hold is not None:
            if hold.carried_out:
                self._record(Call(method, params, 200, headers))
                self._answer(method, params)
            hold.arrived.set()
            hold.release.wait(WAIT_SECONDS)
            request.close_connection = True
            return
        if limited:
            self._record(Call(method, params, 429, headers))
            self._reply(request, 429, json.dumps({"ok": False, "error": "ratelimited"}).encode(),
                        "application/json", {"Retry-After": "1"})
            return
        if headers.get("authorization") != f"Bearer {BOT_TOKEN}":
            body: dict[str, Any] = {"ok": False, "error": "invalid_auth"}
        else:
            body = self._answer(method, params)
        self._record(Call(method, params, 200, headers))
        self._reply(request, 200, json.dumps(body).encode(), "application/json")

    def _answer(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        needed = METHOD_SCOPES.get(method)
        if needed is not None and needed not in self.scopes:
            return {"ok": False, "error": "missing_scope", "needed": needed,
                    "provided": ",".join(sorted(self.scopes))}
        if method == "conversations.open":
            user = str(params.get("users") or "")
            if not user.startswith(("U", "W")) or "," in user:
                return {"ok": False, "error": "user_not_found"}
            return {"ok": True, "channel": {"id": "D" + user[1:]}}
        if method == "files.getUploadURLExternal":
            return self._announce_upload(params)
        if method == "files.completeUploadExternal":
            return self._complete_upload(params)
        if method == "auth.test":
            return {"ok": True, "url": "https://test.slack.example/", "team": "Test",
                    "user": "concierge", "team_id": TEAM_ID, "user_id": BOT_USER_ID,
                    "bot_id": BOT_ID, "is_enterprise_install": False}
        refused = self.refuse.get((method, str(params.get("channel"))))
        if refused is not None:
            return {"ok": False, "error": refused}
        if method == "chat.postMessage":
            refused = self.refused.get(str(params.get("channel")))
            if refused:
                return {"ok": False, "error": refused}
            # Slack posts to a user id in the app's DM with them, and answers with its id.
            channel = str(params.get("channel"))
            if channel[:1] in ("U", "W"):
                params = {**params, "channel": "D" + channel[1:]}
            message = self._post(params)
            return {"ok": True, "channel": params.get("channel"), "ts": message["ts"],
                    "message": message}
        if method == "chat.update":
            ts = params.get("ts")
            self._update(str(params.get("channel")), str(ts), params)
            return {"ok": True, "channel": params.get("channel"), "ts": ts,
                    "message": {"text": params.get("text"), "ts": ts}}
        if method == "chat.postEphemeral":
            with self._lock:
                return {"ok": True, "message_ts": self._next_ts()}
        if method in ("conversations.history", "conversations.replies"):
            return self._read(method, params)
        if method == "usergroups.users.list":
            group = params.get("usergroup", "")
            if group not in self.usergroups:
                return {"ok": False, "error": "no_such_subteam"}
            return {"ok": True, "users": self.usergroups[group]}
        if method in ("views.publish", "views.open"):
            return {"ok": True, "view": {"id": "V0VIEW", **(params.get("view") or {})}}
        if method == "conversations.members":
            return self._members(params)
        return {"ok": True}

    # -- files ---------------------------------------------------------------------------

    def _announce_upload(self, params: dict[str, Any]) -> dict[str, Any]:
        filename, length = params.get("filename"), str(params.get("length") or "")
        if not filename or not length.isdigit() or int(length) <= 0:
            return {"ok": False, "error": "invalid_arguments"}
        file_id = f"F{next(self._file_ids):08d}"
        with self._lock:
            self.uploads[file_id] = Upload(file_id, str(filename), int(length),
                                           params.get("alt_txt"))
        return {"ok": True, "file_id": file_id, "upload_url": f"{self.url}/upload/{file_id}"}

    def _receive_upload(self, request: BaseHTTPRequestHandler, file_id: str, raw: bytes,
                        headers: dict[str, str]) -> None:
        with self._lock:
            upload = self.uploads.get(file_id)
            fits = upload is not None and upload.data is None and len(raw) == upload.length
            if fits and upload is not None:
                upload.data = raw
        self._record(Call("upload", {"file_id": file_id, "bytes": len(raw)},
                          200 if fits else 400, headers))
        if fits:
            self._reply(request, 200, f"OK - {len(raw)}".encode(), "text/plain")
        else:
            self._reply(request, 400, b"upload does not match what was announced",
                        "text/plain")

    def _complete_upload(self, params: dict[str, Any]) -> dict[str, Any]:
        files = params.get("files")
        if isinstance(files, str):
            files = json.loads(files)
        if not isinstance(files, list) or not files:
            return {"ok": False, "error": "invalid_arguments"}
        channel = params.get("channel_id")
        shared = []
        with self._lock:
            for item in files:
                upload = self.uploads.get(str(item.get("id")))
                if upload is None or upload.data is None:
                    return {"ok": False, "error": "file_not_found"}
                upload.title = item.get("title") or upload.filename
                upload.channel = channel
                shared.append({"id": upload.file_id, "name": upload.filename,
                               "title": upload.title, "size": len(upload.data),
                               "mimetype": "image/png" if upload.data.startswith(b"\x89PNG")
                               else "application/octet-stream"})
        if channel:
            self.add_message(str(channel), user=BOT_USER_ID, bot_id=BOT_ID,
                             text=params.get("initial_comment") or "", files=shared)
        return {"ok": True, "files": shared}

    def _record(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)

    # -- messages ----------------------------------------------------------------------

    def _next_ts(self) -> str:
        """Now, as Slack's ts, unique and increasing (call with the lock held)."""
        ts = max(Decimal(f"{time.time():.6f}"), self._last_ts + Decimal("0.000001"))
        self._last_ts = ts
        return f"{ts:.6f}"

    def _post(self, params: dict[str, Any]) -> dict[str, Any]:
        message: dict[str, Any] = {
            "type": "message", "user": BOT_USER_ID, "bot_id": BOT_ID, "app_id": APP_ID,
            "text": params.get("text") or "", "team": TEAM_ID}
        if params.get("blocks"):
            message["blocks"] = params["blocks"]
        if params.get("thread_ts"):
            message["thread_ts"] = str(params["thread_ts"])
        metadata = params.get("metadata")
        if isinstance(metadata, str):  # form-encoded calls send it as JSON text
            metadata = json.loads(metadata)
        if metadata:
            message["metadata"] = metadata
        return self.add_message(str(params.get("channel")), **message)

    def _update(self, channel: str, ts: str, params: dict[str, Any]) -> None:
        with self._lock:
            for message in self.messages.get(channel, []):
                if message["ts"] == ts:
                    message.update({k: params[k] for k in ("text", "blocks") if k in params})

    def _read(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        channel = str(params.get("channel") or "")
        needed = HISTORY_SCOPES.get(channel[:1])
        if needed is None:
            return {"ok": False, "error": "channel_not_found"}
        if needed not in self.scopes:
            return {"ok": False, "error": "missing_scope", "needed": needed,
                    "provided": ",".join(sorted(self.scopes))}
        with self._lock:
            stored = [dict(m) for m in self.messages.get(channel, [])]
        if method == "conversations.history":
            # Top-level messages (thread parents included), newest first.
            found = [m for m in stored if m.get("thread_ts") in (None, m["ts"])]
            found.reverse()
        else:
            thread = str(params.get("ts") or "")
            found = [m for m in stored if m["ts"] == thread or m.get("thread_ts") == thread]
            if not found:
                return {"ok": False, "error": "thread_not_found"}
        inclusive = _flag(params.get("inclusive"))
        if params.get("oldest"):
            oldest = Decimal(str(params["oldest"]))
            found = [m for m in found
                     if Decimal(m["ts"]) > oldest or (inclusive and Decimal(m["ts"]) == oldest)]
        if params.get("latest"):
            latest = Decimal(str(params["latest"]))
            found = [m for m in found
                     if Decimal(m["ts"]) < latest or (inclusive and Decimal(m["ts"]) == latest)]
        if not _flag(params.get("include_all_metadata")):
            for m in found:
                m.pop("metadata", None)
        limit = min(int(params.get("limit") or DEFAULT_LIMIT), MAX_LIMIT)
        start = int(str(params.get("cursor") or "offset:0").removeprefix("offset:"))
        page, rest = found[start:start + limit], found[start + limit:]
        return {"ok": True, "messages": page, "has_more": bool(rest),
                "response_metadata": {"next_cursor": f"offset:{start + limit}" if rest else ""}}

    def _members(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = str(params.get("channel") or "")
        needed = {"C": "channels:read", "G": "groups:read"}.get(channel[:1])
        if needed is not None and needed not in self.scopes:
            return {"ok": False, "error": "missing_scope", "needed": needed}
        if channel not in self.members:
            return {"ok": False, "error": "channel_not_found"}
        everyone = self.members[channel]
        limit = min(int(params.get("limit") or DEFAULT_LIMIT), MAX_LIMIT + 1)
        start = int(str(params.get("cursor") or "offset:0").removeprefix("offset:"))
        rest = everyone[start + limit:]
        return {"ok": True, "members": everyone[start:start + limit],
                "response_metadata": {"next_cursor": f"offset:{start + limit}" if rest else ""}}

    @staticmethod
    def _reply(request: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str,
               headers: dict[str, str] | None = None) -> None:
        request.send_response(status)
        request.send_header("Content-Type", content_type)
        request.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            request.send_header(name, value)
        request.end_headers()
        request.wfile.write(body)

    # -- querying ----------------------------------------------------------------------

    def calls_to(self, method: str, *, ok_only: bool = True) -> list[Call]:
        with self._lock:
            return [c for c in self.calls
                    if c.method == method and (c.status == 200 or not ok_only)]

    def wait_for(self, method: str, where: Callable[[Call], bool] = lambda c: True, *,
                 count: int = 1, timeout: float = WAIT_SECONDS) -> list[Call]:
        """Poll until `count` successful calls of `method` match `where`; return them all."""
        deadline = time.monotonic() + timeout
        while True:
            found = [c for c in self.calls_to(method) if where(c)]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} {method} call(s) within {timeout}s; "
                                     f"got {[(c.method, c.status) for c in self.calls]}")
            time.sleep(0.02)


def _flag(value: Any) -> bool:
    """A boolean parameter as Slack reads it: slack_sdk sends "1"/"0", others "true"."""
    return str(value).strip().lower() in ("1", "true")


def _parse(raw: bytes, content_type: str, query: str) -> dict[str, Any]:
    params: dict[str, Any] = dict(parse_qsl(query))
    if not raw:
        return params
    if "json" in content_type:
        params.update(json.loads(raw))
    else:
        params.update(parse_qsl(raw.decode()))
    for key in ("blocks", "view"):
        if isinstance(params.get(key), str):
            params[key] = json.loads(params[key])
    return params


# --- the Slack side of the conversation ---------------------------------------------------


def signature(secret: str, timestamp: str, body: bytes) -> str:
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


@dataclass
class Reply:
    """The app's HTTP response to a request from "Slack"."""

    status: int
    body: bytes
    headers: dict[str, str]
    """Lower-cased names: HTTP header names are case-insensitive."""

    def json(self) -> Any:
        return json.loads(self.body)


class SlackSender:
    """Posts events, commands and interactions to the app, signed as Slack signs them."""

    def __init__(self, url: str, fake: FakeSlackAPI, secret: str = SIGNING_SECRET) -> None:
        self.url = url
        self.fake = fake
        self.secret = secret
        self._ids = itertools.count(1)

    def post(self, body: bytes, content_type: str, *, timestamp: str | None = None,
             sign_with: str | None = None, headers: dict[str, str] | None = None) -> Reply:
        ts = timestamp or str(int(time.time()))
        request = urllib.request.Request(self.url, data=body, method="POST", headers={
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature(sign_with or self.secret, ts, body),
            **(headers or {}),
        })
        try:
            with urllib.request.urlopen(request, timeout=WAIT_SECONDS) as response:
                return Reply(response.status, response.read(),
                             {k.lower(): v for k, v in response.headers.items()})
        except urllib.error.HTTPError as error:
            with error:
                return Reply(error.code, error.read(),
                             {k.lower(): v for k, v in error.headers.items()})

    def event(self, event: dict[str, Any], *, event_id: str | None = None,
              retry_num: int | None = None, **kw: Any) -> Reply:
        body = {
            "token": "legacy-token", "team_id": TEAM_ID, "api_app_id": APP_ID,
            "event": event, "type": "event_callback",
            "event_id": event_id or f"Ev{next(self._ids):08d}",
            "event_time": int(time.time()),
            "authorizations": [{"team_id": TEAM_ID, "user_id": BOT_USER_ID, "is_bot": True}],
        }
        headers = kw.pop("headers", {})
        if retry_num is not None:
            headers |= {"X-Slack-Retry-Num": str(retry_num),
                        "X-Slack-Retry-Reason": "http_timeout"}
        return self.post(json.dumps(body).encode(), "application/json", headers=headers, **kw)

    def dm(self, text: str, *, user: str | None = "U0ALICE", channel: str = "D0ALICE",
           ts: str = "1700000000.000100", **fields: Any) -> Reply:
        event = {"type": "message", "channel_type": "im", "channel": channel, "user": user,
                 "text": text, "ts": ts, "event_ts": ts, **fields}
        return self.event({k: v for k, v in event.items() if v is not None})

    def command(self, text: str, *, user: str = "U0ALICE", response: str = "cmd") -> Reply:
        form = {"token": "legacy-token", "team_id": TEAM_ID, "team_domain": "test",
                "channel_id": "C0GENERAL", "channel_name": "general", "user_id": user,
                "user_name": "alice", "command": "/concierge", "text": text,
                "api_app_id": APP_ID, "response_url": self.fake.response_url(response),
                "trigger_id": "1337.42.abcd"}
        return self.post(urlencode(form).encode(), "application/x-www-form-urlencoded")

    def interaction(self, payload: dict[str, Any]) -> Reply:
        base = {"team": {"id": TEAM_ID, "domain": "test"}, "api_app_id": APP_ID,
                "token": "legacy-token", "user": {"id": "U0ALICE", "team_id": TEAM_ID},
                "trigger_id": "1337.42.efgh"}
        body = urlencode({"payload": json.dumps(base | payload)}).encode()
        return self.post(body, "application/x-www-form-urlencoded")

    def submit_view(self, view: dict[str, Any], *, user: str = "U0ALICE",
                    name: str = "alice") -> Reply:
        """A modal submitted, as Slack sends it (`view_submission`); the view as Slack
        keeps it: an id, the state of its inputs, our private_metadata."""
        return self.interaction({"type": "view_submission", "view": view,
                                 "user": {"id": user, "username": name, "name": name,
                                          "team_id": TEAM_ID}})

    def click(self, action_id: str, value: str, *, message: dict[str, Any] | None = None,
              channel: str = "D0ALICE", ephemeral: bool = False,
              response: str = "click", user: str = "U0ALICE") -> Reply:
        container: dict[str, Any] = {"type": "message", "channel_id": channel,
                                     "is_ephemeral": ephemeral}
        payload: dict[str, Any] = {
            "type": "block_actions", "channel": {"id": channel},
            "response_url": self.fake.response_url(response),
            "actions": [{"type": "button", "action_id": action_id, "block_id": "b",
                         "value": value, "action_ts": "1700000300.000001"}],
        }
        if message is not None:
            container["message_ts"] = message["ts"]
            payload["message"] = message
        payload["container"] = container
        payload["user"] = {"id": user, "team_id": TEAM_ID}
        return self.interaction(payload)


def all_text(blocks: Any) -> str:
    """Every string in a Block Kit structure, joined: for "does the card say X" checks."""
    return "\n".join(_strings(blocks))


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def buttons(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every button in the blocks (actions elements and section accessories)."""
    found = []
    for block in blocks:
        for element in [*block.get("elements", []), block.get("accessory") or {}]:
            if isinstance(element, dict) and element.get("type") == "button":
                found.append(element)
    return found


def button_parts(value: str) -> tuple[str, int | None]:
    """(offering id, question id or None) of a card button's value (`bot.slack.buttons`)."""
    offering_id, question, _tag = value.split("#")
    return offering_id, int(question) if question else None
