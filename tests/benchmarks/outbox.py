"""Delivery of requests made in Slack, under faults: `python -m tests.benchmarks.outbox`.

Two `concierge serve` hosts (one gunicorn worker each, as two hosts would run them, with
CONCIERGE_TAKEOVER_AFTER=2) share one database (a SQLite file, or PostgreSQL with
--database-url: a database of its own, dropped afterwards). N request forms are submitted,
signed as Slack signs them, alternately through the two hosts at --rate per second; each
goes to the owner's channel (a Slack message), to a webhook, and to the requester (a
receipt). Meanwhile:

  flaky      the receiving tool fails --fail-rate of all POSTs: 500, 503 with Retry-After: 1,
             429 with Retry-After: 1, or, the hard one, it stores the request and then
             answers 500 (a crash after the commit), so the retry brings a request it has
  ratelimit  chat.postMessage answers 429 (Retry-After: 1) for 40 calls in a row
  kill       the receiving tool answers slowly (1 s) for 3 s, and in the middle of that host
             a's worker gets SIGKILL with deliveries in flight and more claimed (its gunicorn
             master starts a new one): those it had sent got through but were never recorded,
             those it had claimed wait for its lease; submissions meanwhile wait or fail, and
             the simulated requester sends the same form again (the same Slack view)
  database   the database is unavailable for 4 s: submissions are refused (the requester
             is told, and sends the same form again later), deliveries wait

The receiving tool verifies every signature and keeps requests by `Idempotency-Key`, as
docs/slack-setup.md asks receivers to. Reported: requests stored; for each destination how
many requests were delivered once, twice or never; webhook POSTs per request (retries) and
requests the tool saw again under the same key; time from the form being stored to its
delivery (p50, p95, max) per destination.

    python -m tests.benchmarks.outbox                        # 200 requests, all faults
    python -m tests.benchmarks.outbox --requests 50 --faults none
    python -m tests.benchmarks.outbox --database-url postgresql://postgres@127.0.0.1:5432/x
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import urllib.error
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "slack"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pgdatabase import fresh_database
from slackfakes import SIGNING_SECRET, Call, FakeSlackAPI, SlackSender
from webhookfake import WEBHOOK_SECRET, FakeWebhook, Received

from bot.catalogue.loader import load_catalog
from bot.outbox.intake import destinations
from bot.slack.request_replies import request_modal
from tests.benchmarks.load import Database, free_port, worker_pids

ALL_FAULTS = ("flaky", "ratelimit", "kill", "database")
CHANNEL = "C0REQUESTS"
CATALOGUE = """\
offerings:
  - id: laptop
    name: Standard laptop
    summary: A managed laptop.
    kind: product
    owner: {team: Workplace Services, contact: U0OWNER1}
    cost: €1,150 one-off
    request:
      form:
        - {label: Which model?, type: choice, options: [T14, MacBook Air], required: true}
        - {label: For whom, type: user, required: true}
        - {label: Anything else?, type: long text}
      deliver_to: {channel: C0REQUESTS, webhook: servicedesk}
    needs: [I need a laptop]
"""


class TimedSlackAPI(FakeSlackAPI):
    """The fake Web API, with the time of every call."""

    def __init__(self) -> None:
        super().__init__()
        self.times: dict[int, float] = {}

    def _record(self, call: Call) -> None:
        super()._record(call)
        self.times[id(call)] = time.monotonic()


@dataclass
class Tool:
    """The receiving tool's side: what it stored, by idempotency key, and when."""

    fail_rate: float
    rng: random.Random
    stored: dict[str, float] = field(default_factory=dict)
    again: Counter[str] = field(default_factory=Counter)
    """Keys that came back after they were stored (the tool answers 2xx, stores nothing)."""
    answered_ok: set[str] = field(default_factory=set)
    again_after_ok: Counter[str] = field(default_factory=Counter)
    """Of those, keys that had been answered 2xx: the sender died before recording it."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def choose(self, received: Received) -> tuple[int, dict[str, str]]:
        key = received.key
        with self.lock:
            if key in self.stored:
                self.again[key] += 1
                if key in self.answered_ok:
                    self.again_after_ok[key] += 1
                self.answered_ok.add(key)
                return 200, {}
            if self.rng.random() < self.fail_rate:
                kind = self.rng.choice(("500", "503", "429", "stored-then-500"))
                if kind == "stored-then-500":
                    self.stored[key] = time.monotonic()
                    return 500, {}
                return int(kind), ({"Retry-After": "1"} if kind in ("503", "429") else {})
            self.stored[key] = time.monotonic()
            self.answered_ok.add(key)
            return 200, {}


@dataclass
class Submission:
    n: int
    view: dict[str, Any]
    stored_at: float | None = None
    """When the form that was stored was sent (Slack's click on Send)."""
    request_id: int | None = None
    tries: int = 0
    refused: int = 0
    """Answers telling the requester to try again (database down)."""


def filled(view: dict[str, Any], n: int) -> dict[str, Any]:
    values = {
        "field:which-model": {"answer": {"type": "static_select",
                                         "selected_option": {"value": "T14"}}},
        "field:for-whom": {"answer": {"type": "users_select", "selected_user": "U0BOB"}},
        "field:anything-else": {"answer": {"type": "plain_text_input",
                                           "value": f"request {n} <!channel>"}}}
    return {"id": f"V{n:08d}", "type": "modal", "callback_id": view["callback_id"],
            "private_metadata": view["private_metadata"], "state": {"values": values}}


def submit(submission: Submission, hosts: list[SlackSender], deadline: float) -> None:
    """Send the form until it is stored, as a person would: a failed or refused send is sent
    again (the same Slack view) a second later."""
    while time.monotonic() < deadline:
        host = hosts[(submission.n + submission.tries) % len(hosts)]
        submission.tries += 1
        sent = time.monotonic()
        try:
            reply = host.submit_view(submission.view, user=f"U{submission.n:08d}")
        except (urllib.error.URLError, OSError):
            time.sleep(1)
            continue
        if reply.status == 200:
            body = reply.json()
            if body.get("response_action") == "update":
                text = json.dumps(body["view"])
                found = re.search(r"Request #(\d+)", text)
                if found:
                    submission.request_id = int(found.group(1))
                    submission.stored_at = sent
                    return
            submission.refused += 1
        time.sleep(1)


@contextmanager
def serving(knowledge: Path, folder: Path, database_url: str, fake: FakeSlackAPI,
            webhook: FakeWebhook) -> Iterator[list[tuple[SlackSender, subprocess.Popen[bytes]]]]:
    hosts = []
    for name in ("a", "b"):
        port = free_port()
        env = {**os.environ, "SLACK_BOT_TOKEN": "xoxb-test-token",
               "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_API_URL": fake.api_url,
               "CONCIERGE_KNOWLEDGE": str(knowledge), "CONCIERGE_MATCHER": "lexical",
               "CONCIERGE_DATA_DIR": str(folder / f"data-{name}"), "DATABASE_URL": database_url,
               "PORT": str(port), "WEB_CONCURRENCY": "1", "CONCIERGE_TAKEOVER_AFTER": "2",
               "CONCIERGE_WEBHOOK_SERVICEDESK_URL": webhook.url,
               "CONCIERGE_WEBHOOK_SERVICEDESK_SECRET": WEBHOOK_SECRET,
               "CONCIERGE_ADMINS": "U0ADMIN1", "LOG_LEVEL": "WARNING"}
        env.pop("SLACK_APP_TOKEN", None)
        log = (folder / f"serve-{name}.log").open("wb")
        process = subprocess.Popen([sys.executable, "-m", "bot.slack.serve"], env=env,
                                   stdout=log, stderr=subprocess.STDOUT)
        hosts.append((SlackSender(f"http://127.0.0.1:{port}/slack/events", fake), process))
    try:
        for sender, process in hosts:
            _wait_healthy(sender.url.removesuffix("/slack/events"), process)
        yield hosts
    finally:
        for _, process in hosts:
            process.send_signal(signal.SIGTERM)
        for _, process in hosts:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_healthy(url: str, process: subprocess.Popen[bytes]) -> None:
    import urllib.request

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"serve exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(0.2)
    raise SystemExit("serve not healthy within 60 s")


def run(args: argparse.Namespace) -> dict[str, Any]:
    faults = [] if args.faults == "none" else args.faults.split(",")
    with tempfile.TemporaryDirectory(prefix="concierge-outbox-") as tmp:
        folder = Path(tmp)
        if args.database_url:
            with fresh_database(args.database_url, "concierge_outbox") as url:
                return _run(args, faults, folder, url, None)
        sqlite = folder / "shared.sqlite3"
        return _run(args, faults, folder, f"sqlite:///{sqlite}", sqlite)


def _run(args: argparse.Namespace, faults: list[str], folder: Path, database_url: str,
         sqlite: Path | None) -> dict[str, Any]:
    knowledge = folder / "knowledge"
    knowledge.mkdir()
    (knowledge / "catalogue.yaml").write_text(textwrap.dedent(CATALOGUE), encoding="utf-8")
    offering = load_catalog(knowledge)["laptop"]
    view = request_modal(offering, destinations(offering), requester="U0ALICE").to_dict()
    fake = TimedSlackAPI().start()
    tool = Tool(args.fail_rate if "flaky" in faults else 0.0, random.Random(args.seed))
    webhook = FakeWebhook()
    webhook.choose = tool.choose
    webhook.start()
    database = Database(database_url, sqlite)
    submissions = [Submission(n, filled(view, n)) for n in range(args.requests)]
    try:
        with serving(knowledge, folder, database_url, fake, webhook) as hosts:
            senders = [s for s, _ in hosts]
            master_a = hosts[0][1].pid
            t0 = time.monotonic()
            timers = _faults(faults, args, fake=fake, webhook=webhook, database=database,
                             master=master_a, t0=t0)
            deadline = t0 + args.requests / args.rate + 120
            with ThreadPoolExecutor(max_workers=32) as pool:
                for submission in submissions:
                    wait = t0 + submission.n / args.rate - time.monotonic()
                    if wait > 0:
                        time.sleep(wait)
                    pool.submit(submit, submission, senders, deadline)
            for timer in timers:
                timer.join()
            _drain(submissions, fake, tool, args.drain)
            time.sleep(args.settle)  # anything delivered twice late is counted too
            return _summary(args, faults, submissions, fake=fake, tool=tool, webhook=webhook)
    finally:
        webhook.stop()
        fake.stop()


def _faults(faults: list[str], args: argparse.Namespace, *, fake: FakeSlackAPI,
            webhook: FakeWebhook, database: Database, master: int,
            t0: float) -> list[threading.Thread]:
    span = args.requests / args.rate
    plan: list[tuple[float, Any]] = []
    if "ratelimit" in faults:
        plan.append((0.2 * span, lambda: fake.rate_limit("chat.postMessage", 40)))
    if "kill" in faults:
        def slow_then_kill() -> None:
            webhook.delay = 1.0
            time.sleep(1.5)
            for pid in worker_pids(master):
                os.kill(pid, signal.SIGKILL)
            time.sleep(1.5)
            webhook.delay = 0.0
        plan.append((0.4 * span, slow_then_kill))
    if "database" in faults:
        def outage() -> None:
            database.stop()
            time.sleep(4)
            database.start()
        plan.append((0.7 * span, outage))

    def at(when: float, action: Any) -> None:
        time.sleep(max(0.0, t0 + when - time.monotonic()))
        action()

    threads = [threading.Thread(target=at, args=step, daemon=True) for step in plan]
    for thread in threads:
        thread.start()
    return threads


def _channel_posts(fake: TimedSlackAPI) -> dict[int, list[float]]:
    found: dict[int, list[float]] = defaultdict(list)
    for call in fake.calls_to("chat.postMessage"):
        if call.params.get("channel") != CHANNEL:
            continue
        metadata = call.params.get("metadata")
        if isinstance(metadata, str):
            metadata = json.loads(metadata)
        request_id = int((metadata or {}).get("event_payload", {}).get("request_id", 0))
        found[request_id].append(fake.times[id(call)])
    return found


def _receipts(fake: TimedSlackAPI) -> Counter[str]:
    return Counter(str(c.params.get("channel")) for c in fake.calls_to("chat.postMessage")
                   if str(c.params.get("channel", "")).startswith("U0") and
                   "went to" in json.dumps(c.params.get("blocks")))


def _drain(submissions: list[Submission], fake: TimedSlackAPI, tool: Tool,
           limit: float) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        ids = {s.request_id for s in submissions if s.request_id is not None}
        posted = _channel_posts(fake)
        if len(ids) == len(submissions) and ids <= set(posted) and len(tool.stored) >= len(
                ids) and len(_receipts(fake)) >= len(ids):
            return
        time.sleep(0.5)


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


def _summary(args: argparse.Namespace, faults: list[str], submissions: list[Submission], *,
             fake: TimedSlackAPI, tool: Tool, webhook: FakeWebhook) -> dict[str, Any]:
    stored = [s for s in submissions if s.request_id is not None]
    by_id = {s.request_id: s for s in stored}
    posted = _channel_posts(fake)
    posts_by_request: dict[int, list[Received]] = defaultdict(list)
    for post in webhook.posts():
        with suppress(ValueError, KeyError):
            posts_by_request[int(post.json()["request_id"])].append(post)
    key_of = {rid: posts[0].key for rid, posts in posts_by_request.items() if posts}
    receipts = _receipts(fake)

    def once(counts: list[int]) -> dict[str, int]:
        return {"once": sum(1 for c in counts if c == 1), "twice_or_more":
                sum(1 for c in counts if c > 1), "never": sum(1 for c in counts if c == 0)}

    channel_delay = [posted[rid][0] - s.stored_at for rid, s in by_id.items()
                     if rid in posted and s.stored_at is not None]
    webhook_delay = [tool.stored[key_of[rid]] - s.stored_at for rid, s in by_id.items()
                     if rid in key_of and key_of[rid] in tool.stored and s.stored_at is not None]
    return {
        "requests": args.requests, "faults": faults, "fail_rate": args.fail_rate,
        "stored": len(stored), "distinct_request_ids": len(by_id),
        "submissions_sent_again": sum(s.tries - 1 for s in submissions),
        "refused_database_down": sum(s.refused for s in submissions),
        "channel": once([len(posted.get(rid, [])) for rid in by_id]),
        "webhook_stored_by_the_tool": once([
            1 if rid in key_of and key_of[rid] in tool.stored else 0 for rid in by_id]),
        "webhook_keys_per_request": Counter(len({p.key for p in posts_by_request[rid]})
                                            for rid in by_id),
        "webhook_posts": len(webhook.posts()),
        "webhook_posts_per_request_max": max((len(p) for p in posts_by_request.values()),
                                             default=0),
        "webhook_seen_again_under_its_key": sum(tool.again.values()),
        "webhook_seen_again_after_a_2xx": sum(tool.again_after_ok.values()),
        "webhook_unverified": sum(1 for p in webhook.posts() if not p.verified),
        "receipts": once([receipts.get(f"U{by_id[rid].n:08d}", 0) for rid in by_id]),
        "seconds_to_channel": {"p50": _pct(channel_delay, 0.5), "p95": _pct(channel_delay,
                                                                            0.95),
                               "max": _pct(channel_delay, 1.0)},
        "seconds_to_webhook": {"p50": _pct(webhook_delay, 0.5), "p95": _pct(webhook_delay,
                                                                            0.95),
                               "max": _pct(webhook_delay, 1.0)},
        "mean_webhook_posts_per_request": round(statistics.mean(
            [len(p) for p in posts_by_request.values()] or [0]), 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.outbox",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--rate", type=float, default=10.0, help="submissions per second")
    parser.add_argument("--fail-rate", type=float, default=0.3,
                        help="share of webhook POSTs that fail (flaky)")
    parser.add_argument("--faults", default=",".join(ALL_FAULTS),
                        help=f"comma-separated, from {', '.join(ALL_FAULTS)}, or none")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    parser.add_argument("--drain", type=float, default=180.0,
                        help="seconds to wait for every delivery at most")
    parser.add_argument("--settle", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=15)
    args = parser.parse_args(argv)
    result = run(args)
    print(json.dumps(result, indent=2, default=str))
    lost = (result["channel"]["never"] + result["webhook_stored_by_the_tool"]["never"]
            + result["receipts"]["never"] + (args.requests - result["stored"]))
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
