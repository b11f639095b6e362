"""Slow and idle clients against `concierge serve` over real sockets: Slack is still answered.

The attack is bounded: a fixed number of connections, each trickling a byte now and then
for at most `ATTACK_SECONDS`, all stopped when the test ends. Nothing here measures time:
a generous socket timeout on the signed request only guards against a server that never
answers.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from conftest import ANSWER_LAPTOP
from slackfakes import WAIT_SECONDS, FakeSlackAPI, SlackSender
from test_serve_process import Host, serve_hosts

from bot.slack.gate import MAX_BODY_BYTES
from bot.slack.worker import REQUEST_READ_SECONDS, RequestBuffer

# Per worker of the default deployment (2): more slow clients than a sync worker has
# processes and than a threaded one has threads.
SLOW_CLIENTS = 24
ATTACK_SECONDS = 60.0
TRICKLE_EVERY = 0.5
HEAD = (b"POST /slack/events HTTP/1.1\r\nHost: concierge\r\n"
        b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n")


class SlowClient:
    """One connection sending a request's head at once, then its body a byte at a time."""

    def __init__(self, port: int, stop: threading.Event) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT_SECONDS)
        self.sock.sendall(HEAD[: len(HEAD) // 2])  # half a head: not even the headers yet
        self.rest = HEAD[len(HEAD) // 2:] + b"x" * 1000
        self.stop = stop
        self.cut_off = threading.Event()
        self.thread = threading.Thread(target=self._trickle, daemon=True)

    def _trickle(self) -> None:
        ends = time.monotonic() + ATTACK_SECONDS
        for i in range(len(self.rest)):
            if self.stop.wait(TRICKLE_EVERY) or time.monotonic() > ends:
                return
            try:
                self.sock.sendall(self.rest[i:i + 1])
            except OSError:
                self.cut_off.set()
                return

    def still_open(self) -> bool:
        """Nothing came back from the server yet: neither a response nor a close."""
        self.sock.setblocking(False)
        try:
            self.sock.recv(1)
        except BlockingIOError:
            return not self.cut_off.is_set()
        except OSError:
            return False
        finally:
            self.sock.setblocking(True)
        return False


def port_of(host: Host) -> int:
    return int(urlsplit(host.slack.url).port or 0)


@contextmanager
def slow_clients(port: int, count: int) -> Iterator[list[SlowClient]]:
    stop = threading.Event()
    clients = [SlowClient(port, stop) for _ in range(count)]
    for client in clients:
        client.thread.start()
    try:
        yield clients
    finally:
        stop.set()
        for client in clients:
            client.thread.join()
            client.sock.close()


def test_slow_clients_do_not_starve_slacks_requests(
        fake_slack: FakeSlackAPI, catalogue_dir: Path, tmp_path: Path) -> None:
    with serve_hosts(fake_slack, catalogue_dir, tmp_path, ["a"], WEB_CONCURRENCY="2") as [host], \
            slow_clients(port_of(host), SLOW_CLIENTS) as slow:
        # The guard is the sender's own socket timeout (WAIT_SECONDS): a starved server
        # never answers, a working one answers whatever the machine's speed.
        reply = SlackSender(host.slack.url, fake_slack).dm(ANSWER_LAPTOP, channel="D0SLOW")
        assert reply.status == 200, host.log.read_text()
        fake_slack.wait_for("chat.postMessage", lambda c: c.params["channel"] == "D0SLOW")
        assert all(c.still_open() for c in slow), "the attack was over before the answer"


def test_a_client_that_never_finishes_is_cut_off(
        fake_slack: FakeSlackAPI, catalogue_dir: Path, tmp_path: Path) -> None:
    with serve_hosts(fake_slack, catalogue_dir, tmp_path, ["a"], WEB_CONCURRENCY="1") as [host], \
            socket.create_connection(("127.0.0.1", port_of(host)),
                                     timeout=REQUEST_READ_SECONDS + WAIT_SECONDS) as idle:
        idle.sendall(HEAD)  # and never the body
        answer = idle.recv(4096)
        assert answer.startswith(b"HTTP/1.1 408 "), host.log.read_text()
        assert idle.recv(4096) == b""


# --- the buffer on its own -------------------------------------------------------------------


def test_a_request_is_complete_once_its_body_has_arrived() -> None:
    buffer = RequestBuffer(deadline=0.0)
    body = b'{"type": "event_callback"}'
    head = (b"POST /slack/events HTTP/1.1\r\ncontent-length:  %d \r\nHost: x\r\n\r\n"
            % len(body))
    assert not buffer.feed(head[:10])
    assert not buffer.feed(head[10:])
    assert not buffer.feed(body[:-1])
    assert buffer.feed(body[-1:] + b"GET / HTTP/1.1\r\n")  # pipelined bytes are not kept
    assert buffer.request() == head + body


@pytest.mark.parametrize("head", [
    b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
    # Refused from the head alone (413 by the gate, 400 by gunicorn): nothing to wait for.
    b"POST /slack/events HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % (MAX_BODY_BYTES + 1),
    b"POST /slack/events HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
    b"POST /slack/events HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
    b"POST /slack/events HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
])
def test_a_request_needing_no_body_is_complete_with_its_head(head: bytes) -> None:
    buffer = RequestBuffer(deadline=0.0)
    assert buffer.feed(head)
    assert buffer.request() == head


def test_a_head_that_never_ends_goes_to_the_parser_to_be_refused() -> None:
    buffer = RequestBuffer(deadline=0.0, max_head=100)
    assert not buffer.feed(b"GET / HTTP/1.1\r\nX-A: " + b"a" * 50)
    assert buffer.feed(b"a" * 60)
