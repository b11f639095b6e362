"""The admin reports: stats, gaps and owners, computed from the question log.

Each report is a frozen dataclass built from the rows of one period (`load_activity`)
and the live catalogue; `to_json()` gives its data for `--json`, `view()` a
title and sections of plain-text lines that the CLI prints and Slack shows
(escaped, split to fit) alike, so both always say the same thing.

Aggregation happens in Python over the period's rows rather than in SQL, so it is
the same code on SQLite and PostgreSQL (the median and percentiles in particular).
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from bot.admin.gaps import Need, group_needs
from bot.admin.request_log import RequestCounts, RequestSummary, count_requests, load_requests
from bot.catalogue.models import Catalog, Offering
from bot.store.database import Store
from bot.store.tables import Feedback, Question, RequestClick, utcnow
from bot.wording import plural, printable

DEFAULT_DAYS = 30
MAX_DAYS = 3650
TOP_OFFERINGS = 10
MOST_UNHELPFUL = 10


# --- reading the log ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AskedQuestion:
    id: int
    asked_at: datetime
    surface: str
    user_hash: str | None
    text: str
    decision: str
    offering_id: str | None
    nearest_offering_id: str | None
    chosen_offering_id: str | None
    none_fitted: bool
    latency_ms: float

    @property
    def served_offering(self) -> str | None:
        """The offering whose card the asker got: the answer, or the choice they clicked."""
        return self.offering_id or self.chosen_offering_id


@dataclass(frozen=True, slots=True)
class Rating:
    question_id: int | None
    offering_id: str
    helpful: bool
    given_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Activity:
    """Everything recorded in one period."""

    days: int
    since: datetime
    questions: tuple[AskedQuestion, ...]
    ratings: tuple[Rating, ...]
    request_clicks: tuple[str, ...]
    """The offering id of each Request click."""
    requested: tuple[tuple[int, str], ...] = ()
    """(question id, offering id) of each Request click tied to a recorded question."""
    admin_questions: int = 0
    """Questions admins asked in the period: left out of everything above."""
    requests: tuple[RequestSummary, ...] = ()
    """Requests made in Slack, oldest first."""

    @property
    def until(self) -> datetime:
        return self.since + timedelta(days=self.days)


def utc(value: datetime) -> datetime:
    """A stored time as an aware UTC datetime (SQLite hands back naive ones)."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def load_activity(store: Store, days: int = DEFAULT_DAYS,
                  now: datetime | None = None) -> Activity:
    """The rows of the `days` before `now` (default: the current time)."""
    until = now or utcnow()
    since = until - timedelta(days=days)
    with store.engine.connect() as conn:
        rows = conn.execute(select(Question).where(Question.asked_at >= since,
                                                   Question.asked_at <= until)
                            .order_by(Question.id)).all()
        feedback_rows = conn.execute(select(Feedback).where(
            Feedback.given_at >= since, Feedback.given_at <= until).order_by(Feedback.id)).all()
        click_rows = conn.execute(
            select(RequestClick.offering_id, RequestClick.question_id).where(
                RequestClick.clicked_at >= since, RequestClick.clicked_at <= until)
            .order_by(RequestClick.id)).all()
    # Admins trying Concierge out (or slipping on a subcommand) are not the employees the
    # reports are about: their questions, and what they clicked on them, are counted apart.
    by_admin = {int(r.id) for r in rows if r.by_admin}
    questions = tuple(AskedQuestion(
        id=int(r.id), asked_at=utc(r.asked_at), surface=r.surface, user_hash=r.user_hash,
        text=r.text, decision=r.decision, offering_id=r.offering_id,
        nearest_offering_id=r.nearest_offering_id,
        chosen_offering_id=r.chosen_offering_id, none_fitted=bool(r.none_fitted),
        latency_ms=float(r.latency_ms),
    ) for r in rows if not r.by_admin)
    ratings = tuple(Rating(r.question_id, r.offering_id, bool(r.helpful), utc(r.given_at))
                    for r in feedback_rows if r.question_id not in by_admin)
    clicks = tuple(str(r.offering_id) for r in click_rows if r.question_id not in by_admin)
    requested = tuple((int(r.question_id), str(r.offering_id)) for r in click_rows
                      if r.question_id is not None and r.question_id not in by_admin)
    return Activity(days, since, questions, ratings, clicks, requested,
                    admin_questions=len(by_admin), requests=load_requests(store, since, until))


# --- presentation shared by the CLI and Slack ---------------------------------------------


@dataclass(frozen=True, slots=True)
class Section:
    heading: str
    lines: tuple[str, ...]
    preformatted: bool = False
    """Lines to show exactly as they are (YAML to paste): a code block in Slack, not
    indented on the terminal."""


@dataclass(frozen=True, slots=True)
class ReportView:
    """A report as a title and sections of plain-text lines (nothing escaped yet)."""

    title: str
    sections: tuple[Section, ...]

    def text(self) -> str:
        """For a terminal: control characters in what people typed (an escape sequence in
        a question, a newline) are shown escaped, never sent to the terminal."""
        parts = [printable(self.title)]
        for section in self.sections:
            parts.append("")
            parts.append(printable(section.heading))
            indent = "" if section.preformatted else "  "
            parts += [f"{indent}{printable(line)}" for line in section.lines]
        return "\n".join(parts)


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.0%}" if whole else "-"


def period_label(days: int, since: datetime) -> str:
    return f"last {days} day{'s' if days != 1 else ''} (since {since:%Y-%m-%d %H:%M} UTC)"


@dataclass(frozen=True, slots=True)
class OfferingRef:
    """An offering as the reports name it: id, name and owner, when still in the catalogue."""

    id: str
    name: str
    owner: str | None
    contact: str | None

    @classmethod
    def of(cls, offering_id: str, catalog: Catalog) -> OfferingRef:
        offering = catalog.get(offering_id)
        if offering is None:
            return cls(offering_id, offering_id, None, None)
        return cls(offering.id, offering.name, offering.owner.team, offering.owner.contact)

    def label(self) -> str:
        if self.owner is None:
            return f"{self.id} (no longer in the catalogue)"
        contact = f", {self.contact}" if self.contact else ""
        return f"{self.name} [{self.id}] (owner: {self.owner}{contact})"


# --- stats --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OfferingCount:
    offering: OfferingRef
    count: int


def percentile(values: Sequence[float], share: float) -> float | None:
    """Nearest-rank percentile: the smallest value with `share` of all values at or below."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


@dataclass(frozen=True, slots=True)
class StatsReport:
    days: int
    since: datetime
    questions: int
    askers: int | None
    """Distinct people (by keyed hash); None when no user hash key is configured."""
    answered: int
    clarified: int
    clarified_chosen: int
    declined: int
    surfaces: tuple[tuple[str, int], ...]
    helpful: int
    not_helpful: int
    request_clicks: int
    top_offerings: tuple[OfferingCount, ...]
    latency_median_ms: float | None
    latency_p95_ms: float | None
    requests: RequestCounts
    admin_questions: int = 0
    """Asked by admins: left out of every number above."""

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["since"] = self.since.isoformat()
        data["surfaces"] = dict(self.surfaces)
        data["top_offerings"] = [{"id": t.offering.id, "name": t.offering.name,
                                  "questions": t.count} for t in self.top_offerings]
        return {"report": "stats", **data}

    def view(self) -> ReportView:
        n = self.questions
        people = f" from {plural(self.askers, 'person', 'people')}" if (
            self.askers is not None) else ""
        rated = self.helpful + self.not_helpful
        overview = [
            f"Questions: {n}{people}",
            f"Answered: {self.answered} ({_share(self.answered, n)})",
            f"Clarified: {self.clarified} ({_share(self.clarified, n)}); a choice was picked "
            f"in {self.clarified_chosen}",
            f"Declined: {self.declined} ({_share(self.declined, n)})",
            "By surface: " + (", ".join(f"{s} {c}" for s, c in self.surfaces) or "-"),
            f"Feedback: {self.helpful} helpful ({_share(self.helpful, rated)}), "
            f"{self.not_helpful} not helpful ({_share(self.not_helpful, rated)})",
            f"Request button clicks: {self.request_clicks}",
            self.requests.line(),
            "Latency: " + (f"median {self.latency_median_ms:.0f} ms, p95 "
                           f"{self.latency_p95_ms:.0f} ms"
                           if self.latency_median_ms is not None
                           and self.latency_p95_ms is not None else "-"),
        ]
        if self.admin_questions:
            overview.append(f"Left out: {plural(self.admin_questions, 'question')} asked by "
                            "admins")
        top = [f"{t.count:>5}  {t.offering.label()}" for t in self.top_offerings]
        return ReportView(f"Concierge stats, {period_label(self.days, self.since)}", (
            Section("Overview", tuple(overview)),
            Section("Top offerings (answered or picked)",
                    tuple(top) or ("No offering was served in this period.",)),
        ))


def stats_report(activity: Activity, catalog: Catalog) -> StatsReport:
    qs = activity.questions
    decisions = Counter(q.decision for q in qs)
    served = Counter(q.served_offering for q in qs if q.served_offering)
    hashes = {q.user_hash for q in qs if q.user_hash}
    latencies = [q.latency_ms for q in qs]
    return StatsReport(
        days=activity.days, since=activity.since, questions=len(qs),
        askers=len(hashes) if hashes or not qs else None,
        answered=decisions["answer"], clarified=decisions["clarify"],
        clarified_chosen=sum(1 for q in qs if q.decision == "clarify"
                             and q.chosen_offering_id),
        declined=decisions["none"],
        surfaces=tuple(Counter(q.surface for q in qs).most_common()),
        helpful=sum(1 for r in activity.ratings if r.helpful),
        not_helpful=sum(1 for r in activity.ratings if not r.helpful),
        request_clicks=len(activity.request_clicks),
        top_offerings=tuple(OfferingCount(OfferingRef.of(i, catalog), c)
                            for i, c in served.most_common(TOP_OFFERINGS)),
        latency_median_ms=statistics.median(latencies) if latencies else None,
        latency_p95_ms=percentile(latencies, 0.95),
        requests=count_requests(activity.requests),
        admin_questions=activity.admin_questions,
    )


# --- gaps ---------------------------------------------------------------------------------

REASON_LABELS = {"declined": "declined", "abandoned": "no choice picked",
                 "none_fitted": "none of the choices fitted", "not_helpful": "rated not helpful"}


@dataclass(frozen=True, slots=True)
class Gap:
    count: int
    examples: tuple[str, ...]
    reasons: tuple[tuple[str, int], ...]
    nearest: OfferingRef | None


@dataclass(frozen=True, slots=True)
class GapsReport:
    days: int
    since: datetime
    unmet: int
    gaps: tuple[Gap, ...]

    def to_json(self) -> dict[str, Any]:
        return {"report": "gaps", "days": self.days, "since": self.since.isoformat(),
                "unmet": self.unmet,
                "gaps": [{"count": g.count, "examples": list(g.examples),
                          "reasons": dict(g.reasons),
                          "nearest": asdict(g.nearest) if g.nearest else None}
                         for g in self.gaps]}

    def view(self) -> ReportView:
        lines = []
        for g in self.gaps:
            why = ", ".join(f"{REASON_LABELS.get(r, r)} {c}" for r, c in g.reasons)
            examples = " | ".join(f"“{e}”" for e in g.examples)
            near = f"; nearest: {g.nearest.label()}" if g.nearest else "; nothing near"
            lines.append(f"{g.count:>4} × {examples} ({why}{near})")
        heading = (f"{self.unmet} unmet needs in {len(self.gaps)} groups, most frequent first"
                   if self.gaps else "Unmet needs")
        return ReportView(f"Concierge gaps, {period_label(self.days, self.since)}", (
            Section(heading, tuple(lines) or ("No unmet needs in this period.",)),
        ))


def unmet_needs(activity: Activity) -> list[Need]:
    """Declined, clarified-then-abandoned, and rated-not-helpful questions, once each."""
    by_id = {q.id: q for q in activity.questions}
    needs: dict[int, Need] = {}
    for q in activity.questions:
        if q.decision == "none":
            needs[q.id] = Need(q.text, "declined", q.nearest_offering_id)
        elif q.decision == "clarify" and not q.chosen_offering_id:
            reason = "none_fitted" if q.none_fitted else "abandoned"
            needs[q.id] = Need(q.text, reason, q.nearest_offering_id)
    for r in activity.ratings:
        asked = by_id.get(r.question_id) if r.question_id is not None else None
        if not r.helpful and asked is not None and asked.id not in needs:
            needs[asked.id] = Need(asked.text, "not_helpful", r.offering_id)
    return list(needs.values())


def gaps_report(activity: Activity, catalog: Catalog) -> GapsReport:
    needs = unmet_needs(activity)
    groups = group_needs(needs)
    return GapsReport(activity.days, activity.since, len(needs), tuple(
        Gap(g.count, g.examples, g.reasons,
            OfferingRef.of(g.nearest_offering_id, catalog) if g.nearest_offering_id else None)
        for g in groups))


# --- owners -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OfferingActivity:
    id: str
    name: str
    lifecycle: str
    questions: int
    helpful: int
    not_helpful: int
    request_clicks: int


@dataclass(frozen=True, slots=True)
class TeamActivity:
    team: str
    contacts: tuple[str, ...]
    offerings: tuple[OfferingActivity, ...]


@dataclass(frozen=True, slots=True)
class OwnersReport:
    days: int
    since: datetime
    teams: tuple[TeamActivity, ...]
    unasked: tuple[OfferingActivity, ...]
    """Live offerings no question was served with in the period."""
    most_unhelpful: tuple[OfferingActivity, ...]

    def to_json(self) -> dict[str, Any]:
        return {"report": "owners", "days": self.days, "since": self.since.isoformat(),
                "teams": [asdict(t) for t in self.teams],
                "unasked": [o.id for o in self.unasked],
                "most_unhelpful": [asdict(o) for o in self.most_unhelpful]}

    def view(self) -> ReportView:
        sections = []
        for t in self.teams:
            contacts = f" ({', '.join(t.contacts)})" if t.contacts else ""
            lines = tuple(
                f"{o.name} [{o.id}]{'' if o.lifecycle == 'live' else f' ({o.lifecycle})'}: "
                f"{o.questions} questions, {o.helpful} helpful, {o.not_helpful} not helpful, "
                f"{o.request_clicks} request clicks" for o in t.offerings)
            sections.append(Section(f"{t.team}{contacts}: {len(t.offerings)} offerings", lines))
        sections.append(Section(
            f"No question in the period ({len(self.unasked)})",
            tuple(f"{o.name} [{o.id}]" for o in self.unasked) or ("Every offering was asked "
                                                                  "for.",)))
        sections.append(Section("Rated not helpful most often", tuple(
            f"{o.not_helpful:>4}  {o.name} [{o.id}] (of {o.not_helpful + o.helpful} ratings)"
            for o in self.most_unhelpful) or ("No offering was rated not helpful.",)))
        return ReportView(f"Concierge owners, {period_label(self.days, self.since)}",
                          tuple(sections))


def owners_report(activity: Activity, catalog: Catalog) -> OwnersReport:
    served = Counter(q.served_offering for q in activity.questions if q.served_offering)
    helpful = Counter(r.offering_id for r in activity.ratings if r.helpful)
    unhelpful = Counter(r.offering_id for r in activity.ratings if not r.helpful)
    clicks = Counter(activity.request_clicks)

    def of(o: Offering) -> OfferingActivity:
        return OfferingActivity(o.id, o.name, o.lifecycle.value, served[o.id], helpful[o.id],
                                unhelpful[o.id], clicks[o.id])

    teams: dict[str, list[Offering]] = {}
    for o in catalog:
        teams.setdefault(o.owner.team, []).append(o)
    team_lines = tuple(
        TeamActivity(team, tuple(dict.fromkeys(o.owner.contact for o in offs
                                               if o.owner.contact)),
                     tuple(of(o) for o in sorted(offs, key=lambda o: (-served[o.id], o.id))))
        for team, offs in sorted(teams.items(), key=lambda kv: kv[0].casefold()))
    everything = [of(o) for o in catalog]
    unasked = tuple(a for a, o in zip(everything, catalog, strict=True)
                    if not o.is_retired and a.questions == 0)
    worst = sorted((a for a in everything if a.not_helpful),
                   key=lambda a: (-a.not_helpful, a.id))[:MOST_UNHELPFUL]
    return OwnersReport(activity.days, activity.since, team_lines, unasked, tuple(worst))


# --- requests -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RequestsReport:
    days: int
    since: datetime
    counts: RequestCounts
    requests: tuple[RequestSummary, ...]
    """Newest first."""

    def to_json(self) -> dict[str, Any]:
        return {"report": "requests", "days": self.days, "since": self.since.isoformat(),
                "counts": asdict(self.counts),
                "requests": [r.to_json() for r in self.requests]}

    def view(self) -> ReportView:
        lines = []
        for r in self.requests:
            who = f"{r.requester_name} ({r.requester_id})" if r.requester_name else (
                r.requester_id)
            status = r.status if r.status_by is None else f"{r.status} by {r.status_by}"
            if r.status_reason:
                status += f": {r.status_reason}"
            where = "; ".join(d.describe() for d in r.deliveries)
            lines.append(f"#{r.id} {r.submitted_at:%Y-%m-%d %H:%M} {r.offering_name} "
                         f"[{r.offering_id}] from {who}: {status}. {r.delivery.upper()}: "
                         f"{where}")
        undeliverable = [f"#{r.id} {r.offering_name}: " + "; ".join(
            d.describe() for d in r.deliveries if d.state == "failed")
            for r in self.requests if r.delivery == "failed"]
        sections = [Section(self.counts.line(),
                            tuple(lines) or ("No request was made in this period.",))]
        if undeliverable:
            sections.insert(0, Section(f"Undeliverable ({len(undeliverable)}): the requester "
                                       "and the admins were told", tuple(undeliverable)))
        return ReportView(f"Concierge requests, {period_label(self.days, self.since)}",
                          tuple(sections))


def requests_report(activity: Activity, catalog: Catalog) -> RequestsReport:
    return RequestsReport(activity.days, activity.since, count_requests(activity.requests),
                          tuple(reversed(activity.requests)))
