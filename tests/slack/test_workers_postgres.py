"""Two `concierge serve` processes on one PostgreSQL database, as two hosts would run.

A `/concierge reload` through one is served by the other within 10 seconds (the
reload generation in the store; watching the files is switched off to prove it),
and one event delivered to both is answered once.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import ANSWER_LAPTOP, COMPANY_CAR
from dbfixtures import postgres_url
from slackfakes import WAIT_SECONDS, FakeSlackAPI, SlackSender, all_text
from test_serve_process import SERVE, free_port, process_env, wait_healthy

from bot.slack_app import DUPLICATE_HEADER

__all__ = ["postgres_url"]

ADMIN = "U0ADMIN1"
# The deadline the issue sets for every worker to serve a reloaded catalogue.
RELOAD_DEADLINE = 10.0
CAR_QUESTION = "I need a company car for customer visits"


@dataclass
class Worker:
    slack: SlackSender
    log: Path


@pytest.fixture
def two_hosts(postgres_url: str, fake_slack: FakeSlackAPI, catalogue_dir: Path,
              tmp_path: Path) -> Iterator[tuple[Worker, Worker]]:
    processes: list[subprocess.Popen[bytes]] = []
    workers: list[Worker] = []
    try:
        for name in ("a", "b"):
            port = free_port()
            env = process_env(fake_slack, catalogue_dir, tmp_path / f"data-{name}",
                              PORT=str(port), WEB_CONCURRENCY="1")
            env |= {"DATABASE_URL": postgres_url, "CONCIERGE_ADMINS": ADMIN,
                    "CONCIERGE_WATCH_KNOWLEDGE": "off"}
            log = tmp_path / f"serve-{name}.log"
            with log.open("wb") as out:
                processes.append(subprocess.Popen(SERVE, env=env, stdout=out,
                                                  stderr=subprocess.STDOUT))
            url = f"http://127.0.0.1:{port}"
            workers.append(Worker(SlackSender(f"{url}/slack/events", fake_slack), log))
        for process, worker in zip(processes, workers, strict=True):
            wait_healthy(worker.slack.url.removesuffix("/slack/events"), process, worker.log)
        yield workers[0], workers[1]
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=WAIT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def answer_in(fake: FakeSlackAPI, channel: str) -> str:
    [posted] = fake.wait_for("chat.postMessage", lambda c: c.params.get("channel") == channel)
    return all_text(posted.params.get("blocks") or []) + posted.params.get("text", "")


def test_a_reload_through_one_host_is_served_by_the_other(
        two_hosts: tuple[Worker, Worker], fake_slack: FakeSlackAPI,
        catalogue_dir: Path) -> None:
    a, b = two_hosts
    assert b.slack.dm(CAR_QUESTION, channel="D0BEFORE").status == 200
    assert "Company car" not in answer_in(fake_slack, "D0BEFORE")

    with (catalogue_dir / "catalogue.yaml").open("a", encoding="utf-8") as fh:
        fh.write(COMPANY_CAR)
    assert a.slack.command("reload", user=ADMIN, response="reload").status == 200
    [report] = fake_slack.wait_for(
        "response_url", lambda c: "Reloaded" in all_text(c.params.get("blocks") or []))
    assert "company-car" in all_text(report.params["blocks"])
    reloaded_at = time.monotonic()

    # Ask the other host until it knows the new offering; it must within the deadline.
    attempt = 0
    while True:
        attempt += 1
        channel = f"D0AFTER{attempt}"
        assert b.slack.dm(CAR_QUESTION, channel=channel).status == 200
        if "Company car" in answer_in(fake_slack, channel):
            break
        assert time.monotonic() - reloaded_at < RELOAD_DEADLINE, b.log.read_text()
        time.sleep(0.5)


def test_one_event_delivered_to_both_hosts_is_answered_once(
        two_hosts: tuple[Worker, Worker], fake_slack: FakeSlackAPI) -> None:
    a, b = two_hosts
    event = {"type": "message", "channel_type": "im", "channel": "D0BOTH", "user": "U0ALICE",
             "text": ANSWER_LAPTOP, "ts": "1700000000.000900"}
    senders = [a.slack, b.slack, a.slack, b.slack]
    with ThreadPoolExecutor(max_workers=4) as pool:
        replies = list(pool.map(
            lambda n: senders[n].event(event, event_id="Ev0BOTHHOSTS", retry_num=n or None),
            range(4)))
    assert [r.status for r in replies] == [200] * 4
    assert sum(DUPLICATE_HEADER.lower() in r.headers for r in replies) == 3
    fake_slack.wait_for("chat.postMessage", lambda c: c.params.get("channel") == "D0BOTH")
