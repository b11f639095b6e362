"""Load test with faults: `python -m tests.benchmarks.load`.

Starts `concierge serve` (gunicorn, several workers, 127.0.0.1 only) against the fake
Slack Web API of the end-to-end tests, sends N signed direct-message events at a target
rate, and checks that every event is answered exactly once (one `chat.postMessage` to
its own channel) while faults are injected on a timeline:

  ratelimit  chat.postMessage answers 429 with Retry-After: 1 for a while
  slow       every Web API call takes 2 s for a while
  retries    every event sent in this window is delivered a second time (X-Slack-Retry-Num)
  kill       one gunicorn worker gets SIGKILL (the master starts a new one)
  slowkill   (not in the default set) every Web API call takes 2 s, and one second in
             one worker gets SIGKILL: it dies with a dozen answers in flight, most of
             them already sent to the Web API, which (like Slack) still posts them; the
             worker taking its events over must find those in the DM and not post again
  limitkill  (not in the default set) chat.postMessage answers 429 for a while, and one
             second in one worker gets SIGKILL: its answers wait out the rate limit in
             memory, never posted, so the worker taking them over finds nothing in the
             DM and must answer each of them once
  database   the database is unavailable for a while: for SQLite (default) another
             connection holds an exclusive lock, so every write fails after the busy
             timeout; for PostgreSQL (--database-url or $DATABASE_URL, a role allowed to
             CREATE and ALTER DATABASE) connections are refused and existing ones terminated

On PostgreSQL each run creates a database of its own on that server (named
concierge_load_<random>) and drops it afterwards, so no claim or heartbeat of an earlier
run takes part. Like Slack, the sender redelivers an event whose ack took longer than 3 s
or failed (up to 3 times, immediately rather than after Slack's minutes, to keep the run
short). Once every event has a reply the run still waits --settle seconds, longer than
a takeover takes, so that a late second answer (a live worker's event taken over by
mistake) would be counted. Reported: ack p50/p99, request-to-postMessage p50/p99, lost and
duplicated replies per fault window, how many events were taken over from a dead worker,
and of those how many had their answer found in Slack (marked answered, not replayed).

    python -m tests.benchmarks.load                      # 1,500 events at 50/s, all faults
    python -m tests.benchmarks.load --events 300 --faults none
    python -m tests.benchmarks.load --database-url postgresql://postgres@127.0.0.1:5432/x
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "slack"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pgdatabase import fresh_database
from slackfakes import SIGNING_SECRET, Call, FakeSlackAPI, SlackSender

ACK_DEADLINE_S = 3.0
SLACK_RETRIES = 3
ALL_FAULTS = ("ratelimit", "slow", "retries", "kill", "database")
EXTRA_FAULTS = ("slowkill", "limitkill")
QUESTIONS = ["my laptop is 5 years old", "I need VPN access from home",
             "mein Konto ist gesperrt", "I forgot my password",
             "we need a shared mailbox for the team", "how do I bake sourdough bread",
             "the printer on floor 2 is jammed", "I have to record interviews with customers"]


class FaultySlackAPI(FakeSlackAPI):
    """The end-to-end tests' fake Web API, plus time-boxed faults and a clock per call."""

    def __init__(self) -> None:
        super().__init__()
        self.limited_until = 0.0
        self.slow_until = 0.0
        self.posted: dict[str, list[float]] = defaultdict(list)

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        now = time.monotonic()
        if now < self.slow_until:
            time.sleep(2.0)
        if now < self.limited_until and request.path.endswith("chat.postMessage"):
            self.rate_limit("chat.postMessage", times=1)
        super()._handle(request)

    def _record(self, call: Call) -> None:
        super()._record(call)
        if call.method == "chat.postMessage" and call.status == 200:
            with self._lock:
                self.posted[str(call.params.get("channel"))].append(time.monotonic())


@dataclass
class Delivery:
    index: int
    sent: float
    window: str
    acks: list[tuple[int | None, float]] = field(default_factory=list)


@dataclass(frozen=True)
class Window:
    fault: str
    start: float
    end: float


def timeline(faults: list[str], duration: float) -> list[Window]:
    """Fault windows spread over the run, each about a seventh of it, with calm between."""
    slot = duration / (len(faults) + 2)
    return [Window(f, slot * (i + 1), slot * (i + 1) + (0.2 if f == "kill" else slot * 0.8))
            for i, f in enumerate(faults)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def worker_pids(master: int) -> list[int]:
    children = Path(f"/proc/{master}/task/{master}/children")
    return [int(p) for p in children.read_text().split()] if children.exists() else []


class Database:
    """Makes the app's database unavailable and available again."""

    def __init__(self, url: str, sqlite_path: Path | None) -> None:
        self.url, self.sqlite_path = url, sqlite_path
        self._lock: sqlite3.Connection | None = None

    def stop(self) -> None:
        if self.sqlite_path is not None:
            # Released from a timer thread: the connection must not be tied to this one.
            self._lock = sqlite3.connect(self.sqlite_path, isolation_level=None, timeout=10,
                                         check_same_thread=False)
            self._lock.execute("BEGIN EXCLUSIVE")
        else:
            self._postgres(False)

    def start(self) -> None:
        if self._lock is not None:
            self._lock.execute("ROLLBACK")
            self._lock.close()
            self._lock = None
        elif self.sqlite_path is None:
            self._postgres(True)

    def _postgres(self, allow: bool) -> None:
        from sqlalchemy import create_engine, text
        from sqlalchemy.engine import make_url

        url = make_url(self.url)
        admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{url.database}" ALLOW_CONNECTIONS {allow}'))
            if not allow:
                conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                  "WHERE datname = :db AND pid <> pg_backend_pid()"),
                             {"db": url.database})
        admin.dispose()


def post_with_retries(slack: SlackSender, delivery: Delivery, event: dict[str, Any],
                      extra_retry: bool) -> None:
    """Deliver like Slack: again when the ack failed or came after 3 s."""
    attempts = 1 + SLACK_RETRIES
    for attempt in range(attempts):
        started = time.monotonic()
        try:
            reply = slack.event(event, event_id=f"EvLOAD{delivery.index:07d}",
                                retry_num=attempt or None)
            status: int | None = reply.status
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            status = None
        took = time.monotonic() - started
        delivery.acks.append((status, took))
        if status is not None and 200 <= status < 300 and took <= ACK_DEADLINE_S:
            break
    if extra_retry:
        slack.event(event, event_id=f"EvLOAD{delivery.index:07d}", retry_num=1)


def run(args: argparse.Namespace) -> dict[str, Any]:
    server_url = args.database_url or os.environ.get("DATABASE_URL", "")
    if not server_url:
        return _run(args, "")
    with fresh_database(server_url, "concierge_load") as database_url:
        return _run(args, database_url)


def _run(args: argparse.Namespace, database_url: str) -> dict[str, Any]:
    fake = FaultySlackAPI().start()
    workdir = Path(tempfile.mkdtemp(prefix="concierge-load-"))
    port = free_port()
    env = {**os.environ, "SLACK_BOT_TOKEN": "xoxb-test-token",
           "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_API_URL": fake.api_url,
           "CONCIERGE_MATCHER": args.matcher, "CONCIERGE_DATA_DIR": str(workdir / "data"),
           "HOST": "127.0.0.1", "PORT": str(port), "WEB_CONCURRENCY": str(args.workers),
           "LOG_LEVEL": "WARNING"}
    env.pop("SLACK_APP_TOKEN", None)
    if database_url:
        env["DATABASE_URL"] = database_url
    else:
        env.pop("DATABASE_URL", None)
    log = (workdir / "serve.log").open("wb")
    server = subprocess.Popen([sys.executable, "-m", "bot.slack.serve"], env=env, stdout=log,
                              stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, server, workdir)
        slack = SlackSender(f"{url}/slack/events", fake)
        db = Database(database_url, None if database_url else workdir / "data" /
                      "concierge.sqlite3")
        windows = timeline([f for f in args.faults if f != "none"], args.events / args.rate)
        deliveries, t0 = _send(args, slack, fake=fake, master=server.pid, db=db, windows=windows)
        _drain(fake, args.events, args.drain, args.settle)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
        fake.stop()
        log.close()
    return _summarise(deliveries, fake, windows, workdir, t0)


def _wait_healthy(url: str, server: subprocess.Popen[bytes], workdir: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit((workdir / "serve.log").read_text())
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    raise SystemExit("the server did not become healthy within 120 s")


def _send(args: argparse.Namespace, slack: SlackSender, *, fake: FaultySlackAPI, master: int,
          db: Database, windows: list[Window]) -> tuple[list[Delivery], float]:
    deliveries: list[Delivery] = []
    t0 = time.monotonic()
    done_faults: set[str] = set()
    stoppers: list[threading.Timer] = []

    def window_at(t: float) -> str:
        return next((w.fault for w in windows if w.start <= t < w.end), "calm")

    with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
        for i in range(args.events):
            due = t0 + i / args.rate
            time.sleep(max(0.0, due - time.monotonic()))
            t = time.monotonic() - t0
            for w in windows:
                if w.fault not in done_faults and t >= w.start:
                    done_faults.add(w.fault)
                    stoppers.append(_inject(w, fake, master, db, t0))
            event = {"type": "message", "channel_type": "im", "channel": f"D{i:07d}",
                     "user": "U0LOAD", "text": QUESTIONS[i % len(QUESTIONS)],
                     "ts": f"{1700000000 + i}.000100"}
            delivery = Delivery(i, time.monotonic(), window_at(t))
            deliveries.append(delivery)
            in_retry_window = any(w.fault == "retries" and w.start <= t < w.end
                                  for w in windows)
            pool.submit(post_with_retries, slack, delivery, event, in_retry_window)
    for timer in stoppers:
        timer.join()
    return deliveries, t0


def _inject(window: Window, fake: FaultySlackAPI, master: int, db: Database,
            t0: float) -> threading.Timer:
    length = window.end - window.start
    now = time.monotonic()
    end: Any = lambda: None  # noqa: E731
    if window.fault == "ratelimit":
        fake.limited_until = now + length
    elif window.fault == "slow":
        fake.slow_until = now + length
    elif window.fault == "kill":
        _kill_one(master, t0)
    elif window.fault == "slowkill":
        fake.slow_until = now + length
        threading.Timer(1.0, _kill_one, (master, t0)).start()
    elif window.fault == "limitkill":
        fake.limited_until = now + length
        threading.Timer(1.0, _kill_one, (master, t0)).start()
    elif window.fault == "database":
        db.stop()
        end = db.start
    timer = threading.Timer(length, end)
    timer.start()
    return timer


def _kill_one(master: int, t0: float) -> None:
    workers = worker_pids(master)
    if workers:
        os.kill(workers[0], signal.SIGKILL)
        print(f"killed worker {workers[0]} at {time.monotonic() - t0:.1f} s", file=sys.stderr)


def _drain(fake: FaultySlackAPI, events: int, limit: float, settle: float) -> None:
    """Wait until every channel got an answer, or until nothing arrived for a while."""
    deadline = time.monotonic() + limit
    last, last_change = -1, time.monotonic()
    while time.monotonic() < deadline:
        answered = len(fake.posted)
        if answered >= events:
            time.sleep(settle)  # let late duplicates show up
            return
        if answered != last:
            last, last_change = answered, time.monotonic()
        elif time.monotonic() - last_change > 20:
            return
        time.sleep(0.5)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


def _summarise(deliveries: list[Delivery], fake: FaultySlackAPI, windows: list[Window],
               workdir: Path, t0: float) -> dict[str, Any]:
    first_acks = [d.acks[0][1] for d in deliveries if d.acks]
    late_acks = sum(1 for d in deliveries for s, t in d.acks if s is None or t > ACK_DEADLINE_S)
    to_post = [fake.posted[f"D{d.index:07d}"][0] - d.sent for d in deliveries
               if fake.posted.get(f"D{d.index:07d}")]
    per_window: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for d in deliveries:
        replies = len(fake.posted.get(f"D{d.index:07d}", []))
        row = per_window[d.window]
        row["events"] += 1
        row["lost"] += replies == 0
        row["duplicated"] += replies > 1
        row["redelivered"] += len(d.acks) > 1
        row["failed_acks"] += sum(1 for s, _ in d.acks if s is None or s >= 300)
    statuses = defaultdict(int)
    for c in fake.calls:
        statuses[f"{c.method} {c.status}"] += 1
    log_text = (workdir / "serve.log").read_text(errors="replace")
    return {
        "events": len(deliveries),
        "ack_p50_ms": statistics.median(first_acks) * 1000 if first_acks else None,
        "ack_p99_ms": _pct(first_acks, 0.99) * 1000,
        "ack_max_ms": max(first_acks, default=0) * 1000,
        "acks_over_3s_or_failed": late_acks,
        "reply_p50_ms": statistics.median(to_post) * 1000 if to_post else None,
        "reply_p99_ms": _pct(to_post, 0.99) * 1000,
        "lost": sum(r["lost"] for r in per_window.values()),
        "duplicated": sum(r["duplicated"] for r in per_window.values()),
        "by_window": {k: dict(v) for k, v in per_window.items()},
        "lost_events": [(d.index, round(d.sent - t0, 2), d.window) for d in deliveries
                        if not fake.posted.get(f"D{d.index:07d}")][:50],
        "duplicated_events": [(d.index, round(d.sent - t0, 2), d.window) for d in deliveries
                              if len(fake.posted.get(f"D{d.index:07d}", [])) > 1][:50],
        "windows": [(w.fault, round(w.start, 1), round(w.end, 1)) for w in windows],
        "web_api_calls": dict(statuses),
        "taken_over": log_text.count("taking over event "),
        "found_in_slack": log_text.count("is already in Slack"),
        "server_log": str(workdir / "serve.log"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.load", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1500, help="events to send (bounded)")
    parser.add_argument("--rate", type=float, default=50.0, help="events per second")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--concurrency", type=int, default=200, help="sender threads")
    parser.add_argument("--matcher", default="lexical", choices=["lexical", "semantic"])
    parser.add_argument("--faults", default=",".join(ALL_FAULTS),
                        type=lambda s: s.split(","),
                        help=f"comma list of {ALL_FAULTS + EXTRA_FAULTS} or none")
    parser.add_argument("--database-url", default="",
                        help="a PostgreSQL server (default: $DATABASE_URL, else a SQLite file); "
                             "each run creates and drops a database of its own there")
    parser.add_argument("--drain", type=float, default=120.0,
                        help="at most this many seconds to wait for replies after sending")
    parser.add_argument("--settle", type=float, default=30.0,
                        help="seconds to keep counting replies once every event has one "
                             "(longer than a takeover, so late duplicates show)")
    args = parser.parse_args(argv)
    unknown = set(args.faults) - {*ALL_FAULTS, *EXTRA_FAULTS, "none"}
    if unknown:
        parser.error(f"unknown faults: {', '.join(sorted(unknown))}")
    result = run(args)
    print(json.dumps(result, indent=1))
    ok = result["lost"] == 0 and result["duplicated"] == 0
    print(f"\n{result['events']} events: {result['lost']} lost, {result['duplicated']} "
          f"duplicated; ack p50 {result['ack_p50_ms'] or 0:.0f} ms, p99 "
          f"{result['ack_p99_ms']:.0f} ms, max {result['ack_max_ms']:.0f} ms; "
          f"request→postMessage p50 {result['reply_p50_ms'] or 0:.0f} ms, p99 "
          f"{result['reply_p99_ms']:.0f} ms; {result['taken_over']} taken over, "
          f"{result['found_in_slack']} of them already answered in Slack", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
