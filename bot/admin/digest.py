"""The digest an owner team gets each period: what happened to their offerings, what people
needed near them, needs to add, and the quality findings; and where it goes.

    the period's question log ─┐
    the live catalogue ────────┼─▶ build_digests() ─▶ TeamDigest per owner team
    suggest() (30 days) ───────┤                        .empty: nothing to say → not sent
    quality_findings() ────────┘                        .view(): the text both adapters show

Where a digest goes comes from the owner contacts in the YAML (`destinations`): a user id
(`U…`) gets a direct message, a usergroup (`S…`) a DM to each member or the channel
`CONCIERGE_DIGEST_CHANNELS` names for it, a channel (`#name`, `C…`) a message there; an
email address is skipped and listed, since Concierge only speaks Slack. Values only:
the Block Kit message is built in `bot.slack.digests`, the terminal's in `bot.cli.digest`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.admin.reports import Activity, Gap, ReportView, Section, gaps_report
from bot.admin.suggest import EVIDENCE_LABELS, OfferingSuggestions, SuggestReport
from bot.catalogue.models import Catalog, Offering
from bot.matching.matcher import Matcher
from bot.matching.quality import quality_report

MAX_OFFERINGS = 12
MAX_GAPS = 5
MAX_SUGGESTED = 5
MAX_FINDINGS = 8

_USER = re.compile(r"[UW][A-Z0-9]{6,}")
_GROUP = re.compile(r"S[A-Z0-9]{6,}")
_CHANNEL = re.compile(r"[CG][A-Z0-9]{6,}|#[a-z0-9][a-z0-9._-]{0,79}")


# --- quality findings (from `concierge check --quality`) -----------------------------------


@dataclass(frozen=True, slots=True)
class Finding:
    """One quality-report finding about one offering, in words for its owner."""

    offering_id: str
    text: str


FindingsSource = Callable[[Matcher], Sequence[Finding]]


def quality_findings(matcher: Matcher) -> tuple[Finding, ...]:
    """The quality report's findings (`concierge check --quality`, `bot.matching.quality`)
    about the matcher's catalogue, one per offering each finding names: what is wrong and
    what to do, for the digest's "Quality findings" section."""
    return tuple(Finding(oid, f"{f.message} {f.action}")
                 for f in quality_report(matcher).findings for oid in f.offerings)


# --- where it goes -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Destination:
    """Where a team's digest is posted: `dm` to a user, `usergroup` (a DM to each member,
    resolved when sending) or `channel`."""

    kind: str
    target: str

    def describe(self) -> str:
        if self.kind == "dm":
            return f"direct message to {self.target}"
        if self.kind == "usergroup":
            return f"direct message to each member of usergroup {self.target}"
        return f"channel {self.target}"


@dataclass(frozen=True, slots=True)
class Skipped:
    """A contact the digest cannot be posted to, and why."""

    contact: str | None
    why: str


def destinations(contacts: Iterable[str | None], group_channels: Mapping[str, str] | None = None
                 ) -> tuple[tuple[Destination, ...], tuple[Skipped, ...]]:
    """The team's Slack destinations (each once, in order) and the contacts skipped."""
    group_channels = group_channels or {}
    found: dict[Destination, None] = {}
    skipped: dict[Skipped, None] = {}
    for contact in contacts:
        if not contact:
            continue
        if _USER.fullmatch(contact):
            found[Destination("dm", contact)] = None
        elif _GROUP.fullmatch(contact):
            channel = group_channels.get(contact)
            found[Destination("channel", channel) if channel
                  else Destination("usergroup", contact)] = None
        elif _CHANNEL.fullmatch(contact):
            found[Destination("channel", contact)] = None
        else:
            skipped[Skipped(contact, "an email address: Concierge only posts in Slack")] = None
    if not found and not skipped:
        skipped[Skipped(None, "no owner contact in the catalogue")] = None
    return tuple(found), tuple(skipped)


# --- what it says --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OfferingWeek:
    """One offering's period: questions it served, and what askers did with them."""

    id: str
    name: str
    answered: int
    picked: int
    helpful: int
    not_helpful: int
    request_clicks: int

    @property
    def questions(self) -> int:
        return self.answered + self.picked

    @property
    def quiet(self) -> bool:
        return not (self.questions or self.helpful or self.not_helpful or self.request_clicks)

    def line(self) -> str:
        how = []
        if self.answered:
            how.append(f"{self.answered} answered outright")
        if self.picked:
            how.append(f"{self.picked} picked from a choice")
        detail = f" ({', '.join(how)})" if how else ""
        return (f"{self.name} [{self.id}]: {self.questions} question"
                f"{'' if self.questions == 1 else 's'}{detail}; {self.helpful} helpful, "
                f"{self.not_helpful} not helpful; {self.request_clicks} Request click"
                f"{'' if self.request_clicks == 1 else 's'}")


@dataclass(frozen=True)
class TeamDigest:
    """One owner team's digest for one period."""

    team: str
    since: datetime
    until: datetime
    offerings: tuple[OfferingWeek, ...]
    gaps: tuple[Gap, ...]
    suggestions: tuple[OfferingSuggestions, ...]
    findings: tuple[Finding, ...]
    destinations: tuple[Destination, ...]
    skipped: tuple[Skipped, ...]
    catalog: Catalog = field(repr=False, compare=False)

    @property
    def empty(self) -> bool:
        """Nothing to tell the team: such a digest is never sent."""
        return (all(o.quiet for o in self.offerings) and not self.gaps
                and not self.suggestions and not self.findings)

    @property
    def span(self) -> str:
        return f"{self.since:%a %d %b %H:%M} to {self.until:%a %d %b %Y %H:%M} UTC"

    def view(self) -> ReportView:
        sections = [self._activity()]
        if self.gaps:
            lines = [_gap_line(g) for g in self.gaps[:MAX_GAPS]]
            if len(self.gaps) > MAX_GAPS:
                lines.append(f"… and {len(self.gaps) - MAX_GAPS} more: ask an admin for "
                             "`/concierge gaps`")
            sections.append(Section(f"Unmet needs near your offerings ({len(self.gaps)})",
                                    tuple(lines)))
        if self.suggestions:
            sections.append(Section("Needs to add, learnt from real questions",
                                    tuple(self._suggestion_lines())))
        if self.findings:
            names = {o.id: o.name for o in self.offerings}
            lines = [f"{names.get(f.offering_id, f.offering_id)}: {f.text}"
                     for f in self.findings[:MAX_FINDINGS]]
            if len(self.findings) > MAX_FINDINGS:
                lines.append(f"… and {len(self.findings) - MAX_FINDINGS} more: "
                             "`concierge check --quality`")
            sections.append(Section("Quality findings", tuple(lines)))
        sections.append(Section("What to do", tuple(self._advice())))
        return ReportView(f"Concierge digest for {self.team}", (
            Section(self.span, ()), *sections))

    def _activity(self) -> Section:
        busy = sorted((o for o in self.offerings if not o.quiet),
                      key=lambda o: (-o.questions, o.id))
        lines = [o.line() for o in busy[:MAX_OFFERINGS]]
        if len(busy) > MAX_OFFERINGS:
            lines.append(f"… and {len(busy) - MAX_OFFERINGS} more offerings with questions")
        quiet = [o.name for o in self.offerings if o.quiet]
        if quiet:
            shown = ", ".join(quiet[:MAX_OFFERINGS])
            more = f" and {len(quiet) - MAX_OFFERINGS} more" if len(quiet) > MAX_OFFERINGS else ""
            lines.append(f"No questions: {shown}{more}")
        total = sum(o.questions for o in self.offerings)
        return Section(f"Questions about your offerings: {total}", tuple(lines))

    def _suggestion_lines(self) -> Iterable[str]:
        shown = 0
        total = sum(len(o.suggestions) for o in self.suggestions)
        for o in self.suggestions:
            for s in o.suggestions:
                if s.phrase is None or shown == MAX_SUGGESTED:
                    continue
                shown += 1
                kinds = ", ".join(EVIDENCE_LABELS.get(k, k) for k, _ in s.kinds)
                change = ""
                if s.today is not None and s.with_it is not None:
                    change = (f"; today {s.today.describe(self.catalog)}, with it "
                              f"{s.with_it.describe(self.catalog)}")
                yield (f"{o.offering.name}: “{s.phrase}” ({s.count} question"
                       f"{'' if s.count == 1 else 's'}, {kinds}{change})")
        if total > shown:
            yield f"… and {total - shown} more"
        yield (f"YAML ready to paste or apply: `concierge suggest --owner \"{self.team}\"` "
               "(`--patch` for a diff), or ask an admin for `/concierge suggest`")

    def _advice(self) -> Iterable[str]:
        if self.suggestions:
            yield ("Add the needs that fit to your offerings' `needs:` through your usual "
                   "review; Concierge never edits the files itself.")
        if self.gaps:
            yield ("An unmet need next to your offering usually wants one more `need`; a "
                   "frequent one next to nothing may want a new offering.")
        if any(o.not_helpful for o in self.offerings):
            yield ("Answers rated not helpful: check that the summary says what the "
                   "offering is and is not for.")
        yield ("How to act on each section: \"The weekly digest\" in Concierge's guide for "
               "catalogue authors (docs/catalogue-authors.md).")

    def to_json(self) -> dict[str, Any]:
        return {"team": self.team, "since": self.since.isoformat(),
                "until": self.until.isoformat(), "empty": self.empty,
                "destinations": [{"kind": d.kind, "target": d.target}
                                 for d in self.destinations],
                "skipped": [{"contact": s.contact, "why": s.why} for s in self.skipped],
                "offerings": [{"id": o.id, "name": o.name, "answered": o.answered,
                               "picked": o.picked, "helpful": o.helpful,
                               "not_helpful": o.not_helpful,
                               "request_clicks": o.request_clicks} for o in self.offerings],
                "gaps": [{"count": g.count, "examples": list(g.examples),
                          "nearest": g.nearest.id if g.nearest else None} for g in self.gaps],
                "suggestions": [{"offering": o.offering.id, "phrases": list(o.phrases)}
                                for o in self.suggestions],
                "findings": [{"offering": f.offering_id, "text": f.text}
                             for f in self.findings]}


def _gap_line(g: Gap) -> str:
    examples = " | ".join(f"“{e}”" for e in g.examples)
    near = f"; nearest: {g.nearest.name}" if g.nearest else ""
    return f"{g.count} × {examples}{near}"


def build_digests(activity: Activity, catalog: Catalog, *,
                  suggestions: SuggestReport | None = None,
                  findings: Sequence[Finding] = (),
                  group_channels: Mapping[str, str] | None = None) -> list[TeamDigest]:
    """Every owner team's digest for `activity`'s period, teams in name order (empty ones
    included: the caller skips them and can say so)."""
    answered: dict[str, int] = {}
    picked: dict[str, int] = {}
    for q in activity.questions:
        if q.decision == "answer" and q.offering_id:
            answered[q.offering_id] = answered.get(q.offering_id, 0) + 1
        elif q.chosen_offering_id:
            picked[q.chosen_offering_id] = picked.get(q.chosen_offering_id, 0) + 1
    helpful: dict[str, int] = {}
    unhelpful: dict[str, int] = {}
    for r in activity.ratings:
        counts = helpful if r.helpful else unhelpful
        counts[r.offering_id] = counts.get(r.offering_id, 0) + 1
    clicks: dict[str, int] = {}
    for offering_id in activity.request_clicks:
        clicks[offering_id] = clicks.get(offering_id, 0) + 1
    gaps = gaps_report(activity, catalog).gaps
    teams: dict[str, list[Offering]] = {}
    for o in catalog:
        teams.setdefault(o.owner.team, []).append(o)
    out = []
    for team, offerings in sorted(teams.items(), key=lambda kv: kv[0].casefold()):
        where, skipped = destinations((o.owner.contact for o in offerings), group_channels)
        out.append(TeamDigest(
            team=team, since=activity.since, until=activity.until,
            offerings=tuple(OfferingWeek(o.id, o.name, answered.get(o.id, 0),
                                         picked.get(o.id, 0), helpful.get(o.id, 0),
                                         unhelpful.get(o.id, 0), clicks.get(o.id, 0))
                            for o in offerings if not o.is_retired),
            gaps=tuple(g for g in gaps if g.nearest is not None and g.nearest.owner == team),
            suggestions=(tuple(o for o in suggestions.for_team(team) if o.phrases)
                         if suggestions else ()),
            findings=tuple(f for f in findings if f.offering_id in {o.id for o in offerings}),
            destinations=where, skipped=skipped, catalog=catalog))
    return out
