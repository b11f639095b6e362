"""`CONCIERGE_DIGEST` and `CONCIERGE_DIGEST_CHANNELS`: the forms they take, the slots and
periods they give (time zones and daylight saving included), and clear errors."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from bot.admin.digest import Destination, Skipped, destinations
from bot.admin.schedule import DigestSettings, Schedule, parse_group_channels, parse_schedule
from bot.errors import ConfigError
from bot.slack.operations import OperationsConfig


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(("text", "expected"), [
    ("", Schedule("weekly", time(9, 0), 0, "UTC")),
    ("weekly", Schedule("weekly", time(9, 0), 0, "UTC")),
    ("Weekly Friday 16:30 Europe/Berlin", Schedule("weekly", time(16, 30), 4, "Europe/Berlin")),
    ("weekly sun 7:05", Schedule("weekly", time(7, 5), 6, "UTC")),
    ("daily 08:00 utc", Schedule("daily", time(8, 0), 0, "UTC")),
    ("daily", Schedule("daily", time(9, 0), 0, "UTC")),
])
def test_the_forms_it_takes(text: str, expected: Schedule) -> None:
    assert parse_schedule(text) == expected


@pytest.mark.parametrize("text", ["off", "OFF", "no", "false", "0", "none"])
def test_off(text: str) -> None:
    assert parse_schedule(text) is None
    assert DigestSettings.from_env({"CONCIERGE_DIGEST": text}).schedule is None


@pytest.mark.parametrize(("text", "message"), [
    ("hourly", "starts with `weekly`, `daily` or `off`, not 'hourly'"),
    ("weekly mon 25:00", "HH:MM on a 24-hour clock"),
    ("weekly funday", "'funday' is neither a day (mon, tue, … sun) nor an IANA time zone"),
    ("daily 08:00 Mars/Base", "'Mars/Base' is not an IANA time zone"),
    ("daily 08:00 UTC soon", "unexpected 'soon'"),
])
def test_a_bad_value_is_one_error_naming_the_variable(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        OperationsConfig.from_env({"CONCIERGE_DIGEST": text})
    assert caught.value.setting == "CONCIERGE_DIGEST"
    assert message in str(caught.value)


def test_slots_periods_and_grace() -> None:
    weekly = parse_schedule("weekly")
    assert weekly is not None
    # Monday 2026-11-30 09:00 UTC is a slot; just before it, the previous Monday is.
    assert weekly.latest_slot(at("2026-11-30T09:00")) == at("2026-11-30T09:00")
    assert weekly.latest_slot(at("2026-11-30T08:59")) == at("2026-11-23T09:00")
    assert weekly.latest_slot(at("2026-12-03T12:00")) == at("2026-11-30T09:00")
    assert weekly.due(at("2026-12-01T08:59")) == at("2026-11-30T09:00")  # within a day
    assert weekly.due(at("2026-12-01T09:01")) is None
    assert weekly.key(at("2026-11-30T09:00")) == "weekly:2026-11-30T09:00Z"
    daily = parse_schedule("daily 08:00")
    assert daily is not None
    assert daily.latest_slot(at("2026-11-30T07:00")) == at("2026-11-29T08:00")
    assert daily.due(at("2026-11-29T20:00")) == at("2026-11-29T08:00")
    assert daily.due(at("2026-11-29T20:01")) is None
    assert daily.days == 1 and weekly.days == 7


def test_local_time_holds_across_daylight_saving() -> None:
    berlin = parse_schedule("weekly mon 09:00 Europe/Berlin")
    assert berlin is not None
    # Summer (UTC+2) and winter (UTC+1): 09:00 in Berlin both times.
    assert berlin.latest_slot(at("2026-10-20T12:00")) == at("2026-10-19T07:00")
    assert berlin.latest_slot(at("2026-10-27T12:00")) == at("2026-10-26T08:00")
    assert berlin.describe() == "weekly, Mondays at 09:00 Europe/Berlin"


def test_group_channels() -> None:
    assert parse_group_channels("S04ABCD1234=#iam-team, S0NET=C0123456") == {
        "S04ABCD1234": "#iam-team", "S0NET": "C0123456"}
    assert parse_group_channels("") == {}
    for bad in ["S0NET", "#iam=S0NET", "S0NET=#Big Channel", "U0USER=C0123"]:
        with pytest.raises(ValueError, match="is not USERGROUP=CHANNEL"):
            parse_group_channels(bad)
    with pytest.raises(ConfigError) as caught:
        DigestSettings.from_env({"CONCIERGE_DIGEST_CHANNELS": "S0NET=general"})
    assert caught.value.setting == "CONCIERGE_DIGEST_CHANNELS"


def test_where_each_contact_kind_goes() -> None:
    where, skipped = destinations(
        ["U0REPAIR1", "S0NETWORK1", "S0IAMTEAM1", "#collab-help", "C0WORKPLACE",
         "iam@example.test", None, "U0REPAIR1"], {"S0IAMTEAM1": "#iam-digest"})
    assert where == (Destination("dm", "U0REPAIR1"), Destination("usergroup", "S0NETWORK1"),
                     Destination("channel", "#iam-digest"),
                     Destination("channel", "#collab-help"),
                     Destination("channel", "C0WORKPLACE"))
    assert skipped == (Skipped("iam@example.test",
                               "an email address: Concierge only posts in Slack"),)
    assert destinations([None]) == ((), (Skipped(None, "no owner contact in the catalogue"),))


def test_a_schedule_and_its_period_length_agree() -> None:
    weekly = parse_schedule("weekly wed 10:00")
    assert weekly is not None
    slot = weekly.latest_slot(at("2026-11-30T00:00"))
    assert slot == at("2026-11-25T10:00")
    previous = weekly.latest_slot(slot - timedelta(seconds=1))
    assert slot - previous == weekly.length == timedelta(days=7)
