"""A receiving tool on 127.0.0.1 that verifies Concierge's webhook signatures as documented.

It checks every POST the way docs/slack-setup.md tells a receiver to (HMAC-SHA256 of
`v1:{timestamp}:{body}` with the shared secret, compared in constant time, a timestamp
within five minutes), records it, and answers from a script (`answer_with(500, 200)`:
the first POST gets 500, the next 200, then 200 by default). It can hold a POST without
answering until the test has done something to its sender (such as killing it), and it
can dedupe by `Idempotency-Key` as a careful receiver would.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

WEBHOOK_SECRET = "webhook-secret-0123456789abcdef"
WAIT_SECONDS = 20.0
TOLERANCE_SECONDS = 300


def verify(secret: str, headers: dict[str, str], body: bytes, *,
           now: float | None = None) -> bool:
    """What a receiver runs: the signature and the timestamp's age (docs/slack-setup.md)."""
    timestamp = headers.get("x-concierge-request-timestamp", "")
    given = headers.get("x-concierge-signature", "")
    if not timestamp.isdigit():
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > TOLERANCE_SECONDS:
        return False
    base = b"v1:" + timestamp.encode() + b":" + body
    expected = "v1=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, given)


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    verified: bool
    status: int | None
    """What it was answered (None: held and dropped unanswered)."""

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def key(self) -> str:
        return self.headers.get("idempotency-key", "")


@dataclass
class HeldPost:
    arrived: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)


class FakeWebhook:
    """The receiving tool: records and verifies POSTs, answers from a script."""

    def __init__(self, secret: str = WEBHOOK_SECRET) -> None:
        self.secret = secret
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._script: list[tuple[int, dict[str, str]]] = []
        self._holds: list[HeldPost] = []
        self.default_status = 200
        self.delay = 0.0
        """Seconds every answer takes (a slow receiver)."""
        self.choose: Callable[[Received], tuple[int, dict[str, str]]] | None = None
        """Decides the status (and headers) of a POST not covered by the script (for the
        measurements)."""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                fake._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/concierge"
        self._thread = threading.Thread(target=self.server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    def start(self) -> FakeWebhook:
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._lock:
            for hold in self._holds:
                hold.release.set()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join()

    def answer_with(self, *statuses: int, retry_after: str | None = None) -> None:
        """The next POSTs get these statuses, in order (`Retry-After` on each if given)."""
        headers = {"Retry-After": retry_after} if retry_after else {}
        with self._lock:
            self._script += [(s, headers) for s in statuses]

    def hold_next(self) -> HeldPost:
        """Keep the next POST waiting, unanswered, until `release` (then drop it)."""
        hold = HeldPost()
        with self._lock:
            self._holds.append(hold)
        return hold

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in request.headers.items()}
        received = Received(headers, body, verify(self.secret, headers, body), None)
        with self._lock:
            hold = self._holds.pop(0) if self._holds else None
            if hold is None:
                status, extra = (self._script.pop(0) if self._script
                                 else self._chosen(received))
                if not received.verified:
                    status, extra = 401, {}
                received.status = status
            self.received.append(received)
        if hold is not None:
            hold.arrived.set()
            hold.release.wait(WAIT_SECONDS)
            request.close_connection = True
            return
        if self.delay:
            time.sleep(self.delay)
        # A body the sender must never show anyone (see docs/slack-setup.md).
        reply = b'{"error": "internal details: stack trace, db password"}'
        try:
            request.send_response(status)
            request.send_header("Content-Type", "application/json")
            request.send_header("Content-Length", str(len(reply)))
            for name, value in extra.items():
                request.send_header(name, value)
            request.end_headers()
            request.wfile.write(reply)
        except (BrokenPipeError, ConnectionResetError):
            request.close_connection = True  # the sender died waiting (a killed worker)

    def _chosen(self, received: Received) -> tuple[int, dict[str, str]]:
        if self.choose is not None:
            return self.choose(received)
        return self.default_status, {}

    # -- querying ----------------------------------------------------------------------

    def posts(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    def accepted(self) -> list[Received]:
        """POSTs answered 2xx."""
        return [r for r in self.posts() if r.status is not None and 200 <= r.status < 300]

    def wait_for(self, count: int = 1, where: Callable[[Received], bool] = lambda r: True,
                 *, accepted: bool = True, timeout: float = WAIT_SECONDS) -> list[Received]:
        deadline = time.monotonic() + timeout
        while True:
            pool = self.accepted() if accepted else self.posts()
            found = [r for r in pool if where(r)]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} webhook POSTs within {timeout}s; got "
                                     f"{[(r.status, r.key) for r in self.posts()]}")
            time.sleep(0.02)
