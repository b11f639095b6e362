"""`SlackConfig.from_env`: every bad variable is one clear error naming it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
)
from slackfakes import MANIFEST_SCOPES

from bot.errors import ConfigError
from bot.settings import repo_root
from bot.slack.app import DEFAULT_API_URL, SlackConfig, make_client

GOOD = {"SLACK_BOT_TOKEN": "xoxb-1-2-abc", "SLACK_SIGNING_SECRET": "abc123"}


def test_defaults(tmp_path: Path) -> None:
    config = SlackConfig.from_env({**GOOD, "CONCIERGE_KNOWLEDGE": str(tmp_path)})
    assert config.api_url == DEFAULT_API_URL
    assert (config.port, config.workers, config.socket_mode) == (3000, 2, False)
    assert config.knowledge == tmp_path
    assert "xoxb" not in repr(config) and "abc123" not in repr(config)


def test_socket_mode_needs_no_signing_secret() -> None:
    config = SlackConfig.from_env({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1"})
    assert config.socket_mode


def test_api_url_gets_its_trailing_slash() -> None:
    config = SlackConfig.from_env({**GOOD, "SLACK_API_URL": "https://slack-gov.com/api"})
    assert config.api_url == "https://slack-gov.com/api/"


@pytest.mark.parametrize(("env", "setting"), [
    ({"SLACK_SIGNING_SECRET": "abc"}, "SLACK_BOT_TOKEN"),
    ({**GOOD, "SLACK_BOT_TOKEN": "xoxp-user-token"}, "SLACK_BOT_TOKEN"),
    ({"SLACK_BOT_TOKEN": "xoxb-1"}, "SLACK_SIGNING_SECRET"),
    ({**GOOD, "SLACK_SIGNING_SECRET": "has spaces"}, "SLACK_SIGNING_SECRET"),
    ({**GOOD, "SLACK_APP_TOKEN": "xoxb-not-an-app-token"}, "SLACK_APP_TOKEN"),
    ({**GOOD, "SLACK_API_URL": "slack.com/api"}, "SLACK_API_URL"),
    ({**GOOD, "PORT": "eighty"}, "PORT"),
    ({**GOOD, "PORT": "70000"}, "PORT"),
    ({**GOOD, "WEB_CONCURRENCY": "0"}, "WEB_CONCURRENCY"),
    ({**GOOD, "CONCIERGE_MATCHER": "magic"}, "CONCIERGE_MATCHER"),
    ({**GOOD, "CONCIERGE_SERVICE_DESK_URL": "desk"}, "CONCIERGE_SERVICE_DESK_URL"),
])
def test_bad_variable_is_named(env: dict[str, str], setting: str) -> None:
    with pytest.raises(ConfigError) as caught:
        SlackConfig.from_env(env)
    assert caught.value.setting == setting
    assert str(caught.value).startswith(f"{setting}: ")
    assert "\n" not in str(caught.value)


def test_client_adds_rate_limit_retries_to_the_defaults() -> None:
    client = make_client(SlackConfig.from_env({**GOOD, "SLACK_API_URL": "http://127.0.0.1:9/"}))
    kinds = [type(h) for h in client.retry_handlers]
    assert ConnectionErrorRetryHandler in kinds and RateLimitErrorRetryHandler in kinds
    assert client.base_url == "http://127.0.0.1:9/"


def test_the_fake_web_api_grants_what_the_manifest_asks_for() -> None:
    manifest = yaml.safe_load((repo_root() / "manifest.yaml").read_text(encoding="utf-8"))
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == MANIFEST_SCOPES
