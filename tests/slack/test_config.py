"""`SlackConfig.from_env`: every bad variable is one clear error naming it."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
)
from slackfakes import MANIFEST_SCOPES

from bot.errors import ConfigError
from bot.logs import LogSettings
from bot.settings import repo_root
from bot.slack.app import DEFAULT_API_URL, SlackConfig, bind_address, make_client

SECRET = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
GOOD = {"SLACK_BOT_TOKEN": "xoxb-1-2-abc", "SLACK_SIGNING_SECRET": SECRET}


def test_defaults(tmp_path: Path) -> None:
    config = SlackConfig.from_env({**GOOD, "CONCIERGE_KNOWLEDGE": str(tmp_path)})
    assert config.api_url == DEFAULT_API_URL
    assert (config.host, config.port, config.workers, config.socket_mode) == (
        "0.0.0.0", 3000, 2, False)
    assert config.knowledge == tmp_path
    assert "xoxb" not in repr(config) and SECRET not in repr(config)


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
    # Shown to every employee as a button, like the catalogue's links: https only.
    ({**GOOD, "CONCIERGE_SERVICE_DESK_URL": "http://desk.example.test"},
     "CONCIERGE_SERVICE_DESK_URL"),
    ({**GOOD, "CONCIERGE_SERVICE_DESK_URL": "javascript:alert(1)"},
     "CONCIERGE_SERVICE_DESK_URL"),
    # Slack's signing secrets are 32 hex characters; anything else fails every request.
    ({**GOOD, "SLACK_SIGNING_SECRET": "abc123"}, "SLACK_SIGNING_SECRET"),
    ({**GOOD, "SLACK_SIGNING_SECRET": "Xq3kT9bLmN2pR7sV5wY8zA1c"}, "SLACK_SIGNING_SECRET"),
    ({**GOOD, "SLACK_SIGNING_SECRET": SECRET.upper()}, "SLACK_SIGNING_SECRET"),
    ({**GOOD, "HOST": "every interface"}, "HOST"),
    ({**GOOD, "HOST": "-127.0.0.1"}, "HOST"),
])
def test_bad_variable_is_named(env: dict[str, str], setting: str) -> None:
    with pytest.raises(ConfigError) as caught:
        SlackConfig.from_env(env)
    assert caught.value.setting == setting
    assert str(caught.value).startswith(f"{setting}: ")
    assert "\n" not in str(caught.value)


def test_a_verification_token_pasted_as_signing_secret_is_named_as_such() -> None:
    with pytest.raises(ConfigError, match="looks like the verification token"):
        SlackConfig.from_env({**GOOD, "SLACK_SIGNING_SECRET": "Xq3kT9bLmN2pR7sV5wY8zA1c"})


@pytest.mark.parametrize(("raw", "host", "bind"), [
    ("", "0.0.0.0", "0.0.0.0:3000"),
    ("127.0.0.1", "127.0.0.1", "127.0.0.1:3000"),
    ("::1", "::1", "[::1]:3000"),
    ("[::]", "::", "[::]:3000"),
    ("localhost", "localhost", "localhost:3000"),
])
def test_host_chooses_the_address(raw: str, host: str, bind: str) -> None:
    config = SlackConfig.from_env({**GOOD, "HOST": raw})
    assert config.host == host
    assert bind_address(config.host, config.port) == bind


@pytest.mark.parametrize(("env", "expected"), [
    ({}, LogSettings(logging.INFO, content=False)),
    ({"LOG_LEVEL": "debug"}, LogSettings(logging.DEBUG, content=False)),
    ({"LOG_LEVEL": " Warning ", "CONCIERGE_LOG_CONTENT": "on"},
     LogSettings(logging.WARNING, content=True)),
])
def test_log_settings(env: dict[str, str], expected: LogSettings) -> None:
    assert LogSettings.from_env(env) == expected


@pytest.mark.parametrize(("env", "setting"), [
    ({"LOG_LEVEL": "verbose"}, "LOG_LEVEL"),
    ({"LOG_LEVEL": "5"}, "LOG_LEVEL"),
    ({"CONCIERGE_LOG_CONTENT": "everything"}, "CONCIERGE_LOG_CONTENT"),
])
def test_bad_log_setting_is_named(env: dict[str, str], setting: str) -> None:
    with pytest.raises(ConfigError) as caught:
        LogSettings.from_env(env)
    assert caught.value.setting == setting
    assert "\n" not in str(caught.value)


def test_client_adds_rate_limit_retries_to_the_defaults() -> None:
    client = make_client(SlackConfig.from_env({**GOOD, "SLACK_API_URL": "http://127.0.0.1:9/"}))
    kinds = [type(h) for h in client.retry_handlers]
    assert ConnectionErrorRetryHandler in kinds and RateLimitErrorRetryHandler in kinds
    assert client.base_url == "http://127.0.0.1:9/"


def test_the_fake_web_api_grants_what_the_manifest_asks_for() -> None:
    manifest = yaml.safe_load((repo_root() / "manifest.yaml").read_text(encoding="utf-8"))
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == MANIFEST_SCOPES
