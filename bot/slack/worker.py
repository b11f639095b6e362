"""gunicorn's threaded worker, changed in one way: a request is read whole before a thread
sees it, so clients that send slowly or not at all cannot hold the threads Slack needs.

    accept ─▶ the worker's main loop reads what each connection sends, never blocking
              ├─ headers and Content-Length bytes all there ─▶ a thread ─▶ the WSGI app
              ├─ not all there REQUEST_READ_SECONDS after accept ─▶ 408, closed
              └─ more than MAX_READING connections still sending ─▶ the oldest: 408, closed

gunicorn's sync workers read a request in the process that then answers it: two clients
trickling a body one byte a second held both workers of a default deployment, and Slack's
own requests (which must be answered within 3 s) waited behind them. Its threaded worker
only waits for the first byte without a thread; after that, each slow client holds one.
Here the main loop buffers every connection until its request is complete (at most
`MAX_BODY_BYTES` of body, the request gate's own limit) or its time is up, like a proxy
that buffers requests; the thread pool only ever gets requests it can answer at once. A
slow client costs a socket and what it sent, for at most `REQUEST_READ_SECONDS`, and no
more than `MAX_READING` of them are kept: a flood pushes out its own oldest connections,
not Slack's, which arrive whole within milliseconds. Connections are not kept alive (a
keep-alive connection would be one more to watch, and Slack opens new ones anyway).
"""

from __future__ import annotations

import contextlib
import re
import selectors
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from gunicorn import util  # type: ignore[import-untyped]
from gunicorn.http.parser import RequestParser  # type: ignore[import-untyped]
from gunicorn.workers.gthread import ThreadWorker  # type: ignore[import-untyped]

from bot.slack.gate import MAX_BODY_BYTES

# Slack sends a whole request in milliseconds; ten seconds is generous for a slow network
# and short enough that a stalled client soon gives its place back.
REQUEST_READ_SECONDS = 10.0
# Connections a worker keeps while their requests are still arriving (gunicorn's
# worker_connections, 1000 by default, bounds all of them, in reading or in a thread).
MAX_READING = 512
# Request line and headers: gunicorn itself allows 100 fields of 8190 bytes; Slack's are
# under 2 KB. Past this the request goes to gunicorn's parser, which refuses it.
MAX_HEAD_BYTES = 64 * 1024
# Threads per worker that run the WSGI app on complete requests. An event is acknowledged
# at once; a command or a click waits for the listener's ack (at most 3 s).
REQUEST_THREADS = 8
RECV_BYTES = 64 * 1024
_TIMEOUT_BODY = b"request not received in time\n"
TIMEOUT_RESPONSE = (b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n"
                    b"Content-Type: text/plain; charset=utf-8\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(_TIMEOUT_BODY), _TIMEOUT_BODY))
_BUFFERED = "concierge_buffered"
_CONTENT_LENGTH = re.compile(rb"^content-length[ \t]*:[ \t]*([^\r\n]*?)[ \t]*\r?$", re.I | re.M)
_TRANSFER_ENCODING = re.compile(rb"^transfer-encoding[ \t]*:", re.I | re.M)


@dataclass(slots=True)
class RequestBuffer:
    """The bytes of one request as they arrive, and whether it is all there yet.

    Complete means: the head and `Content-Length` bytes of body have arrived, or there is
    no point waiting (a body over `max_body` or a malformed length, which the request gate
    or gunicorn's parser refuse without reading it; a head over `max_head`; a chunked
    body, which Slack never sends and the gate reads as empty).
    """

    deadline: float
    max_head: int = MAX_HEAD_BYTES
    max_body: int = MAX_BODY_BYTES
    data: bytearray = field(default_factory=bytearray)
    _end: int | None = None
    """Where the request ends in `data`, once the head says so."""

    def feed(self, chunk: bytes) -> bool:
        """Add what arrived; True once the request is complete."""
        self.data += chunk
        if self._end is None:
            head_end = self.data.find(b"\r\n\r\n")
            if head_end < 0:
                if len(self.data) > self.max_head:
                    self._end = len(self.data)
                return self.complete
            self._end = head_end + 4 + self._body_length(bytes(self.data[:head_end]))
        return self.complete

    def _body_length(self, head: bytes) -> int:
        if _TRANSFER_ENCODING.search(head):
            return 0
        lengths = {m.group(1) for m in _CONTENT_LENGTH.finditer(head)}
        if not lengths:
            return 0
        [raw] = lengths if len(lengths) == 1 else [b"conflicting"]
        if not raw.isdigit() or int(raw) > self.max_body:
            return 0  # refused from the head alone: nothing to wait for
        return int(raw)

    @property
    def complete(self) -> bool:
        return self._end is not None and len(self.data) >= self._end

    def request(self) -> bytes:
        """The complete request (anything sent after it is dropped: no keep-alive)."""
        assert self._end is not None
        return bytes(self.data[: self._end])


class BufferingWorker(ThreadWorker):  # type: ignore[misc]
    """gunicorn's gthread worker with requests buffered whole by its main loop."""

    read_seconds = REQUEST_READ_SECONDS
    max_reading = MAX_READING

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Oldest first: deadlines come in the order connections were accepted.
        self._reading: OrderedDict[int, tuple[Any, RequestBuffer]] = OrderedDict()

    def enqueue_req(self, conn: Any) -> None:
        """gthread hands every accepted connection here; only complete requests go on."""
        if getattr(conn, _BUFFERED, False):
            super().enqueue_req(conn)
            return
        while len(self._reading) >= self.max_reading:
            oldest, _ = next(iter(self._reading.values()))
            self._drop(oldest, answer=True)
        self._reading[id(conn)] = (conn, RequestBuffer(time.monotonic() + self.read_seconds))
        conn.sock.setblocking(False)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._readable, conn))

    def _readable(self, conn: Any, _sock: object) -> None:
        entry = self._reading.get(id(conn))
        if entry is None:
            return
        try:
            chunk = conn.sock.recv(RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        if not chunk:  # the client went away before its request was complete
            self._drop(conn, answer=False)
            return
        buffer = entry[1]
        if not buffer.feed(chunk):
            return
        del self._reading[id(conn)]
        self.poller.unregister(conn.sock)
        # gunicorn parses from an iterable as from a socket; the thread never waits.
        conn.parser = RequestParser(self.cfg, iter([buffer.request()]), conn.client)
        conn.data_ready = True
        setattr(conn, _BUFFERED, True)
        super().enqueue_req(conn)

    def _drop(self, conn: Any, *, answer: bool) -> None:
        self._reading.pop(id(conn), None)
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.poller.unregister(conn.sock)
        if answer:
            # A full send buffer or a gone client: closing says enough.
            with contextlib.suppress(OSError):
                conn.sock.send(TIMEOUT_RESPONSE)
        self.nr_conns -= 1
        util.close(conn.sock)

    def murder_keepalived(self, *args: Any, **kwargs: Any) -> None:
        """gthread's main loop calls this about once a second: also drop the connections
        whose request did not arrive in time (all of them when the worker stops)."""
        super().murder_keepalived(*args, **kwargs)
        force = bool(args[0] if args else kwargs.get("force", False))
        now = time.monotonic()
        while self._reading:
            conn, buffer = next(iter(self._reading.values()))
            if buffer.deadline > now and not force:
                break
            self._drop(conn, answer=True)

    def finish_request(self, conn: Any, fs: Any) -> None:
        """A thread is done with a connection: close it. Never kept alive, never deferred
        (its request was complete); and closed at once, where gthread would linger on this
        loop for up to 2 s reading whatever else a client sends."""
        self.nr_conns -= 1
        util.close(conn.sock)
