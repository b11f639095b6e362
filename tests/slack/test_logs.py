"""What `concierge serve` writes to its log, read from a real process at DEBUG level.

By default the log holds question ids, decisions and timings, not what people wrote or who
they are, and nothing a user types can start a line of its own. `CONCIERGE_LOG_CONTENT=on`
adds the texts and user ids, still one record per line.
"""

from __future__ import annotations

import re
from pathlib import Path

from conftest import NONE_QUESTION
from slackfakes import FakeSlackAPI, SlackSender
from test_serve_process import serve_hosts

ALICE = "U0ALICE"
FORGED = "2026-01-01 00:00:00,000 ERROR concierge.admin: the password is hunter2"
SEARCH = f"a laptop for my cat\n{FORGED}\r\x1b[2J"
# Lines a log may hold: a record (our format, or gunicorn's error and access logs), an
# indented traceback line, and serve's own first line.
LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ |\[\d{4}-|127\.0\.0\.1 - |  |"
                  r"concierge: serving ")


def ask_everything(slack: SlackSender, fake: FakeSlackAPI) -> None:
    """A declined DM, an App Home search with a forged log line in it, a refused admin."""
    assert slack.dm(NONE_QUESTION, user=ALICE, channel="D0LOGS").status == 200
    fake.wait_for("chat.postMessage", lambda c: c.params.get("channel") == "D0LOGS")
    view = {"id": "V0SEARCH", "type": "modal", "callback_id": "concierge_search",
            "state": {"values": {"need": {"need": {"type": "plain_text_input",
                                                   "value": SEARCH}}}}}
    assert slack.interaction({"type": "view_submission", "view": view}).status == 200
    fake.wait_for("chat.postMessage", lambda c: c.params.get("channel") == ALICE)
    assert slack.command("stats", user=ALICE, response="refused").status == 200
    fake.wait_for("response_url")


def test_logs_hold_no_question_text_or_user_id_by_default(
        fake_slack: FakeSlackAPI, catalogue_dir: Path, tmp_path: Path) -> None:
    with serve_hosts(fake_slack, catalogue_dir, tmp_path, ["a"], LOG_LEVEL="DEBUG") as [host]:
        ask_everything(host.slack, fake_slack)
    log = host.log.read_text()
    assert "question " in log and "decision=none" in log  # the operational facts are there
    assert "refused /concierge stats" in log
    for private in ("sourdough", "a laptop for my cat", "hunter2", ALICE):
        assert private not in log, f"{private!r} is in the log"
    assert all(LINE.match(line) for line in log.splitlines()), log


def test_content_logging_is_opt_in_and_still_one_line_per_record(
        fake_slack: FakeSlackAPI, catalogue_dir: Path, tmp_path: Path) -> None:
    with serve_hosts(fake_slack, catalogue_dir, tmp_path, ["a"], LOG_LEVEL="INFO",
                     CONCIERGE_LOG_CONTENT="on") as [host]:
        ask_everything(host.slack, fake_slack)
    log = host.log.read_text()
    assert "sourdough" in log and ALICE in log
    [searched] = [line for line in log.splitlines() if "a laptop for my cat" in line]
    assert "\\n2026-01-01 00:00:00,000 ERROR" in searched and "\\x1b[2J" in searched
    assert not any(line.startswith(FORGED[:23]) for line in log.splitlines())
    assert "\x1b" not in log and "\r" not in log
    assert all(LINE.match(line) for line in log.splitlines()), log
