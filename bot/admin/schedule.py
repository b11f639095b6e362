"""When owners get their digest: `CONCIERGE_DIGEST`, and which usergroups read it in a channel.

    CONCIERGE_DIGEST      unset or `weekly`          Mondays 09:00 UTC (the default)
                          `weekly fri 16:30 Europe/Berlin`
                          `daily 08:00`              every day, UTC
                          `off`                      no digests (`concierge digest --send`
                                                     still sends by hand, weekly periods)
    CONCIERGE_DIGEST_CHANNELS   `S04ABCD1234=#iam-team, S0NET=C0123456`: a usergroup owner
                          contact gets the digest in this channel instead of a DM to each
                          of its members

A digest is sent for a *slot* (the scheduled time) and covers the period before it: a
weekly slot the 7 days up to it, a daily slot the day. A slot is due from its time until
`grace` after it (a day for weekly, 12 hours for daily): workers that were down at 09:00
send it when they come back, but a digest days late is left out (and logged). Times are
in the named IANA time zone (default UTC), so "09:00 Europe/Berlin" stays 09:00 across
daylight saving changes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.errors import ConfigError

SETTING = "CONCIERGE_DIGEST"
CHANNELS_SETTING = "CONCIERGE_DIGEST_CHANNELS"
DEFAULT = "weekly mon 09:00 UTC"
OFF_WORDS = frozenset({"off", "no", "false", "0", "none"})
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
CADENCES = {"weekly": timedelta(days=7), "daily": timedelta(days=1)}
GRACE = {"weekly": timedelta(days=1), "daily": timedelta(hours=12)}
_TIME = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")
_GROUP = re.compile(r"S[A-Z0-9]{2,}")
_CHANNEL = re.compile(r"[CG][A-Z0-9]{2,}|#[a-z0-9][a-z0-9._-]{0,79}")


@dataclass(frozen=True)
class Schedule:
    """A digest cadence: weekly on `weekday` or daily, at `at` in `zone`."""

    cadence: str
    at: time
    weekday: int = 0
    zone: str = "UTC"

    @property
    def length(self) -> timedelta:
        return CADENCES[self.cadence]

    @property
    def grace(self) -> timedelta:
        return GRACE[self.cadence]

    @property
    def days(self) -> int:
        return self.length.days

    def _tz(self) -> tzinfo:
        return UTC if self.zone == "UTC" else ZoneInfo(self.zone)

    def latest_slot(self, now: datetime) -> datetime:
        """The most recent slot at or before `now`, in UTC."""
        local = now.astimezone(self._tz())
        slot = datetime.combine(local.date(), self.at, tzinfo=self._tz())
        if self.cadence == "weekly":
            slot -= timedelta(days=(local.weekday() - self.weekday) % 7)
        while slot > local:
            slot = datetime.combine(slot.date() - self.length, self.at, tzinfo=self._tz())
        return slot.astimezone(UTC)

    def due(self, now: datetime) -> datetime | None:
        """The slot to send now, or None when the latest one is past its grace."""
        slot = self.latest_slot(now)
        return slot if now - slot <= self.grace else None

    def key(self, slot: datetime) -> str:
        """The period's name in the database: the same in every worker and host."""
        return f"{self.cadence}:{slot.astimezone(UTC):%Y-%m-%dT%H:%MZ}"

    def describe(self) -> str:
        when = f"{self.at:%H:%M} {self.zone}"
        if self.cadence == "weekly":
            return f"weekly, {DAY_NAMES[self.weekday]}s at {when}"
        return f"daily at {when}"


def parse_schedule(text: str) -> Schedule | None:
    """`CONCIERGE_DIGEST`'s value as a `Schedule`, None for off; `ValueError` says what is
    wrong."""
    words = text.split()
    if not words:
        words = DEFAULT.split()
    if len(words) == 1 and words[0].lower() in OFF_WORDS:
        return None
    cadence, rest = words[0].lower(), words[1:]
    if cadence not in CADENCES:
        raise ValueError(f"starts with `weekly`, `daily` or `off`, not {words[0]!r}")
    weekday = 0
    if cadence == "weekly" and rest and rest[0][:3].lower() in DAYS and (
            DAY_NAMES[DAYS.index(rest[0][:3].lower())].lower().startswith(rest[0].lower())):
        weekday = DAYS.index(rest.pop(0)[:3].lower())
    at = time(9, 0)
    if rest and ":" in rest[0]:
        found = _TIME.fullmatch(rest.pop(0))
        if found is None:
            raise ValueError("the time must be HH:MM on a 24-hour clock, e.g. 09:00")
        at = time(int(found.group(1)), int(found.group(2)))
    zone = "UTC"
    if rest:
        zone = rest.pop(0)
        if zone.upper() != "UTC":
            try:
                ZoneInfo(zone)
            except (ZoneInfoNotFoundError, ValueError):
                what = ("an IANA time zone" if "/" in zone
                        else "a day (mon, tue, … sun) nor an IANA time zone")
                raise ValueError(f"{zone!r} is {'not' if '/' in zone else 'neither'} {what} "
                                 "(e.g. Europe/Berlin, America/New_York, UTC)") from None
        else:
            zone = "UTC"
    if rest:
        raise ValueError(f"unexpected {' '.join(rest)!r}; the form is `weekly [DAY] [HH:MM] "
                         "[ZONE]`, `daily [HH:MM] [ZONE]` or `off`")
    return Schedule(cadence, at, weekday, zone)


def parse_group_channels(text: str) -> dict[str, str]:
    """`CONCIERGE_DIGEST_CHANNELS`'s value: usergroup id → channel; `ValueError` if bad."""
    out: dict[str, str] = {}
    for pair in re.split(r"[\s,]+", text.strip()):
        if not pair:
            continue
        group, sep, channel = pair.partition("=")
        if not sep or not _GROUP.fullmatch(group) or not _CHANNEL.fullmatch(channel):
            raise ValueError(f"{pair!r} is not USERGROUP=CHANNEL (a usergroup id S…, then a "
                             "channel id C… or #name)")
        out[group] = channel
    return out


@dataclass(frozen=True)
class DigestSettings:
    """The digest's configuration, from the environment."""

    schedule: Schedule | None = field(default_factory=lambda: parse_schedule(DEFAULT))
    """None: the scheduler is off."""
    group_channels: Mapping[str, str] = field(default_factory=dict)

    @property
    def cadence(self) -> Schedule:
        """The schedule, or the default one when off: what a digest sent by hand covers."""
        return self.schedule or default_schedule()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> DigestSettings:
        env = os.environ if env is None else env
        try:
            schedule = parse_schedule(env.get(SETTING, ""))
        except ValueError as exc:
            raise ConfigError(str(exc), setting=SETTING) from None
        try:
            channels = parse_group_channels(env.get(CHANNELS_SETTING, ""))
        except ValueError as exc:
            raise ConfigError(str(exc), setting=CHANNELS_SETTING) from None
        return cls(schedule, channels)


def default_schedule() -> Schedule:
    found = parse_schedule(DEFAULT)
    assert found is not None  # the default is not "off"
    return found
