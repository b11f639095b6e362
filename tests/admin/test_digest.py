"""A team's digest from a seeded log (SQLite and PostgreSQL): per-team numbers, the gaps
and suggestions that are theirs, quality findings through the hook, never empty, and one
Slack message within its limits however big the team."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from dbfixtures import db_url, postgres_url, sqlite_url
from seeding import Seeded, seed_learning, write_learning_catalogue

from bot.admin.digest import Finding, TeamDigest, build_digests, quality_findings
from bot.admin.reports import load_activity
from bot.admin.suggest import suggest
from bot.catalogue.loader import load_catalog
from bot.matching.engine import build_matcher
from bot.matching.matcher import Matcher
from bot.slack.digests import digest_message
from bot.slack.replies import MESSAGE_BLOCK_LIMIT
from bot.store.database import Store

__all__ = ["db_url", "postgres_url", "sqlite_url"]


@pytest.fixture
def matcher(tmp_path: Path) -> Matcher:
    return build_matcher(load_catalog(write_learning_catalogue(tmp_path / "knowledge")),
                         "lexical")


@pytest.fixture
def seeded(db_url: str, matcher: Matcher) -> Iterator[tuple[Store, Seeded]]:
    store = Store(db_url)
    yield store, seed_learning(store, matcher)
    store.close()


def digests(store: Store, seeded: Seeded, matcher: Matcher,
            findings: tuple[Finding, ...] = ()) -> dict[str, TeamDigest]:
    week = load_activity(store, 7, now=seeded.now)
    learnt = suggest(load_activity(store, 30, now=seeded.now), matcher)
    return {d.team: d for d in build_digests(week, matcher.catalog, suggestions=learnt,
                                             findings=findings)}


def test_each_team_sees_its_own_numbers_gaps_and_suggestions(
        seeded: tuple[Store, Seeded], matcher: Matcher) -> None:
    store, log = seeded
    teams = digests(store, log, matcher)
    assert sorted(teams) == ["Collaboration", "Network Team", "Workplace Services"]
    workplace = teams["Workplace Services"]
    lines = {o.id: (o.answered, o.picked, o.helpful, o.not_helpful, o.request_clicks)
             for o in workplace.offerings}
    assert lines == {"laptop-repair": (0, 4, 0, 0, 0), "standard-laptop": (1, 0, 0, 0, 1)}
    assert [g.examples[0] for g in workplace.gaps] == [
        "I need a company car for customer visits"]
    assert [o.phrases for o in workplace.suggestions] == [("my laptop screen is cracked",)]
    # The canteen gap is near nothing: nobody's digest carries it.
    assert not any("canteen" in str(t.to_json()) for t in teams.values())
    network = teams["Network Team"]
    assert [o.phrases for o in network.suggestions] == [("cannot open the wiki from home",)]
    assert not network.empty


def test_quality_findings_fill_their_section_through_the_hook(
        seeded: tuple[Store, Seeded], matcher: Matcher) -> None:
    store, log = seeded
    # The hook reads the catalogue's quality report: one finding per offering it names.
    from_report = quality_findings(matcher)
    assert from_report and all(f.offering_id in matcher.catalog for f in from_report)
    assert all(any(verb in f.text for verb in ("Add", "Say", "Keep")) for f in from_report), (
        "each says what to do")
    teams = digests(store, log, matcher, findings=(
        Finding("vpn", "need 2 is answered with Team site when asked as a question"),
        Finding("team-site", "no keywords")))
    text = teams["Network Team"].view().text()
    assert "Quality findings\n  VPN and remote access: need 2 is answered with Team site" in text
    assert "no keywords" not in text  # another team's finding
    assert "Quality findings" not in teams["Workplace Services"].view().text()


def test_a_team_with_nothing_to_say_is_empty(seeded: tuple[Store, Seeded],
                                             matcher: Matcher) -> None:
    store, log = seeded
    # A week a year later: nothing asked, nothing learnt, no findings.
    week = load_activity(store, 7, now=log.now.replace(year=log.now.year + 1))
    teams = build_digests(week, matcher.catalog)
    assert len(teams) == 3 and all(t.empty for t in teams)


def test_a_big_team_is_still_one_message_within_slacks_limits(
        seeded: tuple[Store, Seeded], matcher: Matcher) -> None:
    store, log = seeded
    team = digests(store, log, matcher)["Workplace Services"]
    many = tuple(Finding("laptop-repair", f"finding number {n} " + "x" * 2900)
                 for n in range(200))
    big = TeamDigest(team.team, team.since, team.until, team.offerings, team.gaps,
                     team.suggestions, many, team.destinations, team.skipped, team.catalog)
    message = digest_message(big)
    assert len(message.blocks) <= MESSAGE_BLOCK_LIMIT
    assert "… and 192 more: `concierge check --quality`" in str(message.payload())
    assert all(len(b.to_dict().get("text", {}).get("text", "")) <= 3000 for b in message.blocks)
