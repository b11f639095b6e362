"""The quality report for catalogue owners: one small catalogue per finding, through the
real loader (so each finding points at its file and line), in lexical mode (no model)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bot.catalogue.loader import load_catalog
from bot.catalogue.models import DecisionKind
from bot.cli.main import main
from bot.matching.engine import build_matcher
from bot.matching.matcher import Matcher
from bot.matching.quality import FindingKind, QualityReport, quality_report
from bot.matching.thresholds import Thresholds


def make_offering(oid: str, **fields: Any) -> dict[str, Any]:
    return {"id": oid, "name": oid, "summary": f"What {oid} gives you.", "kind": "service",
            "owner": {"team": "IT"}, "request": {"url": f"https://it.example.test/{oid}"},
            **fields}


# Offerings each finding leaves alone: clearly apart, several needs that back each other up.
BACKDROP = [
    make_offering("printer-help", name="Printer help", summary="Fix a printer that jams.",
                  needs=["the printer is jammed", "the printer jams all the time",
                         "paper jam in the printer again", "printer keeps jamming paper"]),
    make_offering("password-reset", name="Password reset", summary="A new password.",
                  needs=["I forgot my password", "forgot the password to log in",
                         "reset my forgotten password", "password forgotten after holiday"]),
    make_offering("guest-wifi", name="Guest Wi-Fi", summary="Wi-Fi for visitors.",
                  needs=["wifi for a visitor", "a visitor needs the wifi",
                         "guest wifi code for a visitor", "wifi access for our guests"]),
]


def report_for(kdir: Path, write_catalogue: Any, *offerings: dict[str, Any]) -> QualityReport:
    path = write_catalogue([*BACKDROP, *offerings])
    assert path.exists()
    return quality_report(build_matcher(load_catalog(kdir), "lexical"))


def kinds(report: QualityReport) -> dict[FindingKind, list[tuple[str, ...]]]:
    out: dict[FindingKind, list[tuple[str, ...]]] = {}
    for f in report.findings:
        out.setdefault(f.kind, []).append(f.offerings)
    return out


def test_a_catalogue_with_nothing_to_improve_has_no_findings(kdir: Path, write_catalogue) -> None:
    report = report_for(kdir, write_catalogue)
    assert report.findings == ()
    assert report.needs_found == (12, 12)
    assert all(r.found == r.needs == 4 for r in report.recall)


def test_an_offering_with_fewer_than_three_needs(kdir: Path, write_catalogue) -> None:
    report = report_for(kdir, write_catalogue, make_offering(
        "scanner", name="Scanner", summary="Scan to email.", needs=["scan a document to email"]))
    [finding] = [f for f in report.findings if f.kind is FindingKind.FEW_NEEDS]
    assert finding.offerings == ("scanner",)
    assert "Scanner has 1 need" in finding.message and "Add at least 2 more" in finding.action
    assert finding.source is not None and finding.source.path.endswith("catalogue.yaml")
    assert finding.render().startswith(f"{finding.source.path}:{finding.source.line}: needs: "
                                       "warning: Scanner has 1 need")


def test_a_need_copied_into_another_offering_is_named_and_answered_with_both(
        kdir: Path, write_catalogue) -> None:
    phones = [make_offering(oid, name=name, summary=f"A {name.lower()}.",
                            needs=["I need a phone for work", f"a {word} for my job",
                                   f"my {word} broke", f"new {word} please"])
              for oid, name, word in (("mobile-phone", "Mobile phone", "smartphone"),
                                      ("desk-phone", "Desk phone", "handset"))]
    report = report_for(kdir, write_catalogue, *phones)
    [finding] = [f for f in report.findings if f.kind is FindingKind.DUPLICATE_NEED]
    assert finding.offerings == ("mobile-phone", "desk-phone")
    assert finding.needs == ("I need a phone for work",)
    assert "reword each copy" in finding.action
    # Lines that would answer anything that leads at all: the copy still gets both as choices.
    eager = Thresholds(answer=0.1, margin=0.0, decline=0.05, clarify_window=0.0)
    decision = Matcher(load_catalog(kdir), thresholds=eager).decide("i need a PHONE for work!")
    assert decision.kind is DecisionKind.CLARIFY
    assert {o.id for o in decision.choices} == {"mobile-phone", "desk-phone"}
    assert 'both list the need "I need a phone for work": which one do you mean?' in (
        decision.why)


def test_offerings_whose_needs_find_each_other_are_a_confused_pair(
        kdir: Path, write_catalogue) -> None:
    report = report_for(kdir, write_catalogue,
                        make_offering("vpn", name="VPN", summary="Remote network access.",
                                      needs=["I want to work from home",
                                             "connect to the office from home",
                                             "the office from a hotel"]),
                        make_offering("remote-desktop", name="Remote desktop",
                                      summary="Your office PC from anywhere.",
                                      needs=["work from home on my office pc",
                                             "connect from home to my office desk",
                                             "my office from a hotel room"]))
    [finding] = [f for f in report.findings if f.kind is FindingKind.CONFUSED_PAIR]
    assert set(finding.offerings) == {"vpn", "remote-desktop"}
    assert "are confused" in finding.message and "says how it differs from" in finding.action
    assert finding.needs, "it quotes the needs that collide"


def test_an_offering_its_own_needs_do_not_find_is_weak_and_its_needs_loose(
        kdir: Path, write_catalogue) -> None:
    report = report_for(kdir, write_catalogue, make_offering(
        "badge", name="Access badge", summary="Building access.",
        needs=["lost my access card", "the door will not open for me",
               "visitor pass for tomorrow's guest"]))
    found = kinds(report)
    assert ("badge",) in found[FindingKind.WEAK_OFFERING]
    assert ("badge",) in found[FindingKind.LOOSE_NEED]
    [weak] = [f for f in report.findings if f.kind is FindingKind.WEAK_OFFERING]
    assert weak.message.startswith("Only ") and "of 3 needs of Access badge find it" in (
        weak.message)
    [loose] = [f for f in report.findings if f.kind is FindingKind.LOOSE_NEED]
    assert "below the decline line" in loose.message and "another need" in loose.action
    recall = {r.offering: r for r in report.recall}
    assert recall["badge"].found < 2 and recall["printer-help"].found == 4


def test_check_quality_prints_the_report_and_strict_fails_on_findings(
        kdir: Path, write_catalogue, capsys: pytest.CaptureFixture[str]) -> None:
    write_catalogue([*BACKDROP, make_offering("scanner", name="Scanner",
                                              needs=["scan a document to email"])])
    code = main(["check", "--quality", "--knowledge", str(kdir), "--matcher", "lexical"])
    out = capsys.readouterr().out
    assert code == 0, "findings are warnings"
    assert "decision rule: default" in out and "Scanner has 1 need" in out
    assert out.splitlines()[-1].endswith("quality findings")
    assert main(["check", "--quality", "--strict", "--knowledge", str(kdir),
                 "--matcher", "lexical"]) == 1
    capsys.readouterr()
    assert main(["check", "--quality", "--json", "--knowledge", str(kdir),
                 "--matcher", "lexical"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is True and data["quality"]["counts"]["few-needs"] == 1
    [finding] = [f for f in data["quality"]["findings"] if f["kind"] == "few-needs"]
    assert finding["offerings"] == ["scanner"]
    assert finding["path"].endswith("catalogue.yaml") and finding["line"] > 1
    assert {o["id"] for o in data["quality"]["offerings"]} >= {"scanner", "printer-help"}


def test_check_strict_without_quality_fails_on_warnings_only_when_asked(
        kdir: Path, write_catalogue, write_text) -> None:
    write_catalogue(BACKDROP)
    write_text("empty.yaml", "")
    assert main(["check", "--knowledge", str(kdir)]) == 0
    assert main(["check", "--strict", "--knowledge", str(kdir)]) == 1
