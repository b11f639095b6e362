"""Golden-question files and the rates computed from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.catalogue.loader import load_catalog
from bot.catalogue.models import Catalog, DecisionKind
from bot.errors import KnowledgeError
from bot.matching.evaluate import Case, evaluate, load_cases
from bot.matching.matcher import Matcher


@pytest.fixture
def tiny(kdir: Path, write_catalogue, new_offering) -> Catalog:
    write_catalogue([
        new_offering("password-reset", name="Password reset",
                     needs=["I forgot my password"], keywords=["password"]),
        new_offering("wifi-help", name="Wi-Fi help",
                     needs=["my wireless keeps dropping"], keywords=["wifi"]),
        new_offering("mobile-phone", name="Mobile phone",
                     needs=["I need a phone for work"], kind="product"),
        new_offering("desk-phone", name="Desk phone",
                     needs=["I need a phone for work"], kind="product"),
    ])
    return load_catalog(kdir)


def write_cases(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cases.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_load_cases_reads_questions_and_lines(tmp_path: Path, tiny: Catalog) -> None:
    path = write_cases(tmp_path, "# golden\n"
                                 "- q: I forgot my password\n"
                                 "  expect: [password-reset]\n"
                                 "- q: book a table\n"
                                 "  expect: []\n"
                                 "- q: no expect means decline\n"
                                 "  note: fine\n")
    cases = load_cases(path, tiny)
    assert cases == [Case("I forgot my password", frozenset({"password-reset"}), 2),
                     Case("book a table", frozenset(), 4),
                     Case("no expect means decline", frozenset(), 6)]
    assert [c.in_scope for c in cases] == [True, False, False]


@pytest.mark.parametrize("text", ["q: not a list\n", "just text\n", ""])
def test_load_cases_must_be_a_list(tmp_path: Path, text: str) -> None:
    path = write_cases(tmp_path, text)
    with pytest.raises(KnowledgeError) as caught:
        load_cases(path)
    [problem] = caught.value.problems
    assert (problem.path, problem.line, problem.field) == (str(path), 1, "cases")
    assert "must be a list" in problem.message


def test_load_cases_missing_q_names_each_line(tmp_path: Path) -> None:
    path = write_cases(tmp_path, "- q: fine\n"
                                 "  expect: []\n"
                                 "- expect: [a]\n"
                                 "- q: 42\n"
                                 "- just a string\n")
    with pytest.raises(KnowledgeError) as caught:
        load_cases(path)
    assert [(p.path, p.line, p.field) for p in caught.value.problems] == [
        (str(path), 3, "q"), (str(path), 4, "q"), (str(path), 5, "q")]


def test_load_cases_unknown_expect_id(tmp_path: Path, tiny: Catalog) -> None:
    path = write_cases(tmp_path, "- q: I forgot my password\n"
                                 "  expect: [password-reset]\n"
                                 "- q: I need a phone\n"
                                 "  expect: [mobile-phone, cell-phone]\n")
    with pytest.raises(KnowledgeError) as caught:
        load_cases(path, tiny)
    [problem] = caught.value.problems
    assert (problem.path, problem.line, problem.field) == (str(path), 3, "expect")
    assert "'cell-phone'" in problem.message
    # Without a catalogue, ids are not checked.
    assert len(load_cases(path)) == 2


def test_load_cases_bad_expect_and_unknown_field(tmp_path: Path) -> None:
    path = write_cases(tmp_path, "- q: a\n"
                                 "  expect: password-reset\n"
                                 "- q: b\n"
                                 "  expct: []\n")
    with pytest.raises(KnowledgeError) as caught:
        load_cases(path)
    assert [(p.line, p.field) for p in caught.value.problems] == [(1, "expect"), (3, "expct")]


def test_load_cases_yaml_error_and_missing_file(tmp_path: Path) -> None:
    path = write_cases(tmp_path, "- q: fine\n- q: [unclosed\n")
    with pytest.raises(KnowledgeError) as caught:
        load_cases(path)
    [problem] = caught.value.problems
    assert (problem.path, problem.field) == (str(path), "yaml")
    assert problem.line >= 2
    with pytest.raises(KnowledgeError) as missing:
        load_cases(tmp_path / "nope.yaml")
    assert missing.value.problems[0].path == str(tmp_path / "nope.yaml")


def test_metrics_on_hand_checked_outcomes(tiny: Catalog) -> None:
    matcher = Matcher(tiny)
    cases = [
        Case("I forgot my password", frozenset({"password-reset"}), 1),          # direct
        Case("I need a phone", frozenset({"mobile-phone", "desk-phone"}), 2),    # choice
        Case("my wireless keeps dropping", frozenset({"password-reset"}), 3),    # wrong
        Case("book a restaurant for friday", frozenset(), 4),                    # declined
        Case("I forgot my password again", frozenset(), 5),                      # oos answered
    ]
    report = evaluate(matcher, cases)
    kinds = [(o.decision.kind, o.decision.offering.id if o.decision.offering else None)
             for o in report.outcomes]
    # The outcomes the rates below were checked against by hand:
    assert kinds[0] == (DecisionKind.ANSWER, "password-reset")
    assert kinds[1][0] is DecisionKind.CLARIFY
    assert {o.id for o in report.outcomes[1].decision.choices} >= {"mobile-phone", "desk-phone"}
    assert kinds[2] == (DecisionKind.ANSWER, "wifi-help")
    assert kinds[3] == (DecisionKind.NONE, None)
    assert kinds[4] == (DecisionKind.ANSWER, "password-reset")

    assert [o.direct for o in report.outcomes] == [True, False, False, False, False]
    assert [o.resolved for o in report.outcomes] == [True, True, False, True, False]
    assert [o.confidently_wrong for o in report.outcomes] == [False, False, True, False, True]
    # A clarify that offers the right choice passes: that is the designed behaviour when unsure.
    assert [o.passed for o in report.outcomes] == [True, True, False, True, False]

    m = report.metrics()
    assert (m["questions"], m["in_scope"], m["out_of_scope"]) == (5, 3, 2)
    assert m["direct"] == pytest.approx(1 / 3)
    assert m["resolved"] == pytest.approx(2 / 3)
    assert m["confidently_wrong"] == pytest.approx(2 / 5)
    assert m["oos_declined"] == pytest.approx(1 / 2)
    assert m["top1"] == pytest.approx(2 / 3)
    assert m["top3"] == pytest.approx(2 / 3)
    assert m["ms_median"] >= 0 and m["ms_p99"] >= m["ms_median"]
    assert [o.case.line for o in report.failures] == [3, 5]


def test_metrics_of_no_cases_are_zero(tiny: Catalog) -> None:
    m = evaluate(Matcher(tiny), []).metrics()
    assert m["questions"] == 0
    assert m["direct"] == m["resolved"] == m["confidently_wrong"] == m["oos_declined"] == 0.0
