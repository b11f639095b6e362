"""The ceiling benchmark: the best lines chosen on the questions themselves, and its command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bot.matching.thresholds import LEXICAL, SEMANTIC
from tests.benchmarks.ceiling import Questions, main, one_for_all, oracle, with_lines


def questions(rows: list[tuple[float, float, bool, bool]]) -> Questions:
    """(strength, margin, right, in scope) per question."""
    s, m, r, i = zip(*rows, strict=True)
    return Questions(np.array(s), np.array(m), np.array(r), np.array(i))


# Eight right questions fitting 0.62 with a lead of 0.20; two in-scope questions whose best
# offering is wrong, fitting as well but with a lead of 0.05; ten out of scope at 0.35.
MIXED = questions([(0.62, 0.20, True, True)] * 8 + [(0.62, 0.05, False, True)] * 2
                  + [(0.35, 0.30, False, False)] * 10)


def test_the_oracle_answers_every_right_question_it_can_tell_apart() -> None:
    best = oracle(MIXED, max_wrong=0.0)
    assert best.direct == 0.8 and best.wrong == 0.0, "8 of 10 in scope, none wrong"
    assert best.answer is not None and best.margin is not None
    assert 0.35 < best.answer <= 0.62 and 0.05 < best.margin <= 0.20


def test_the_oracle_takes_wrong_answers_only_within_the_bound() -> None:
    assert oracle(MIXED, max_wrong=0.0).wrong == 0.0
    looser = oracle(questions([(0.62, 0.20, True, True)] * 8
                              + [(0.70, 0.30, False, True)] * 2
                              + [(0.35, 0.30, False, False)] * 10), max_wrong=0.1)
    assert looser.direct == 0.8 and looser.wrong == 0.1, (
        "the wrong ones fit better than the right ones: answering all is the only way")
    stricter = oracle(questions([(0.62, 0.20, True, True)] * 8
                                + [(0.70, 0.30, False, True)] * 2
                                + [(0.35, 0.30, False, False)] * 10), max_wrong=0.05)
    assert stricter.direct == 0.0 and stricter.wrong == 0.0


def test_one_pair_of_lines_for_all_catalogues_gives_no_more_than_each_catalogues_own() -> None:
    strong = questions([(0.80, 0.30, True, True)] * 5 + [(0.60, 0.30, False, True)] * 5)
    weak = questions([(0.55, 0.30, True, True)] * 5 + [(0.40, 0.30, False, False)] * 5)
    own = np.mean([oracle(q, 0.0).direct for q in (strong, weak)])
    shared = one_for_all([strong, weak], 0.0)
    assert own == 0.75, "strong: 5 of 10 in scope; weak: all 5"
    assert shared.wrong == 0.0 and shared.direct < own, (
        "strong needs a line above 0.60, weak one below 0.55: no single line serves both")


def test_the_oracle_keeps_the_sure_line_so_it_never_falls_below_the_built_in_lines() -> None:
    """Four right questions fit above lexical mode's sure line with no lead at all: the
    rule answers them whatever the margin, and so does the oracle."""
    q = questions([(0.95, 0.00, True, True)] * 4 + [(0.60, 0.30, True, True)] * 4
                  + [(0.70, 0.10, False, True)] * 2)
    built_in, best = with_lines(q, LEXICAL), oracle(q, 0.0, sure=LEXICAL.sure)
    assert built_in.direct == 0.8 and built_in.wrong == 0.0
    assert best.direct >= built_in.direct and best.wrong == 0.0
    assert oracle(q, 0.0).direct == 0.4, "without a sure line, the lead-less ones are lost"


def test_the_built_in_lines_are_applied_as_the_matcher_applies_them() -> None:
    q = questions([(SEMANTIC.answer, SEMANTIC.margin, True, True),
                   (SEMANTIC.answer - 0.01, 0.5, True, True),
                   (0.9, SEMANTIC.margin - 0.01, True, True),
                   (0.9, 0.5, False, False)])
    got = with_lines(q, SEMANTIC)
    assert got.direct == pytest.approx(1 / 3) and got.wrong == 0.25


def test_the_command_prints_each_domain_and_the_mean(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    words = {"reset_password": "password locked", "book_room": "meeting room booking",
             "order_laptop": "new laptop order", "vpn_access": "vpn connection"}
    train = [[f"{w} question {n}", i] for i, w in words.items() for n in range(10)]
    val = [[f"help with {w} {n}", i] for i, w in words.items() for n in range(3)]
    root = tmp_path / "benchmarks"
    (root / "clinc150").mkdir(parents=True)
    (root / "clinc150" / "data_full.json").write_text(json.dumps({
        "train": train, "val": val, "test": val, "oos_train": [],
        "oos_val": [["what is the weather in Hamburg", "oos"]], "oos_test": []}),
        encoding="utf-8")
    (root / "clinc150" / "domains.json").write_text(json.dumps(
        {"office": ["reset_password", "book_room"], "kit": ["order_laptop", "vpn_access"]}),
        encoding="utf-8")
    assert main(["--matcher", "lexical", "--data", str(root)]) == 0
    out = capsys.readouterr().out
    assert "CLINC150 val by domain, K=10, Concierge lexical" in out
    rows = {line.split()[0]: line for line in out.splitlines()[2:]}
    assert {"office", "kit", "mean"} <= rows.keys()
    assert "one pair of lines for every domain" in out
    assert main(["--matcher", "lexical", "--data", str(root), "--domains", "nowhere"]) == 2
