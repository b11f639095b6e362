"""Admin building blocks without Slack: subcommand parsing, who is an admin, settings,
gap grouping, and splitting long reports into Slack-sized messages."""

from __future__ import annotations

import logging

import pytest

from bot.admin.desk import AdminCommand, AdminPolicy, parse_admin_command
from bot.admin.gaps import Need, group_needs
from bot.admin.reports import ReportView, Section, percentile
from bot.errors import ConfigError
from bot.slack.admin_replies import RESPONSE_URL_MESSAGES, report_messages
from bot.slack.operations import OperationsConfig
from bot.slack.replies import MESSAGE_BLOCK_LIMIT, SECTION_TEXT_LIMIT


@pytest.mark.parametrize(("text", "expected"), [
    ("stats", AdminCommand("stats")),
    ("  Stats  7 ", AdminCommand("stats", 7)),
    ("gaps 90", AdminCommand("gaps", 90)),
    ("owners 99999", AdminCommand("owners", 3650)),
    ("reload", AdminCommand("reload")),
    ("check", AdminCommand("check")),
    ("help", AdminCommand("help")),
    ("stats 7 days", AdminCommand("stats", 7)),
    ("gaps 14d", AdminCommand("gaps", 14)),
    ("owners --days 3", AdminCommand("owners", 3)),
    ("check my vpn access", None),
    ("stats for my team", None),
    ("help me with my laptop", None),
    ("I need a laptop", None),
    ("", None),
])
def test_only_exact_subcommands_are_subcommands(text: str,
                                                expected: AdminCommand | None) -> None:
    assert parse_admin_command(text) == expected


@pytest.mark.parametrize(("text", "problem"), [
    ("stats abc", "`stats` takes a number of days from 1 to 3650, e.g. `/concierge stats 7`, "
                  "not `abc`"),
    ("gaps last week", "`gaps` takes a number of days from 1 to 3650, e.g. `/concierge gaps "
                       "7`, not `last week`"),
    ("reload 5", "`reload` takes nothing after it, not `5`"),
    ("check now", "`check` takes nothing after it, not `now`"),
])
def test_a_subcommand_with_wrong_arguments_is_a_slip_not_a_need(text: str,
                                                                problem: str) -> None:
    # A need "stats abc" was answered "I don't know an offering for that" and topped `gaps`.
    command = parse_admin_command(text)
    assert command is not None
    assert command.problem == problem


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_group_membership_is_cached_briefly() -> None:
    lookups: list[str] = []
    members = {"S0ADMINS": ["U0GROUPIE"]}

    def lookup(group: str) -> list[str]:
        lookups.append(group)
        return members[group]

    clock = Clock()
    policy = AdminPolicy(["U0LISTED"], "S0ADMINS", lookup, cache_seconds=60, clock=clock)
    assert policy.is_admin("U0LISTED") and not lookups  # listed ids need no lookup
    assert policy.is_admin("U0GROUPIE") and not policy.is_admin("U0OTHER")
    assert lookups == ["S0ADMINS"]
    members["S0ADMINS"] = []
    clock.now = 59
    assert policy.is_admin("U0GROUPIE")  # still cached
    clock.now = 61
    assert not policy.is_admin("U0GROUPIE")  # removed from the group: access ends
    assert lookups == ["S0ADMINS", "S0ADMINS"]
    assert not policy.is_admin(None) and not policy.is_admin("")


def test_a_failing_lookup_makes_nobody_an_admin(caplog: pytest.LogCaptureFixture) -> None:
    def broken(group: str) -> list[str]:
        raise OSError("connection reset")

    policy = AdminPolicy(["U0LISTED"], "S0ADMINS", broken)
    assert not policy.is_admin("U0GROUPIE")
    assert policy.is_admin("U0LISTED")
    assert "could not list the members of admin group S0ADMINS" in caplog.text


def test_a_failing_lookup_is_cached_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="concierge.admin")
    lookups: list[str] = []
    failure: list[Exception] = [OSError("missing_scope")]

    def lookup(group: str) -> list[str]:
        lookups.append(group)
        if failure:
            raise failure[0]
        return ["U0GROUPIE"]

    clock = Clock()
    policy = AdminPolicy([], "S0ADMINS", lookup, cache_seconds=60, clock=clock)
    for _ in range(5):  # five refused commands within the minute
        assert not policy.is_admin("U0GROUPIE")
    assert lookups == ["S0ADMINS"]
    clock.now = 61
    assert not policy.is_admin("U0GROUPIE")  # tried again, failed the same way: no new line
    assert lookups == ["S0ADMINS"] * 2
    warnings = [r for r in caplog.records if "could not list" in r.getMessage()]
    assert len(warnings) == 1
    failure.clear()
    clock.now = 122
    assert policy.is_admin("U0GROUPIE")  # works again
    assert "can be listed again" in caplog.text


def test_operations_settings_are_checked() -> None:
    ops = OperationsConfig.from_env({"CONCIERGE_ADMINS": "U0A, U0B W0C",
                                     "CONCIERGE_ADMIN_GROUP": "S0ADMINS",
                                     "CONCIERGE_USER_HASH_KEY": "x" * 16,
                                     "CONCIERGE_RETENTION_DAYS": "30",
                                     "CONCIERGE_RELOAD_INTERVAL": "2",
                                     "CONCIERGE_WATCH_KNOWLEDGE": "off"})
    assert ops.admins == {"U0A", "U0B", "W0C"}
    assert (ops.admin_group, ops.retention_days, ops.reload_interval,
            ops.watch_knowledge) == ("S0ADMINS", 30, 2.0, False)
    assert "x" * 16 not in repr(ops)
    defaults = OperationsConfig.from_env({})
    assert (defaults.admins, defaults.user_hash_key, defaults.retention_days,
            defaults.reload_interval, defaults.watch_knowledge) == (
        frozenset(), None, 90, 5.0, True)


@pytest.mark.parametrize(("name", "value"), [
    ("CONCIERGE_ADMINS", "alice"),
    ("CONCIERGE_ADMIN_GROUP", "U0NOTAGROUP"),
    ("CONCIERGE_USER_HASH_KEY", "short"),
    ("CONCIERGE_RETENTION_DAYS", "0"),
    ("CONCIERGE_RELOAD_INTERVAL", "soon"),
    ("CONCIERGE_WATCH_KNOWLEDGE", "maybe"),
])
def test_a_bad_operations_setting_is_named(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        OperationsConfig.from_env({name: value})
    assert caught.value.setting == name


def test_forty_phrasings_of_one_need_are_one_gap() -> None:
    openers = ["", "I need ", "can I get ", "how do I get ", "please ", "where can I order "]
    nouns = ["a company car", "company car", "a comapny car", "company cars", "the company car",
             "a company-car", "company car?"]
    phrasings = [f"{o}{n}" for o in openers for n in nouns][:40]
    needs = [Need(p, "declined", "fleet") for p in phrasings]
    needs += [Need("where is the canteen", "declined"), Need("canteen menu", "abandoned"),
              Need("Dienstwagen", "declined")]
    groups = group_needs(needs)
    assert [g.count for g in groups] == [40, 2, 1]
    assert groups[0].nearest_offering_id == "fleet"
    assert len(groups[0].examples) == 3
    assert dict(groups[1].reasons) == {"declined": 1, "abandoned": 1}


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 0.95) is None
    assert percentile([5.0], 0.95) == 5.0
    assert percentile([float(n) for n in range(1, 101)], 0.95) == 95.0


def test_a_report_too_long_for_five_messages_says_so_and_where_to_read_it_all() -> None:
    line = "word " * 100  # 500 characters: six lines to a section
    view = ReportView("Huge", (Section("Everything", tuple(f"{n} {line}" for n in range(
        6 * MESSAGE_BLOCK_LIMIT * (RESPONSE_URL_MESSAGES + 2)))),))
    messages = report_messages(view, command="gaps --days 30")
    assert len(messages) == RESPONSE_URL_MESSAGES
    for message in messages:
        blocks = [b.to_dict() for b in message.blocks]
        assert len(blocks) <= MESSAGE_BLOCK_LIMIT
        assert all(len(b["text"]["text"]) <= SECTION_TEXT_LIMIT
                   for b in blocks if b["type"] == "section")
    last = [b.to_dict() for b in messages[-1].blocks]
    note = " ".join(e["text"] for b in last if b["type"] == "context" for e in b["elements"])
    assert "more parts of this report do not fit in Slack" in note
    assert "`concierge gaps --days 30 --json`" in note


def test_a_single_overlong_line_is_split_not_cut() -> None:
    line = "x" * (SECTION_TEXT_LIMIT * 2 + 10)
    [message] = report_messages(ReportView("One", (Section("Long", (line,)),)))
    texts = [b.to_dict()["text"]["text"] for b in message.blocks
             if b.to_dict()["type"] == "section"]
    assert "".join(texts).count("x") == len(line)
