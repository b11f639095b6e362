"""Start time and memory of `concierge serve`: `python -m tests.benchmarks.footprint`.

Starts `concierge serve` (HTTP mode, gunicorn, `--workers` processes, 127.0.0.1 only) against
the fake Slack Web API of the end-to-end tests, the way a platform starts the Procfile's
`web` process, and reports for each catalogue:

  listening  seconds from the process start until $PORT accepts a TCP connection: what a
             platform's boot timeout waits for (Heroku: 60 s)
  healthy    seconds until `GET /healthz` answers 200 (a worker serves)
  cold       both with empty caches: a fresh CONCIERGE_CACHE_DIR (no parsed catalogue, no
             lexical index, no embeddings) and a fresh data directory (a new SQLite file,
             migrated at start), as on a new dyno; `--drop-page-cache` (root) also empties
             the kernel's page cache first, so the model and libraries are read from disk
  warm       the same start again, with the caches the cold start wrote
  PSS        proportional set size summed over the master and its workers, from
             /proc/PID/smaps_rollup: a page shared by three processes counts a third in
             each, so the sum is what the processes cost the machine (RSS counts shared
             pages once per process and overstates it)
             - idle: a few seconds after every worker has started (cold and warm)
             - load: the highest sum seen while --events signed DM events are answered
             - reload: right after every worker has reloaded the catalogue (an offering
               added to a copy of it), and again --settle seconds later

Catalogues: the sample in knowledge/ and seeded synthetic ones (`--sizes`, e.g. 10000),
written under .bench/. Memory is the goal here, not speed: the timing figures come from
one start each on a shared machine, so read them with the spread of a second run.

    python -m tests.benchmarks.footprint                     # sample catalogue, 2 workers
    python -m tests.benchmarks.footprint --sizes 10000 --events 300
    python -m tests.benchmarks.footprint --drop-page-cache   # root: a cold page cache too
    python -m tests.benchmarks.footprint --sizes 10000 --cache DIR   # DIR: caches made before
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "slack"))

import yaml
from slackfakes import SIGNING_SECRET, FakeSlackAPI, SlackSender

from tests.benchmarks.synthetic import write_catalogue

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "knowledge"
DEFAULT_WORKDIR = ROOT / ".bench"
START_LIMIT_S = 900.0
QUESTIONS = ["my laptop is 5 years old", "I need VPN access from home",
             "mein Konto ist gesperrt", "I have to record interviews with customers",
             "how do I bake sourdough bread", "we need a place to share documents as a team",
             "my screen flickers", "new colleague starts on Monday"]


@dataclass(frozen=True)
class Memory:
    """PSS, RSS and private (unshared) memory in MB, summed over a process tree; PSS also
    split into anonymous memory (heaps) and file pages (the mapped model, libraries)."""

    pss: float
    rss: float
    private: float
    processes: int
    pss_anon: float = 0.0
    pss_file: float = 0.0
    per_process: tuple[float, ...] = field(default=())

    def row(self) -> str:
        each = " + ".join(f"{p:.0f}" for p in self.per_process)
        return (f"PSS {self.pss:4.0f} MB ({each}; anon {self.pss_anon:.0f}, file "
                f"{self.pss_file:.0f}), RSS {self.rss:4.0f} MB, private {self.private:4.0f} MB")


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def rollup(pid: int) -> dict[str, float]:
    """smaps_rollup's kB fields as MB."""
    fields: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[-1] == "kB":
            fields[name.strip()] = int(parts[0]) / 1024
    return fields


def memory(master: int) -> Memory:
    pids = [master, *children(master)]
    rows = []
    for pid in pids:
        try:
            rows.append(rollup(pid))
        except OSError:
            continue  # a worker restarting
    return Memory(pss=sum(r["Pss"] for r in rows), rss=sum(r["Rss"] for r in rows),
                  private=sum(r["Private_Clean"] + r["Private_Dirty"] for r in rows),
                  processes=len(rows), pss_anon=sum(r.get("Pss_Anon", 0.0) for r in rows),
                  pss_file=sum(r.get("Pss_File", 0.0) for r in rows),
                  per_process=tuple(r["Pss"] for r in rows))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
            return bool(r.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log: Path
    listening: float
    healthy: float


@contextmanager
def serving(knowledge: Path, fake: FakeSlackAPI, workdir: Path, *, workers: int,
            cache: Path, extra: dict[str, str]) -> Iterator[Server]:
    port = free_port()
    env = {**os.environ, "SLACK_BOT_TOKEN": "xoxb-test-token",
           "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_API_URL": fake.api_url,
           "CONCIERGE_KNOWLEDGE": str(knowledge), "CONCIERGE_DATA_DIR": str(workdir / "data"),
           "CONCIERGE_CACHE_DIR": str(cache), "PORT": str(port),
           "WEB_CONCURRENCY": str(workers), **extra}
    for name in ("SLACK_APP_TOKEN", "DATABASE_URL"):
        env.pop(name, None)
    log = workdir / "serve.log"
    with log.open("ab") as out:
        started = time.monotonic()
        process = subprocess.Popen([sys.executable, "-m", "bot.slack.serve"], env=env, stdout=out,
                                   stderr=subprocess.STDOUT, cwd=workdir)
    listening = ready = 0.0
    try:
        while not ready:
            if process.poll() is not None:
                raise SystemExit(f"serve exited with {process.returncode}:\n{log.read_text()}")
            now = time.monotonic() - started
            if now > START_LIMIT_S:
                raise SystemExit(f"serve did not become healthy in {START_LIMIT_S:.0f} s")
            if not listening and accepts(port):
                listening = time.monotonic() - started
            if listening and healthy(port):
                ready = time.monotonic() - started
            else:
                time.sleep(0.05)
        yield Server(process, port, log, listening, ready)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for_workers(fake: FakeSlackAPI, workers: int, limit: float = START_LIMIT_S) -> None:
    """Every worker calls auth.test once it has built its app (plus one check at start)."""
    deadline = time.monotonic() + limit
    while sum(c.method == "auth.test" for c in fake.calls) < workers + 1:
        if time.monotonic() > deadline:
            raise SystemExit("not every worker started")
        time.sleep(0.1)


def load(server: Server, fake: FakeSlackAPI, events: int) -> Memory:
    """Sends `events` DMs eight at a time; the highest PSS seen until all are answered."""
    slack = SlackSender(f"http://127.0.0.1:{server.port}/slack/events", fake)
    peak: list[Memory] = [memory(server.process.pid)]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.2):
            now = memory(server.process.pid)
            if now.pss > peak[0].pss:
                peak[0] = now

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    before = sum(c.method == "chat.postMessage" for c in fake.calls)

    def send(i: int) -> None:
        slack.dm(f"{QUESTIONS[i % len(QUESTIONS)]} ({i})", channel=f"D0LOAD{i}")

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(send, range(events)))
    deadline = time.monotonic() + 120
    while sum(c.method == "chat.postMessage" for c in fake.calls) - before < events:
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    done.set()
    sampler.join()
    return peak[0]


NEW_OFFERING = {
    "id": "footprint-company-car", "name": "Company car",
    "summary": "A leased car for employees who drive to customers.", "kind": "product",
    "owner": {"team": "Fleet", "contact": "#fleet"},
    "request": {"url": "https://it.example.test/request/car"},
    "needs": ["I need a company car for customer visits"]}


def reload_everywhere(server: Server, knowledge: Path, workers: int) -> None:
    """Adds an offering to a knowledge file; waits until a worker has reloaded it and the
    master has too, and starts replacing the workers."""
    before = server.log.read_text(errors="replace").count("replacing the workers")
    first = sorted(knowledge.glob("*.yaml"))[0]
    content = yaml.safe_load(first.read_text(encoding="utf-8"))
    content["offerings"].append(NEW_OFFERING)
    first.write_text(yaml.safe_dump(content, sort_keys=False, allow_unicode=True),
                     encoding="utf-8")
    deadline = time.monotonic() + START_LIMIT_S
    while server.log.read_text(errors="replace").count("replacing the workers") - before < 1:
        if time.monotonic() > deadline:
            raise SystemExit("the workers did not reload")
        time.sleep(0.2)


def drop_page_cache() -> None:
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def measure(name: str, source: Path, args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="concierge-footprint-"))
    knowledge = workdir / "knowledge"  # a copy: the reload figure edits it
    shutil.copytree(source, knowledge)
    cache = workdir / "cache"
    extra = {"LOG_LEVEL": "INFO", "CONCIERGE_MATCHER": args.matcher,
             **dict(kv.split("=", 1) for kv in args.env)}
    row: dict[str, Any] = {"catalogue": name, "workers": args.workers}
    try:
        for start in ("cold", "warm"):
            fake = FakeSlackAPI().start()
            if start == "cold":
                shutil.rmtree(cache, ignore_errors=True)
                shutil.rmtree(workdir / "data", ignore_errors=True)
                if args.cache:  # a start with these caches, not a cold one
                    shutil.copytree(args.cache, cache)
                if args.drop_page_cache:
                    drop_page_cache()
            try:
                with serving(knowledge, fake, workdir, workers=args.workers, cache=cache,
                             extra=extra) as server:
                    wait_for_workers(fake, args.workers)
                    row[f"{start}_listening_s"] = round(server.listening, 2)
                    row[f"{start}_healthy_s"] = round(server.healthy, 2)
                    time.sleep(args.idle)
                    row[f"idle_{start}"] = memory(server.process.pid)
                    if start == "warm":
                        continue
                    if args.events:
                        row["load"] = load(server, fake, args.events)
                        row["after_load"] = memory(server.process.pid)
                    if args.reload:
                        reload_everywhere(server, knowledge, args.workers)
                        row["reload"] = memory(server.process.pid)
                        time.sleep(args.settle)
                        row["reload_settled"] = memory(server.process.pid)
            finally:
                fake.stop()
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return row


def report(rows: list[dict[str, Any]]) -> str:
    lines = []
    for row in rows:
        lines.append(f"## {row['catalogue']}, {row['workers']} workers")
        lines.append(f"start cold: listening {row['cold_listening_s']:.1f} s, healthy "
                     f"{row['cold_healthy_s']:.1f} s; warm: listening "
                     f"{row['warm_listening_s']:.1f} s, healthy {row['warm_healthy_s']:.1f} s")
        for key in ("idle_cold", "idle_warm", "load", "after_load", "reload", "reload_settled"):
            if key in row:
                lines.append(f"{key:>14}: {row[key].row()}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.footprint",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sizes", type=int, nargs="*", default=[],
                        help="synthetic catalogue sizes besides the sample (e.g. 10000)")
    parser.add_argument("--no-sample", action="store_true", help="only the --sizes catalogues")
    parser.add_argument("--matcher", default="auto", choices=("auto", "lexical", "semantic"))
    parser.add_argument("--events", type=int, default=200, help="DMs sent for the load figure")
    parser.add_argument("--idle", type=float, default=5.0,
                        help="seconds to wait after start before the idle figure")
    parser.add_argument("--settle", type=float, default=30.0,
                        help="seconds after a reload before the settled figure")
    parser.add_argument("--no-reload", dest="reload", action="store_false")
    parser.add_argument("--cache", type=Path, metavar="DIR",
                        help="start with a copy of this cache directory: the 'cold' start is "
                             "then warm (for a large catalogue whose first embedding is slow)")
    parser.add_argument("--drop-page-cache", action="store_true",
                        help="empty the kernel's page cache before each cold start (root)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="an environment variable for the server (repeatable)")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    parser.add_argument("--keep", action="store_true", help="keep logs and data")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    catalogues = [] if args.no_sample else [("sample", SAMPLE)]
    for size in args.sizes:
        folder = args.workdir / f"footprint-{size}"
        if not folder.is_dir():
            write_catalogue(size, folder)
        catalogues.append((f"synthetic {size:,}", folder))
    rows = [measure(name, folder, args) for name, folder in catalogues]
    if args.json:
        print(json.dumps(rows, default=lambda m: m.__dict__, indent=2))
    else:
        print(report(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
