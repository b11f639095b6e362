"""`concierge serve` as a real process: gunicorn with two workers, over real HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import ANSWER_LAPTOP, COMPANY_CAR, slack_env
from slackfakes import WAIT_SECONDS, FakeSlackAPI, SlackSender

from bot.slack.app import DUPLICATE_HEADER

# `python -m bot.slack.serve` runs the same `cmd_serve` as `concierge serve`, without
# depending on the console script being on PATH.
SERVE = [sys.executable, "-m", "bot.slack.serve"]


def process_env(fake: FakeSlackAPI, catalogue: Path, data_dir: Path,
                **extra: str) -> dict[str, str]:
    # Loopback only: nothing in the tests talks to another interface.
    env = {**os.environ, **slack_env(fake, catalogue, data_dir), "HOST": "127.0.0.1", **extra}
    # A developer's own settings must not leak into the server under test.
    for name in ("DATABASE_URL", "SLACK_APP_TOKEN"):
        env.pop(name, None)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        if process.poll() is not None:
            raise AssertionError(f"serve exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"serve not healthy within {WAIT_SECONDS}s:\n{log.read_text()}")
        time.sleep(0.1)


@dataclass
class Host:
    """One `concierge serve` process (one worker) and where it listens and logs."""

    slack: SlackSender
    process: subprocess.Popen[bytes]
    log: Path


@contextmanager
def serve_hosts(fake: FakeSlackAPI, catalogue: Path, folder: Path, names: Sequence[str],
                **extra: str) -> Iterator[list[Host]]:
    """A one-worker `concierge serve` per name, as separate hosts would run it (own data
    folder and log in `folder`, `extra` settings), healthy for the block, then stopped."""
    hosts: list[Host] = []
    try:
        for name in names:
            port = free_port()
            # After process_env, which drops a developer's DATABASE_URL: `extra` may set one.
            env = process_env(fake, catalogue, folder / f"data-{name}", PORT=str(port),
                              WEB_CONCURRENCY="1") | extra
            log = folder / f"serve-{name}.log"
            with log.open("wb") as out:
                process = subprocess.Popen(SERVE, env=env, stdout=out, stderr=subprocess.STDOUT)
            hosts.append(Host(SlackSender(f"http://127.0.0.1:{port}/slack/events", fake),
                              process, log))
        for host in hosts:
            wait_healthy(host.slack.url.removesuffix("/slack/events"), host.process, host.log)
        yield hosts
    finally:
        for host in hosts:
            host.process.send_signal(signal.SIGTERM)
        for host in hosts:
            try:
                host.process.wait(timeout=WAIT_SECONDS)
            except subprocess.TimeoutExpired:
                host.process.kill()
                host.process.wait()


@pytest.fixture
def served(fake_slack: FakeSlackAPI, catalogue_dir: Path,
           tmp_path: Path) -> Iterator[tuple[str, Path]]:
    port = free_port()
    env = process_env(fake_slack, catalogue_dir, tmp_path / "data", PORT=str(port),
                      WEB_CONCURRENCY="2")
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(SERVE, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process, log)
        yield url, log
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=WAIT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    assert process.returncode == 0, log.read_text()


def test_serve_answers_over_gunicorn_and_dedupes_across_workers(
        served: tuple[str, Path], fake_slack: FakeSlackAPI) -> None:
    url, log = served
    slack = SlackSender(f"{url}/slack/events", fake_slack)
    # Each worker checked the token (plus one check before forking).
    fake_slack.wait_for("auth.test", count=3)

    assert slack.dm(ANSWER_LAPTOP, channel="D0FIRST").status == 200
    [answer] = fake_slack.wait_for("chat.postMessage", lambda c: c.params["channel"] == "D0FIRST")
    assert "Standard laptop" in answer.params["text"]

    # One event delivered four times at once: the workers race for it.
    event = {"type": "message", "channel_type": "im", "channel": "D0RACE", "user": "U0ALICE",
             "text": ANSWER_LAPTOP, "ts": "1700000000.000700"}
    with ThreadPoolExecutor(max_workers=4) as pool:
        replies = list(pool.map(lambda n: slack.event(event, event_id="Ev0MULTI",
                                                      retry_num=n or None), range(4)))
    assert [r.status for r in replies] == [200] * 4, log.read_text()
    assert sum(DUPLICATE_HEADER.lower() in r.headers for r in replies) == 3
    fake_slack.wait_for("chat.postMessage", lambda c: c.params["channel"] == "D0RACE")


@pytest.mark.parametrize(("change", "line"), [
    ({"SLACK_SIGNING_SECRET": None},
     "concierge: SLACK_SIGNING_SECRET: is not set (Basic Information → Signing Secret; "
     "HTTP mode needs it to verify requests)"),
    ({"LOG_LEVEL": "verbose"},
     "concierge: LOG_LEVEL: must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, not "
     "'verbose'"),
], ids=["missing-signing-secret", "bad-log-level"])
def test_serve_stops_at_start_with_one_line_naming_the_variable(
        fake_slack: FakeSlackAPI, catalogue_dir: Path, tmp_path: Path,
        change: dict[str, str | None], line: str) -> None:
    env = process_env(fake_slack, catalogue_dir, tmp_path / "data")
    for name, value in change.items():
        if value is None:
            del env[name]
        else:
            env[name] = value
    done = subprocess.run(SERVE, env=env, capture_output=True, text=True,
                          timeout=WAIT_SECONDS, check=False)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [line]


def test_serve_listens_on_host_only(fake_slack: FakeSlackAPI, catalogue_dir: Path,
                                    tmp_path: Path) -> None:
    # 127.0.0.2 is loopback too, but another address: bound there, 127.0.0.1 stays closed.
    port = free_port()
    env = process_env(fake_slack, catalogue_dir, tmp_path / "data", PORT=str(port),
                      WEB_CONCURRENCY="1", HOST="127.0.0.2")
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(SERVE, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_healthy(f"http://127.0.0.2:{port}", process, log)
        with pytest.raises(ConnectionRefusedError), socket.create_connection(
                ("127.0.0.1", port), timeout=WAIT_SECONDS):
            pass
        assert f"serving {catalogue_dir} in HTTP on 127.0.0.2 port {port}" in log.read_text()
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=WAIT_SECONDS)


def test_serve_reports_a_rejected_token(fake_slack: FakeSlackAPI, catalogue_dir: Path,
                                        tmp_path: Path) -> None:
    env = process_env(fake_slack, catalogue_dir, tmp_path / "data",
                      SLACK_BOT_TOKEN="xoxb-revoked")
    done = subprocess.run(SERVE, env=env, capture_output=True, text=True,
                          timeout=WAIT_SECONDS, check=False)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "concierge: SLACK_BOT_TOKEN: Slack rejected the token (invalid_auth)")


def workers_of(master: int) -> set[int]:
    return {int(pid) for task in Path(f"/proc/{master}/task").iterdir()
            for pid in (task / "children").read_text().split()}


def test_a_changed_catalogue_is_loaded_by_the_master_which_forks_new_workers(
        fake_slack: FakeSlackAPI, catalogue_dir: Path, tmp_path: Path) -> None:
    """The workers share what the master loaded before forking; after a reload each worker
    would hold its own copy, so the master loads the new catalogue and replaces them."""
    port = free_port()
    env = process_env(fake_slack, catalogue_dir, tmp_path / "data", PORT=str(port),
                      WEB_CONCURRENCY="2", CONCIERGE_RELOAD_INTERVAL="1")
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(SERVE, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process, log)
        fake_slack.wait_for("auth.test", count=3)
        first = workers_of(process.pid)
        assert len(first) == 2
        assert log.read_text().count("offerings (lexical matching)") == 1  # in the master

        catalogue = catalogue_dir / "catalogue.yaml"
        catalogue.write_text(catalogue.read_text() + COMPANY_CAR)
        deadline = time.monotonic() + WAIT_SECONDS
        while not (len(now := workers_of(process.pid)) == 2 and not now & first):
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        assert "replacing the workers" in log.read_text()
        slack = SlackSender(f"{url}/slack/events", fake_slack)
        assert slack.dm("I need a company car for customer visits", channel="D0CAR").status == 200
        [answer] = fake_slack.wait_for("chat.postMessage",
                                       lambda c: c.params["channel"] == "D0CAR")
        assert "Company car" in answer.params["text"]
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=WAIT_SECONDS)
    assert process.returncode == 0, log.read_text()
