"""Fixtures: a fake Slack Web API, a small catalogue, and the real Bolt app served over HTTP."""

from __future__ import annotations

import textwrap
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from slack_bolt import App
from slackfakes import SIGNING_SECRET, FakeSlackAPI, SlackSender

from bot.slack.app import SlackConfig, create_app, wsgi_app
from bot.store.database import Store

CATALOGUE = """\
offerings:
  - id: standard-laptop
    name: Standard laptop
    summary: A managed Windows laptop with a dock, ready to sign in.
    kind: product
    category: Workplace devices
    owner: {team: Workplace Services, contact: C0WORKPLACE}
    request: {url: "https://it.example.test/request/laptop?x=1&y=2"}
    needs: [my laptop is old and slow, I need a new laptop]
    keywords: [laptop, notebook]
    cost: €1,150 one-off
    service_level: Delivered within 5 business days
  - id: laptop-repair
    name: Laptop repair
    summary: Diagnosis and repair of a broken company laptop.
    kind: service
    category: Workplace devices
    owner: {team: Workplace Services, contact: U0REPAIR1}
    request: {steps: Bring the laptop to the IT bar.}
    needs: [I spilled coffee over my keyboard]
    keywords: [repair, broken]
  - id: vpn
    name: VPN and remote access
    summary: Secure access to internal systems from home.
    kind: service
    category: Network
    owner: {team: Network Team, contact: S0NETWORK1}
    request: {url: "https://it.example.test/request/vpn"}
    needs: [I cannot reach the intranet from home]
  - id: legacy-dialin
    name: Dial-in remote access
    summary: Modem dial-in to the office network.
    kind: service
    category: Network
    lifecycle: retired
    replaced_by: vpn
    owner: {team: Network Team, contact: "#network-help"}
    request: {url: "https://it.example.test/request/dialin"}
    needs: [I need the dial-in modem number]
  - id: team-site
    name: Team site
    summary: A shared workspace for documents and pages.
    kind: service
    category: Collaboration
    owner: {team: Collaboration, contact: collab@example.test}
    request: {url: "https://it.example.test/request/site"}
    needs: [we need a place to share documents as a team]
  - id: shared-drive
    name: Shared drive
    summary: A shared folder in cloud storage.
    kind: service
    category: Collaboration
    owner: {team: Collaboration, contact: "#collab-help"}
    request: {url: "https://it.example.test/request/drive"}
    needs: [we need a place to share documents as a team]
  - id: new-starter-kit
    name: New starter kit
    summary: Everything a new employee needs on day one.
    kind: service
    category: Onboarding
    owner: {team: Onboarding, contact: onboarding@example.test}
    request: {url: "https://it.example.test/request/starter"}
    needs: [a new colleague starts on Monday]
    includes: [standard-laptop, team-site]
"""

# Questions whose decisions the catalogue above makes unambiguous.
ANSWER_LAPTOP = "my laptop is old and slow"
CLARIFY_SHARING = "share documents as a team"
NONE_QUESTION = "how do I bake sourdough bread"
RETIRED_DIALIN = "I need the dial-in modem number"
# An offering the sample catalogue lacks, appended to a knowledge file by the reload tests.
COMPANY_CAR = """
  - id: company-car
    name: Company car
    summary: A leased car for employees who drive to customers.
    kind: product
    owner: {team: Fleet, contact: "#fleet"}
    request: {url: "https://it.example.test/request/car"}
    needs: [I need a company car for customer visits]
"""


@pytest.fixture
def catalogue_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "knowledge"
    directory.mkdir()
    (directory / "catalogue.yaml").write_text(textwrap.dedent(CATALOGUE), encoding="utf-8")
    return directory


@pytest.fixture
def fake_slack() -> Iterator[FakeSlackAPI]:
    fake = FakeSlackAPI().start()
    yield fake
    fake.stop()


def slack_env(fake: FakeSlackAPI, catalogue: Path, data_dir: Path) -> dict[str, str]:
    """The environment `concierge serve` needs, pointed at the fake Web API."""
    return {
        "SLACK_BOT_TOKEN": "xoxb-test-token",
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": fake.api_url,
        "CONCIERGE_KNOWLEDGE": str(catalogue),
        "CONCIERGE_MATCHER": "lexical",
        "CONCIERGE_DATA_DIR": str(data_dir),
        "CONCIERGE_SERVICE_DESK_URL": "https://it.example.test/desk",
        # Digests are sent only by the tests about them (tests/slack/test_digest_http.py).
        "CONCIERGE_DIGEST": "off",
    }


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serving(app: App, config: SlackConfig) -> Iterator[str]:
    """`app` behind the request gate on a real WSGI server on 127.0.0.1, for the block;
    yields the events URL."""
    server = make_server("127.0.0.1", 0, wsgi_app(app, signing_secret=config.signing_secret),
                         server_class=_ThreadingWSGIServer, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/slack/events"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@dataclass
class RunningApp:
    slack: SlackSender
    fake: FakeSlackAPI
    url: str


@pytest.fixture
def running_app(fake_slack: FakeSlackAPI, catalogue_dir: Path,
                tmp_path: Path) -> Iterator[RunningApp]:
    """The real Bolt app behind a real WSGI server on 127.0.0.1.

    One listener thread: listeners then run in arrival order, so once the reply to a
    later event has arrived, every earlier event has been fully handled. That turns
    "was never answered" into something a test can check without sleeping.
    """
    config = SlackConfig.from_env(slack_env(fake_slack, catalogue_dir, tmp_path / "data"))
    store = Store(config.database_url)
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="listener")
    app = create_app(config, store=store, listener_executor=executor)
    with serving(app, config) as events_url:
        url = events_url.removesuffix("/slack/events")
        yield RunningApp(SlackSender(events_url, fake_slack), fake_slack, url)
    executor.shutdown(wait=True)
    store.close()
