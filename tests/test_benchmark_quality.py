"""The matching-quality harness, end to end, on a small synthetic intent data set.

It runs the README's command (`python -m tests.benchmarks.quality`) as a process on real
files written to tmp_path in the CLINC150 and BANKING77 layouts plus a held-out-style
catalogue, and checks the tables' shape and that the numbers are sane.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.benchmarks.datasets import write_banking77

REPO = Path(__file__).resolve().parents[1]
RATES = ("top1", "top3", "direct", "resolved", "confidently_wrong")
COLUMNS = ("top-1", "top-3", "direct", "resolved", "conf. wrong", "worst catalogue wrong",
           "in-scope declined", "… right first", "OOS declined", "AUROC", "ms median", "ms p99",
           "× BM25 ms")

# Each intent has its own words, so a word-based matcher can rank it first.
INTENTS = {
    "reset_password": ("password", "locked", "login", "reset"),
    "book_room": ("meeting room", "booked", "reserve", "book"),
    "order_laptop": ("laptop", "broken", "replace", "order"),
    "printer_jam": ("printer", "jammed", "print", "fix"),
    "expense_claim": ("expense claim", "unpaid", "submit", "file"),
    "vpn_access": ("vpn", "blocked", "connect", "set up"),
}
TEMPLATES = (
    "my {0} is {1}", "please {3} my {0}", "I cannot {2}, the {0} is {1}",
    "how do I {3} the {0}", "{0} {1} again", "can you {3} a {0} for me",
    "need to {2} with the {0}", "help, {0} {1}", "who can {3} my {0}",
    "where do I {3} a {0}", "the {0} is {1} today", "I want to {2} using the {0}",
    "could someone {3} the {0} please", "is there a way to {3} my {0}",
    "our {0} got {1}",
)
OUT_OF_SCOPE = (
    "what is the weather in Hamburg", "tell me a joke about cats", "who won the football match",
    "recommend a pasta recipe", "how tall is the Eiffel tower", "play some jazz music",
    "what time is sunset", "translate hello into Spanish",
)


def examples(intent: str, indices: range) -> list[tuple[str, str]]:
    return [(TEMPLATES[i].format(*INTENTS[intent]), intent) for i in indices]


def split(indices: range) -> list[tuple[str, str]]:
    return [pair for intent in INTENTS for pair in examples(intent, indices)]


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    """CLINC150's `data_full.json` and BANKING77's CSV files, with the synthetic intents."""
    root = tmp_path / "benchmarks"
    train, val, test = split(range(10)), split(range(10, 12)), split(range(12, 15))
    (root / "clinc150").mkdir(parents=True)
    (root / "clinc150" / "data_full.json").write_text(json.dumps({
        "train": train, "val": val, "test": test,
        "oos_train": [], "oos_val": [[q, "oos"] for q in OUT_OF_SCOPE[:4]],
        "oos_test": [[q, "oos"] for q in OUT_OF_SCOPE[4:]],
    }), encoding="utf-8")
    intents = list(INTENTS)
    (root / "clinc150" / "domains.json").write_text(json.dumps(
        {"office": intents[:3], "access": intents[3:]}), encoding="utf-8")
    write_banking77(root, train, test)
    return root


def dump_yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


@pytest.fixture
def heldout(tmp_path: Path, new_offering: Callable[..., dict[str, Any]]) -> Path:
    """A catalogue and golden questions in the layout of tests/benchmarks/heldout."""
    root = tmp_path / "heldout"
    (root / "catalogue").mkdir(parents=True)
    offerings = [new_offering(intent.replace("_", "-"), needs=[t for t, _ in examples(
        intent, range(4))]) for intent in INTENTS]
    (root / "catalogue" / "it.yaml").write_text(dump_yaml({"offerings": offerings}),
                                                encoding="utf-8")
    questions = [{"q": q, "expect": [i.replace("_", "-")]} for q, i in split(range(12, 14))]
    questions += [{"q": q, "expect": []} for q in OUT_OF_SCOPE[:3]]
    (root / "questions.yaml").write_text(dump_yaml(questions), encoding="utf-8")
    return root


Harness = Callable[..., str]


@pytest.fixture
def harness(data_root: Path, heldout: Path) -> Harness:
    def run(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "tests.benchmarks.quality", "--data", str(data_root),
             "--heldout", str(heldout), *args],
            cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout

    return run


def check_sane(table: dict[str, Any]) -> None:
    for row in table["rows"]:
        m = row["metrics"]
        assert all(0.0 <= m[k] <= 1.0 for k in RATES), m
        assert m["top1"] <= m["top3"] and m["direct"] <= m["resolved"], m
        assert 0.0 < m["ms_median"] <= m["ms_p99"], m
        assert m["questions"] == table["questions"]
        if table["out_of_scope"]:
            assert 0.0 <= m["oos_declined"] <= 1.0 and 0.0 <= m["auroc"] <= 1.0, m
        else:
            assert m["oos_declined"] is None and m["auroc"] is None, m


def test_one_table_per_data_set_and_shots_with_sane_numbers(harness: Harness) -> None:
    result = json.loads(harness("--matchers", "lexical", "--shots", "3,10", "--domain-shots",
                                "4", "--json"))
    by_domain, each_domain, *tables = result["tables"]
    assert (by_domain["dataset"], by_domain["shots"]) == ("CLINC150 by domain (mean of 2)", 4)
    # Each domain: its three intents' test questions in scope, the other domain's and the
    # out-of-scope ones out of scope (fewer here than the 450 + 450 of the real set).
    assert (by_domain["in_scope"], by_domain["out_of_scope"]) == (
        3 * len(INTENTS), 3 * len(INTENTS) + 2 * 4)
    assert [r["matcher"] for r in by_domain["rows"]] == ["Concierge lexical"]
    assert 0.0 <= by_domain["rows"][0]["metrics"]["worst_wrong"] <= 1.0
    assert [r["matcher"] for r in each_domain["rows"]] == [
        "office: Concierge lexical", "access: Concierge lexical"]
    assert [(t["dataset"], t["shots"]) for t in tables] == [
        ("CLINC150 test", 3), ("CLINC150 test", 10),
        ("BANKING77 test", 3), ("BANKING77 test", 10),
        ("Held-out IT catalogue", None)]
    in_scope = 3 * len(INTENTS)
    assert [(t["in_scope"], t["out_of_scope"]) for t in tables] == [
        (in_scope, 4), (in_scope, 4), (in_scope, 0), (in_scope, 0), (2 * len(INTENTS), 3)]
    for table in tables:
        assert [r["matcher"] for r in table["rows"]] == ["Concierge lexical"]
        check_sane(table)
    # The synthetic questions share their intent's words: a word matcher ranks it first.
    ten_shots = tables[1]["rows"][0]["metrics"]
    assert ten_shots["top1"] >= 0.8
    assert result["rules"] == {}  # no reference matcher, nothing calibrated


def test_text_and_markdown_tables_have_every_column(harness: Harness) -> None:
    text = harness("--matchers", "lexical", "--datasets", "clinc150,heldout", "--shots", "5",
                   "--limit", "7")
    lines = text.splitlines()
    assert lines[0] == "CLINC150 test, K=5: 7 questions (6 in scope, 1 out of scope)"
    assert lines[1].split("  ")[0] == "matcher"
    assert all(column in lines[1] for column in COLUMNS)
    assert lines[2].startswith("Concierge lexical ")
    assert any(line.startswith("Held-out IT catalogue: 7 questions") for line in lines)

    markdown = harness("--matchers", "lexical", "--datasets", "banking77", "--shots", "5",
                       "--markdown")
    header = next(line for line in markdown.splitlines() if line.startswith("| matcher"))
    assert [c.strip() for c in header.strip("|").split("|")] == ["matcher", *COLUMNS]
    row = next(line for line in markdown.splitlines() if line.startswith("| Concierge"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert len(cells) == 1 + len(COLUMNS)
    assert cells[COLUMNS.index("OOS declined") + 1] == "-"  # BANKING77 has no out of scope


def test_bm25_reference_is_calibrated_on_val_and_is_the_speed_baseline(
        harness: Harness) -> None:
    pytest.importorskip("bm25s", reason="the `bench` extra is not installed")
    result = json.loads(harness("--matchers", "lexical,bm25", "--datasets", "clinc150",
                                "--shots", "5", "--json"))
    [table] = result["tables"]
    check_sane(table)
    rows = {r["matcher"]: r["metrics"] for r in table["rows"]}
    assert set(rows) == {"Concierge lexical", "BM25 (reference)"}
    assert rows["BM25 (reference)"]["speed_vs_bm25"] == 1.0
    assert rows["Concierge lexical"]["speed_vs_bm25"] > 0
    rule = result["rules"]["BM25 (reference)"]["rule"]
    assert 0 <= rule["decline"] <= rule["answer"]
    assert rows["BM25 (reference)"]["top1"] >= 0.8
