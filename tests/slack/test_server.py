"""The gunicorn master's own state (bot/slack/server.py): what it loads for its workers, and
when a reload makes it replace them. The processes themselves: test_serve_process.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import COMPANY_CAR, slack_env
from slackfakes import FakeSlackAPI

from bot.slack import server
from bot.slack.app import SlackConfig
from bot.slack.server import Master


@pytest.fixture(autouse=True)
def _no_freeze(monkeypatch: pytest.MonkeyPatch) -> None:
    # gc.freeze() in the test process would keep whatever exists now from ever being collected.
    monkeypatch.setattr(server, "_share_with_children", lambda: None)


def master_for(fake: FakeSlackAPI, catalogue_dir: Path, tmp_path: Path) -> Master:
    master = Master(SlackConfig.from_env(slack_env(fake, catalogue_dir, tmp_path / "data")))
    master.load()
    return master


def test_the_master_replaces_the_workers_only_for_a_changed_catalogue(
        fake_slack: FakeSlackAPI, catalogue_dir: Path, tmp_path: Path) -> None:
    master = master_for(fake_slack, catalogue_dir, tmp_path)
    first = master.preloaded
    assert first is not None and "company-car" not in first.matcher.catalog
    # Every worker that reloaded the same edit asks; an unchanged catalogue changes nothing.
    assert master.refresh() is False
    assert master.preloaded is first

    catalogue = catalogue_dir / "catalogue.yaml"
    catalogue.write_text(catalogue.read_text(encoding="utf-8") + COMPANY_CAR, encoding="utf-8")
    assert master.refresh() is True
    assert master.preloaded is not None and "company-car" in master.preloaded.matcher.catalog
    assert master.preloaded.fingerprint != first.fingerprint
    assert master.refresh() is False


def test_a_broken_catalogue_keeps_the_workers_on_the_last_good_one(
        fake_slack: FakeSlackAPI, catalogue_dir: Path, tmp_path: Path) -> None:
    master = master_for(fake_slack, catalogue_dir, tmp_path)
    first = master.preloaded
    (catalogue_dir / "broken.yaml").write_text("offerings: [", encoding="utf-8")
    assert master.refresh() is False
    assert master.preloaded is first
