"""`/concierge <subcommand>` for admins: who is one, what they typed, and what to show.

Admins are the user ids in `CONCIERGE_ADMINS` and the members of the usergroup
`CONCIERGE_ADMIN_GROUP`. Group members come from a lookup the Slack side
provides (`usergroups.users.list`), cached for `GROUP_CACHE_SECONDS`, so a burst
of commands costs one Web API call and a removed member loses access within a
minute. A failing lookup never grants access, and its failure is cached just the
same: a missing scope or a deleted group costs one call and one warning a minute,
not one per command (and per question, since admins' own questions are marked).

Only text that is exactly a subcommand (`stats`, `gaps 7`…) is one: anything
else, "check my VPN" included, is a need and is answered for everyone. Every
result is a `ReportView`, which the CLI prints and Slack shows alike.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

from bot.admin.chart import Chart, daily_series, stats_chart
from bot.admin.reports import (
    DEFAULT_DAYS,
    MAX_DAYS,
    ReportView,
    Section,
    gaps_report,
    load_activity,
    owners_report,
    requests_report,
    stats_report,
)
from bot.admin.suggest import suggest
from bot.catalogue.loader import check_knowledge
from bot.live import LiveCatalogue, ReloadResult
from bot.matching.quality import quality_report
from bot.store.database import Store
from bot.wording import plural, printable

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
    "requests": ("[days]", "requests made in Slack: who asked for what, the owner's status "
                           "and where each delivery stands (delivered, retrying, failed)"),
    "suggest": ("[days]", "needs to add, learnt from real questions (choices picked, answers "
                          "rated helpful), with what each would change and YAML to paste"),
    "reload": ("", "re-read the knowledge directory on every worker (errors keep the last "
                   "good catalogue)"),
    "check": ("", "validate the live knowledge directory and report how well the catalogue "
                  "being served can be matched (`concierge check --quality`)"),
    "help": ("", "this list"),
}
WITH_DAYS = frozenset({"stats", "gaps", "owners", "suggest", "requests"})


@dataclass(frozen=True, slots=True)
class AdminCommand:
    name: str
    days: int = DEFAULT_DAYS
    problem: str | None = None
    """Set for a slip: a subcommand with arguments it does not take (`stats abc`)."""


# Up to this many words after a subcommand's name read as (wrong) arguments; more are a
# question that happens to start with the name ("check my VPN access").
SLIP_WORDS = 2
_DAYS = re.compile(r"(?:--days[ =]?)?(\d{1,7})(?:\s*d(?:ays?)?)?", re.ASCII | re.IGNORECASE)


def parse_admin_command(text: str) -> AdminCommand | None:
    """The subcommand `text` is, a slip (a subcommand with arguments it does not take,
    `problem` saying what is wrong), or None when it is a need (or plain help)."""
    words = text.split()
    if not words or words[0].lower() not in SUBCOMMANDS:
        return None
    name = words[0].lower()
    rest = " ".join(words[1:])
    if not rest:
        return AdminCommand(name)
    if name == "help" or len(words) - 1 > SLIP_WORDS:
        return None
    days = _DAYS.fullmatch(rest) if name in WITH_DAYS else None
    if days is not None:
        return AdminCommand(name, max(1, min(int(days.group(1)), MAX_DAYS)))
    shown = printable(rest, 40)
    if name in WITH_DAYS:
        return AdminCommand(name, problem=f"`{name}` takes a number of days from 1 to "
                                          f"{MAX_DAYS}, e.g. `/concierge {name} 7`, not "
                                          f"`{shown}`")
    return AdminCommand(name, problem=f"`{name}` takes nothing after it, not `{shown}`")


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
        self._failing: str | None = None
        """The last lookup's error while lookups fail: each new error is logged once."""

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
            problem = printable(exc, 200)
            with self._lock:
                self._cached = (now, frozenset())
                repeated, self._failing = self._failing == problem, problem
            if not repeated:
                log.warning("could not list the members of admin group %s (%s); only "
                            "CONCIERGE_ADMINS are admins until it works (next try in %.0f s)",
                            self.group, problem, self._cache_seconds)
            return frozenset()
        with self._lock:
            self._cached = (now, members)
            recovered, self._failing = self._failing is not None, None
        if recovered:
            log.info("admin group %s can be listed again", self.group)
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
        if command.problem is not None:
            return slip_view(command)
        if command.name == "help":
            return help_view(admin=True)
        if command.name == "reload":
            return reload_view(self.live.reload_everywhere(), self.reload_interval)
        if command.name == "check":
            return check_view(self.live)
        return self.report(command.name, command.days)

    def stats_chart(self, days: int) -> Chart | None:
        """The stats of the last `days` as a picture (or why not); None without a database."""
        if self.store is None:
            return None
        try:
            activity = load_activity(self.store, days)
        except SQLAlchemyError as exc:
            log.warning("stats chart: database unavailable: %s", exc)
            return None
        return stats_chart(daily_series(activity))

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
        if name == "requests":
            return requests_report(activity, catalog).view()
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


def slip_view(command: AdminCommand) -> ReportView:
    """What an admin sees for `/concierge stats abc`: what is wrong, not an answer to the
    "need" `stats abc` (which also topped the gaps report)."""
    return ReportView("Not a Concierge command", (Section(command.problem or "", (
        f"`/concierge {command.name}` {SUBCOMMANDS[command.name][0]}".rstrip() + ": "
        + SUBCOMMANDS[command.name][1],
        "If you meant it as a question, ask in a few more words, e.g. `/concierge I need to "
        "check my VPN access`.",
        "`/concierge help` lists every command.")),))


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
            f"Reload failed: still serving the last good catalogue "
            f"({plural(result.offerings, 'offering')})",
            (Section(f"{plural(len(result.errors), 'error')} (path:line: field: message)",
                     tuple(p.render() for p in result.errors)),
             *((Section(plural(len(warnings), "warning"), warnings),) if warnings else ())))
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
        sections.append(Section(plural(len(warnings), "warning"), warnings))
    generation = f", generation {result.generation}" if result.generation is not None else ""
    return ReportView(f"Reloaded: {plural(result.offerings, 'offering')}{generation}; {spread}",
                      tuple(sections))


def check_view(live: LiveCatalogue) -> ReportView:
    """The files as `concierge check` reads them, then the quality report of the catalogue
    being served (`concierge check --quality`)."""
    report = check_knowledge(live.knowledge, webhooks=live.webhooks)
    lines = tuple(p.render() for p in report.problems)
    verdict = report.verdict()
    if report.catalog is None:
        verdict += f"; still serving {plural(len(live.catalog), 'offering')}"
    quality = quality_report(live.matcher)
    found = quality.findings
    return ReportView(f"concierge check: {live.knowledge}", (
        Section(verdict, lines or ("No problems found.",)),
        Section(f"Quality of the catalogue being served "
                f"({plural(len(live.catalog), 'offering')}): {quality.summary()}",
                (f"Decision rule: {quality.rule.describe()}",
                 *(f.render() for f in found),
                 *(() if found else ("Nothing to improve was found.",)))),
    ))
