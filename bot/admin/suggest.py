"""Suggested needs: real questions that are evidence for an offering the catalogue does not
yet answer outright with it, grouped, ranked and ready to add as needs.

    evidence for offering X, from the question log of the period
      picked      a "Did you mean…" where the asker clicked X
      helpful     served X (answered or picked) and rated Helpful
      requested   served X and its Request button clicked
      rephrased   not resolved (declined, no choice, "None of these", rated not helpful),
                  then the same person (by keyed hash, so only with CONCIERGE_USER_HASH_KEY)
                  asked again in other words within REPHRASE_WINDOW and was served X
                  without rating it not helpful
      never       a question rated "Not what I need" for X is no evidence for X
    ──▶ covered?  asked today, would it be answered outright with X? Then it is left out
    ──▶ grouped per offering by similarity (`bot.admin.gaps`), ranked by a count in which
        each question weighs 0.5 ** (age / HALF_LIFE)
    ──▶ a phrase per group: its commonest wording fit to be a need (two or more content
        words, not too long, nothing that looks like personal data)
    ──▶ what-if: the matcher rebuilt with the phrases added (`bot.matching.whatif`): the
        phrase and each wording of its group before and after, and every question answered
        outright with another offering today that would then be decided differently
    ──▶ a YAML snippet per offering and a patch (`bot.catalogue.needs_edit`), checked like
        `concierge check` on a copy of the knowledge directory

Nothing here writes to the knowledge directory: owners decide through their usual review.
Question texts are what people typed; user ids never appear (the log holds keyed hashes).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.admin.gaps import Need, group_needs
from bot.admin.reports import (
    Activity,
    AskedQuestion,
    OfferingRef,
    ReportView,
    Section,
    period_label,
)
from bot.catalogue.models import Catalog, Decision, DecisionKind, Offering
from bot.catalogue.needs_edit import EditPlan, Snippet, check_plan, plan_edits, shown_path
from bot.matching.matcher import Matcher
from bot.matching.text import content_words, fold, words
from bot.matching.whatif import rebuilt, with_needs

REPHRASE_WINDOW = timedelta(minutes=10)
HALF_LIFE = timedelta(days=14)
# What-if matchers are rebuilt once per offering: bounded so that a busy month on a large
# catalogue stays a matter of seconds. The rest is counted, and `--owner` narrows it.
MAX_OFFERINGS = 20
MAX_PER_OFFERING = 5
# Recent questions answered outright that are asked again today, to find the few where an
# offering with added needs is in the running (each is then asked of its what-if matcher):
# a thousand decisions is a few seconds in semantic mode.
MAX_PROBES = 1000
MAX_SIDE_EFFECTS = 5
MIN_CONTENT_WORDS = 2
MAX_PHRASE_CHARS = 160

EVIDENCE_LABELS = {
    "picked": "picked after “Did you mean…”",
    "helpful": "rated helpful",
    "requested": "Request clicked",
    "rephrased": "asked again in other words, then served",
}

# What a need must not carry: it ends up in a file many people read.
_PERSONAL = (
    (re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+"), "an email address"),
    (re.compile(r"(?i)\b(?:https?://|www\.)\S+"), "a link"),
    (re.compile(r"(?<![\w@])@[\w.-]+"), "a mention of someone"),
    (re.compile(r"\d(?:[\s()/.+-]?\d){5,}"), "a long number (phone, ticket or personnel "
                                            "number?)"),
    (re.compile(r"(?i)\b[A-Z]{2}\d{2}(?:\s?[A-Z0-9]{4}){3,}"), "an account number"),
)


def masked(text: str) -> str:
    """`text` with whatever looks like personal data replaced by `[…]`, for showing."""
    for pattern, _ in _PERSONAL:
        text = pattern.sub("[…]", text)
    return text


def unfit_phrase(text: str) -> str | None:
    """Why `text` should not become a need as it is, or None when it may."""
    for pattern, what in _PERSONAL:
        if pattern.search(text):
            return f"looks like it holds personal data ({what})"
    if len(content_words(text)) < MIN_CONTENT_WORDS:
        return "too short to be a need (a keyword, perhaps?)"
    if len(text) > MAX_PHRASE_CHARS:
        return f"longer than {MAX_PHRASE_CHARS} characters"
    return None


# --- evidence -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Clue:
    """One question that is evidence for one offering."""

    question_id: int
    text: str
    offering_id: str
    kind: str
    """picked, helpful, requested or rephrased (see `EVIDENCE_LABELS`)."""
    asked_at: datetime
    user_hash: str | None


def collect_clues(activity: Activity) -> list[Clue]:
    """Every (question, offering) the log gives evidence for, once each, strongest kind
    first (picked, helpful, requested, rephrased)."""
    helpful = {(r.question_id, r.offering_id) for r in activity.ratings
               if r.helpful and r.question_id is not None}
    unhelpful = {(r.question_id, r.offering_id) for r in activity.ratings
                 if not r.helpful and r.question_id is not None}
    requested = set(activity.requested)
    found: dict[tuple[int, str], Clue] = {}

    def add(q: AskedQuestion, offering_id: str, kind: str) -> None:
        if (q.id, offering_id) in unhelpful or (q.id, offering_id) in found:
            return
        found[(q.id, offering_id)] = Clue(q.id, q.text, offering_id, kind, q.asked_at,
                                          q.user_hash)

    for q in activity.questions:
        if q.decision == "clarify" and q.chosen_offering_id:
            add(q, q.chosen_offering_id, "picked")
    for q in activity.questions:
        served = q.served_offering
        if served and (q.id, served) in helpful:
            add(q, served, "helpful")
    for q in activity.questions:
        served = q.served_offering
        if served and (q.id, served) in requested:
            add(q, served, "requested")
    confirmed = set(found)
    for q, offering_id in _rephrased(activity.questions, confirmed, unhelpful):
        add(q, offering_id, "rephrased")
    return list(found.values())


def _rephrased(questions: Sequence[AskedQuestion], confirmed: set[tuple[int, str]],
               unhelpful: set[tuple[int, str]]) -> Iterable[tuple[AskedQuestion, str]]:
    """(an unresolved question, the offering that resolved its asker's next question).

    Resolved means confirmed by the asker (picked, rated helpful or Request clicked): an
    answer nobody reacted to may have been the wrong one, and a need learnt from it would
    send the next person there too.
    """
    by_person: dict[str, list[AskedQuestion]] = defaultdict(list)
    for q in questions:
        if q.user_hash:
            by_person[q.user_hash].append(q)
    for asked in by_person.values():
        asked.sort(key=lambda q: (q.asked_at, q.id))
        waiting: list[AskedQuestion] = []
        for q in asked:
            waiting = [w for w in waiting if q.asked_at - w.asked_at <= REPHRASE_WINDOW]
            served = q.served_offering
            if served and (q.id, served) in confirmed:
                same = _wording(q.text)
                yield from ((w, served) for w in waiting if _wording(w.text) != same)
                waiting = []
            elif served is None or (q.id, served) in unhelpful:
                waiting.append(q)  # declined, no choice, "None of these", not helpful


def _wording(text: str) -> str:
    """The words of `text`, as `bot.admin.gaps` compares wordings."""
    return " ".join(words(text)) or " ".join(fold(text).split())


# --- decisions, before and after ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    """A decision reduced to what the asker would see: answer X, a choice of X/Y, or none."""

    kind: str
    offerings: tuple[str, ...]

    @classmethod
    def of(cls, decision: Decision) -> Outcome:
        if decision.kind is DecisionKind.ANSWER and decision.offering is not None:
            return cls("answer", (decision.offering.id,))
        if decision.kind is DecisionKind.CLARIFY:
            return cls("clarify", tuple(o.id for o in decision.choices))
        return cls("none", ())

    def answers(self, offering_id: str) -> bool:
        return self.kind == "answer" and self.offerings == (offering_id,)

    def describe(self, catalog: Catalog) -> str:
        names = [OfferingRef.of(i, catalog).name for i in self.offerings]
        if self.kind == "answer":
            return f"answered with {names[0]}"
        if self.kind == "clarify":
            return "a choice of " + " / ".join(names)
        return "declined"

    def to_json(self) -> dict[str, Any]:
        return {"decision": self.kind, "offerings": list(self.offerings)}


@dataclass(frozen=True, slots=True)
class SideEffect:
    """A question answered outright with another offering today that the added needs would
    decide differently: the phrase may be too broad."""

    text: str
    before: Outcome
    after: Outcome


# --- the report ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Suggestion:
    """One group of alike questions for one offering, and the need proposed for it."""

    offering_id: str
    phrase: str | None
    """The proposed need; None when no wording is fit (see `held_back`)."""
    held_back: str | None
    count: int
    askers: int | None
    """Distinct people by keyed hash; None without hashes."""
    last_asked: datetime
    weight: float
    wordings: tuple[str, ...]
    """Every distinct wording of the group, commonest first."""
    kinds: tuple[tuple[str, int], ...]
    today: Outcome | None = None
    """What the phrase gets asked today."""
    with_it: Outcome | None = None
    """What the phrase would get with the proposed needs added."""
    wordings_answered: tuple[int, int] = (0, 0)
    """How many of `wordings` are answered outright with the offering (today, with it)."""

    def to_json(self) -> dict[str, Any]:
        return {"phrase": self.phrase, "held_back": self.held_back, "questions": self.count,
                "people": self.askers, "last_asked": self.last_asked.isoformat(),
                "weight": round(self.weight, 3), "wordings": list(self.wordings),
                "evidence": dict(self.kinds),
                "today": self.today.to_json() if self.today else None,
                "with_it": self.with_it.to_json() if self.with_it else None,
                "wordings_answered": {"today": self.wordings_answered[0],
                                      "with_it": self.wordings_answered[1],
                                      "of": len(self.wordings)}}


@dataclass(frozen=True, slots=True)
class OfferingSuggestions:
    offering: OfferingRef
    source: str | None
    suggestions: tuple[Suggestion, ...]
    side_effects: tuple[SideEffect, ...] = ()
    snippet: Snippet | None = None
    refused: str | None = None
    """Why no snippet could be made (the file could not be edited in place)."""

    @property
    def phrases(self) -> tuple[str, ...]:
        return tuple(s.phrase for s in self.suggestions if s.phrase is not None)

    @property
    def weight(self) -> float:
        return max((s.weight for s in self.suggestions), default=0.0)


@dataclass(frozen=True, slots=True)
class SuggestReport:
    days: int
    since: datetime
    clues: int
    """Questions that were evidence for some offering in the period."""
    covered: int
    """Of those, answered outright with their offering by today's catalogue (left out)."""
    offerings: tuple[OfferingSuggestions, ...]
    more: int = 0
    """Offerings with evidence left out past `MAX_OFFERINGS`."""
    plan: EditPlan | None = None
    catalog: Catalog | None = None

    def for_team(self, team: str) -> tuple[OfferingSuggestions, ...]:
        return tuple(o for o in self.offerings if o.offering.owner == team)

    def patch(self) -> str:
        """A unified diff adding every snippet's needs (empty when there is none)."""
        return self.plan.patch() if self.plan is not None else ""

    def to_json(self) -> dict[str, Any]:
        return {"report": "suggest", "days": self.days, "since": self.since.isoformat(),
                "evidence": self.clues, "covered": self.covered, "more_offerings": self.more,
                "offerings": [{
                    "id": o.offering.id, "name": o.offering.name, "owner": o.offering.owner,
                    "source": o.source,
                    "suggestions": [s.to_json() for s in o.suggestions],
                    "side_effects": [{"question": e.text, "today": e.before.to_json(),
                                      "with_it": e.after.to_json()} for e in o.side_effects],
                    "snippet": o.snippet.text() if o.snippet else None,
                    "refused": o.refused} for o in self.offerings]}

    def view(self) -> ReportView:
        catalog = self.catalog or Catalog(())
        sections = [section for o in self.offerings for section in offering_sections(o,
                                                                                     catalog)]
        summary = [f"{self.clues} questions were evidence for an offering; {self.covered} of "
                   "them are answered outright with it today and are left out."]
        if self.more:
            summary.append(f"{self.more} more offerings have evidence; narrow with --owner "
                           "TEAM to see them.")
        if any(o.snippet for o in self.offerings):
            summary.append("To apply them all: `concierge suggest --patch > needs.diff`, "
                           "review, `git apply needs.diff`, then `concierge check`. Nothing "
                           "is written to the knowledge files by Concierge itself.")
        if not self.offerings:
            summary.append("No suggestions: nothing in the period points to a need the "
                           "catalogue lacks.")
        return ReportView(f"Concierge suggested needs, {period_label(self.days, self.since)}",
                          (*sections, Section("Summary", tuple(summary))))


def offering_sections(o: OfferingSuggestions, catalog: Catalog, *,
                      snippet: bool = True) -> list[Section]:
    """An offering's suggestions as report sections: one of lines, then its YAML snippet."""
    lines: list[str] = []
    for s in o.suggestions:
        kinds = ", ".join(f"{EVIDENCE_LABELS.get(k, k)} {n}" for k, n in s.kinds)
        people = f"; {s.askers} {'person' if s.askers == 1 else 'people'}" if s.askers else ""
        shown = s.phrase if s.phrase is not None else s.wordings[0]
        lines.append(f"{s.count} × “{shown}” ({kinds}{people}; last asked "
                     f"{s.last_asked:%Y-%m-%d})")
        others = [w for w in s.wordings if w != shown][:3]
        if others:
            lines.append("    also asked as: " + " | ".join(f"“{w}”" for w in others))
        if s.phrase is None:
            lines.append(f"    held back: {s.held_back}")
            continue
        if s.today is not None and s.with_it is not None:
            before, after = s.wordings_answered
            lines.append(f"    today: {s.today.describe(catalog)} → with this need: "
                         f"{s.with_it.describe(catalog)}; {after} of {len(s.wordings)} "
                         f"wordings answered outright (today {before})")
            if not s.with_it.answers(s.offering_id):
                lines.append("    not enough on its own: other offerings' needs say much the "
                             "same; make this one's needs more specific")
    for effect in o.side_effects:
        lines.append(f"    would also change: “{effect.text}” ({effect.before.describe(catalog)}"
                     f" today → {effect.after.describe(catalog)})")
    where = f" at {o.source}" if o.source else ""
    sections = [Section(f"{o.offering.label()}{where}", tuple(lines))]
    if snippet and o.snippet is not None:
        sections.append(Section(f"YAML for {o.offering.id} (passes `concierge check`)",
                                tuple(o.snippet.text().splitlines()), preformatted=True))
    elif snippet and o.refused:
        sections.append(Section(f"YAML for {o.offering.id}", (
            f"No snippet: {o.refused}",)))
    return sections


# --- building it --------------------------------------------------------------------------


def suggest(activity: Activity, matcher: Matcher, *, team: str | None = None,
            now: datetime | None = None, max_offerings: int = MAX_OFFERINGS) -> SuggestReport:
    """The suggestions of `activity`'s period for `matcher`'s catalogue (one owner `team`,
    or all); the snippets are checked like `concierge check` before they are shown."""
    catalog = matcher.catalog
    now = now or activity.until
    clues = [c for c in collect_clues(activity) if _eligible(catalog.get(c.offering_id), team)]
    decisions = _Decisions(matcher)
    open_clues = [c for c in clues if not decisions.outcome(c.text).answers(c.offering_id)]
    by_offering: dict[str, list[Clue]] = defaultdict(list)
    for clue in open_clues:
        by_offering[clue.offering_id].append(clue)
    ranked = sorted(((oid, _suggestions(oid, cs, catalog, now))
                     for oid, cs in by_offering.items()),
                    key=lambda item: (-max(s.weight for s in item[1]), item[0]))
    chosen, more = ranked[:max_offerings], len(ranked) - min(len(ranked), max_offerings)
    probes = _probes(activity, decisions)
    results, plan = _with_snippets([_what_if(oid, suggestions, matcher, decisions, probes)
                                    for oid, suggestions in chosen], catalog)
    return SuggestReport(activity.days, activity.since, len(clues),
                         len(clues) - len(open_clues), tuple(results), more, plan, catalog)


def _eligible(offering: Offering | None, team: str | None) -> bool:
    if offering is None or offering.is_retired:
        return False
    return team is None or offering.owner.team.casefold() == team.casefold()


class _Decisions:
    """Today's outcome per distinct question text, decided once."""

    def __init__(self, matcher: Matcher) -> None:
        self.matcher = matcher
        self._seen: dict[str, Decision] = {}

    def decision(self, text: str) -> Decision:
        found = self._seen.get(text)
        if found is None:
            found = self._seen[text] = self.matcher.decide(text)
        return found

    def outcome(self, text: str) -> Outcome:
        return Outcome.of(self.decision(text))


def _suggestions(offering_id: str, clues: Sequence[Clue], catalog: Catalog,
                 now: datetime) -> list[Suggestion]:
    offering = catalog[offering_id]
    known = {_wording(n) for n in offering.needs}
    groups = group_needs(Need(c.text, c.kind, offering_id, ref=i) for i, c in enumerate(clues))
    out = []
    for group in groups:
        members = [clues[i] for i in group.refs]
        asked = Counter(c.text.strip() for c in members)
        raw = [w for w, _ in sorted(asked.items(), key=lambda kv: -kv[1])]
        fit = [(w, unfit_phrase(w)) for w in raw]
        phrase = next((w for w, why in fit if why is None and _wording(w) not in known), None)
        # Shown to admins and owners (perhaps in a channel): never a number or address.
        wordings = tuple(dict.fromkeys(masked(w) for w in raw))
        hashes = {c.user_hash for c in members if c.user_hash}
        out.append(Suggestion(
            offering_id=offering_id, phrase=phrase,
            held_back=None if phrase is not None else (fit[0][1] or "already a need"),
            count=len(members), askers=len(hashes) or None,
            last_asked=max(c.asked_at for c in members),
            weight=sum(0.5 ** ((now - c.asked_at) / HALF_LIFE) for c in members),
            wordings=wordings, kinds=tuple(Counter(c.kind for c in members).most_common())))
    out.sort(key=lambda s: (-s.weight, s.wordings[0].casefold()))
    return out[:MAX_PER_OFFERING]


def _probes(activity: Activity, decisions: _Decisions) -> list[tuple[str, Outcome]]:
    """Questions answered outright when asked and still today, most recent first: what an
    added need must not take away from another offering."""
    unhelpful = {r.question_id for r in activity.ratings if not r.helpful}
    texts = dict.fromkeys(q.text for q in sorted(activity.questions, key=lambda q: -q.id)
                          if q.decision == "answer" and q.id not in unhelpful)
    out = []
    for text in list(texts)[:MAX_PROBES]:
        outcome = decisions.outcome(text)
        if outcome.kind == "answer":
            out.append((text, outcome))
    return out


def _what_if(offering_id: str, suggestions: list[Suggestion], matcher: Matcher,
             decisions: _Decisions,
             probes: Sequence[tuple[str, Outcome]]) -> OfferingSuggestions:
    catalog = matcher.catalog
    ref = OfferingRef.of(offering_id, catalog)
    found = catalog[offering_id].source
    source = f"{shown_path(found.path, catalog.root)}:{found.line}" if found else None
    phrases = [s.phrase for s in suggestions if s.phrase is not None]
    if not phrases:
        return OfferingSuggestions(ref, source, tuple(suggestions))
    after = rebuilt(matcher, with_needs(catalog, {offering_id: phrases}))
    judged = []
    for s in suggestions:
        if s.phrase is None:
            judged.append(s)
            continue
        before_count = sum(decisions.outcome(w).answers(offering_id) for w in s.wordings)
        after_count = sum(Outcome.of(after.decide(w)).answers(offering_id)
                          for w in s.wordings)
        judged.append(Suggestion(
            s.offering_id, s.phrase, None, s.count, s.askers, s.last_asked, s.weight,
            s.wordings, s.kinds, decisions.outcome(s.phrase), Outcome.of(after.decide(s.phrase)),
            (before_count, after_count)))
    effects: list[SideEffect] = []
    for text, before in probes:
        if before.answers(offering_id) or offering_id not in {
                c.offering.id for c in decisions.decision(text).candidates}:
            continue  # only questions where the offering is in the running can change
        outcome = Outcome.of(after.decide(text))
        if outcome != before:
            effects.append(SideEffect(text, before, outcome))
            if len(effects) == MAX_SIDE_EFFECTS:
                break
    return OfferingSuggestions(ref, source, tuple(judged), tuple(effects))


def _with_snippets(results: list[OfferingSuggestions],
                   catalog: Catalog) -> tuple[list[OfferingSuggestions], EditPlan | None]:
    """Each offering's snippet, from one plan for all of them; the plan is checked like
    `concierge check` on a copy, and a plan that would not load is never handed out."""
    plan = plan_edits(catalog, {o.offering.id: o.phrases for o in results if o.phrases})
    refused = {e.offering: str(e) for e in plan.refused}
    if plan.files:
        try:
            report = check_plan(catalog, plan)
            problems = [p.render() for p in report.errors[:3]] if report.catalog is None else []
        except OSError as exc:  # the copy to check it on could not be made
            problems = [f"could not check the edited files ({exc})"]
        if problems:  # never hand out a patch that would not load
            why = "the edited files would not pass `concierge check`: " + "; ".join(problems)
            refused |= {s.offering_id: why for s in plan.snippets}
            plan = EditPlan((), (), plan.refused, plan.root)
    snippets = {s.offering_id: s for s in plan.snippets}
    out = [OfferingSuggestions(o.offering, o.source, o.suggestions, o.side_effects,
                               snippets.get(o.offering.id), refused.get(o.offering.id))
           for o in results]
    return out, (plan if plan.files else None)
