"""`/concierge <subcommand>` for admins: who is one, what they typed, and what to show.

Admins are the user ids in `CONCIERGE_ADMINS` and the members of the usergroup
`CONCIERGE_ADMIN_GROUP`. Group members come from a lookup the Slack side
provides (`usergroups.users.list`), cached for `GROUP_CACHE_SECONDS`, so a burst
of commands costs one Web API call and a removed member loses access within a
minute. A failing lookup never grants access.

Only text that is exactly a subcommand (`stats`, `gaps 7`…) is one: anything
else, "check my VPN" included, is a need and is answered for everyone. Every
result is a `ReportView`, which the CLI prints and Slack shows alike.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

from bot.admin.reports import (
    DEFAULT_DAYS,
    MAX_DAYS,
    ReportView,
    Section,
    gaps_report,
    load_activity,
    owners_report,
    stats_report,
)
from bot.admin.suggest import suggest
from bot.catalogue.loader import check_knowledge
from bot.live import LiveCatalogue, ReloadResult
from bot.store.database import Store

log = logging.getLogger("concierge.admin")

GROUP_CACHE_SECONDS = 60.0

# name → (arguments, what it does); the order is the order `help` lists them in.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "stats": ("[days]", "questions, answered/clarified/declined, feedback, top offerings, "
                        f"latency (default: last {DEFAULT_DAYS} days)"),
    "gaps": ("[days]", "unmet needs grouped by similarity, most frequent first, with the "
                       "nearest offering and its owner"),
    "owners": ("[days]", "offerings per owner team; offerings nobody asked for; offerings "
                         "rated not helpful most often"),
    "suggest": ("[days]", "needs to add, learnt from real questions (choices picked, answers "
                          "rated helpful), with what each would change and YAML to paste"),
    "reload": ("", "re-read the knowledge directory on every worker (errors keep the last "
                   "good catalogue)"),
    "check": ("", "validate the live knowledge directory (`concierge check`)"),
    "help": ("", "this list"),
}
WITH_DAYS = frozenset({"stats", "gaps", "owners", "suggest"})


@dataclass(frozen=True, slots=True)
class AdminCommand:
    name: str
    days: int = DEFAULT_DAYS


def parse_admin_command(text: str) -> AdminCommand | None:
    """The subcommand `text` is, or None when it is a need (or plain help)."""
    words = text.split()
    if not words or words[0].lower() not in SUBCOMMANDS:
        return None
    name = words[0].lower()
    if len(words) == 1:
        return AdminCommand(name)
    if name in WITH_DAYS and len(words) == 2 and words[1].isdigit():
        return AdminCommand(name, max(1, min(int(words[1]), MAX_DAYS)))
    return None


class AdminPolicy:
    """Decides who is an admin."""

    def __init__(self, users: Collection[str] = (), group: str | None = None,
                 members: Callable[[str], Collection[str]] | None = None, *,
                 cache_seconds: float = GROUP_CACHE_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.users = frozenset(users)
        self.group = group
        self._members = members
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[float, frozenset[str]] | None = None

    @property
    def configured(self) -> bool:
        return bool(self.users or self.group)

    def is_admin(self, user_id: str | None) -> bool:
        if not user_id:
            return False
        if user_id in self.users:
            return True
        return self.group is not None and user_id in self._group_members()

    def _group_members(self) -> frozenset[str]:
        if self.group is None or self._members is None:
            return frozenset()
        now = self._clock()
        with self._lock:
            if self._cached is not None and now - self._cached[0] < self._cache_seconds:
                return self._cached[1]
        try:
            members = frozenset(self._members(self.group))
        except Exception as exc:  # whatever the lookup raises, it must not grant access
            log.warning("could not list the members of admin group %s (%s); only "
                        "CONCIERGE_ADMINS are admins until it works", self.group, exc)
            return frozenset()
        with self._lock:
            self._cached = (now, members)
        return members


# --- running subcommands ------------------------------------------------------------------


class AdminDesk:
    """Runs admin subcommands against one worker's live catalogue and the store."""

    def __init__(self, live: LiveCatalogue, store: Store | None,
                 reload_interval: float | None = None) -> None:
        self.live = live
        self.store = store
        self.reload_interval = reload_interval

    def run(self, command: AdminCommand) -> ReportView:
        if command.name == "help":
            return help_view(admin=True)
        if command.name == "reload":
            return reload_view(self.live.reload_everywhere(), self.reload_interval)
        if command.name == "check":
            return check_view(self.live)
        return self.report(command.name, command.days)

    def report(self, name: str, days: int) -> ReportView:
        if self.store is None:
            return unavailable_view(name, "no database is configured")
        try:
            activity = load_activity(self.store, days)
        except SQLAlchemyError as exc:
            log.warning("admin report %s: database unavailable: %s", name, exc)
            return unavailable_view(name, str(exc).strip().splitlines()[0])
        catalog = self.live.catalog
        if name == "stats":
            return stats_report(activity, catalog).view()
        if name == "gaps":
            return gaps_report(activity, catalog).view()
        if name == "suggest":
            return suggest(activity, self.live.matcher).view()
        return owners_report(activity, catalog).view()


def help_view(*, admin: bool) -> ReportView:
    ask = ("/concierge <need>", "describe what you need in plain words; only you see the "
                                "answer")
    lines = [f"{ask[0]}: {ask[1]}"]
    if admin:
        lines += [f"/concierge {name}{' ' + args if args else ''}: {what}"
                  for name, (args, what) in SUBCOMMANDS.items()]
    return ReportView("Concierge commands", (Section(
        "Admin subcommands (only you see the output)" if admin else "How to ask",
        tuple(lines)),))


def refusal_view(name: str) -> ReportView:
    return ReportView("Admins only", (Section(
        f"`{name}` is a Concierge admin command", (
            "Sorry, only Concierge admins can use it. If you meant it as a question, "
            "ask in a few more words, e.g. `/concierge I need to check my VPN access`.",
            "Admins are set by CONCIERGE_ADMINS and CONCIERGE_ADMIN_GROUP; ask your IT team "
            "if you should be one.")),))


def unavailable_view(name: str, why: str) -> ReportView:
    return ReportView(f"Concierge {name}: the database is unavailable", (Section(
        "Nothing to report right now", (
            f"The question log could not be read: {why}.",
            "Concierge keeps answering; questions asked while the database is down are not "
            "recorded.")),))


def reload_view(result: ReloadResult, interval: float | None = None) -> ReportView:
    warnings = tuple(p.render() for p in result.problems if not p.is_error)
    if not result.ok:
        return ReportView(
            f"Reload failed: still serving the last good catalogue ({result.offerings} "
            "offerings)",
            (Section(f"{len(result.errors)} errors (path:line: field: message)",
                     tuple(p.render() for p in result.errors)),
             *((Section(f"{len(warnings)} warnings", warnings),) if warnings else ())))
    diff = result.diff
    assert diff is not None  # ok means there is a diff
    spread = ("every worker serves it within "
              f"{interval:.0f} s" if interval else "other workers pick it up at their next "
                                                   "check")
    if result.generation is None:
        spread = ("the database is unavailable, so other workers pick it up only when they "
                  "see the files change")
    sections = []
    for label, ids in (("Added", diff.added), ("Removed", diff.removed),
                       ("Changed", diff.changed)):
        if ids:
            sections.append(Section(f"{label} ({len(ids)})", tuple(ids)))
    if not sections:
        sections.append(Section("No offerings changed", ("The files on disk match what "
                                                          "was already served.",)))
    if warnings:
        sections.append(Section(f"{len(warnings)} warnings", warnings))
    generation = f", generation {result.generation}" if result.generation is not None else ""
    return ReportView(f"Reloaded: {result.offerings} offerings{generation}; {spread}",
                      tuple(sections))


def check_view(live: LiveCatalogue) -> ReportView:
    report = check_knowledge(live.knowledge)
    lines = tuple(p.render() for p in report.problems)
    errors, warnings = len(report.errors), len(report.warnings)
    if report.catalog is not None:
        verdict = (f"ok: {len(report.catalog)} offerings in {report.files} files"
                   f"{f', {warnings} warnings' if warnings else ''}")
    else:
        verdict = (f"{errors} errors, {warnings} warnings in {report.files} files; "
                   f"still serving {len(live.catalog)} offerings")
    return ReportView(f"concierge check: {live.knowledge}", (
        Section(verdict, lines or ("No problems found.",)),))
