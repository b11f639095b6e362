"""The development proxies (tests/benchmarks/proxies.py) on a small synthetic data set in the
CLINC150 and BANKING77 layouts: built from training questions only, never a need asked back,
out-of-scope questions from the domain's other intents, every intent left out once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.benchmarks.datasets import write_banking77
from tests.benchmarks.proxies import (
    CONTEXT,
    IN_SCOPE_PER_INTENT,
    LONG_NEEDS,
    NEEDS,
    ROTATIONS,
    Proxy,
    long_messages,
    proxies,
)

DOMAINS = {"office": [f"office_{i}" for i in range(15)],
           "travel": [f"travel_{i}" for i in range(15)]}
BANKING = [f"bank_{i}" for i in range(12)]
TRAIN_PER_INTENT = 40


def train_question(intent: str, n: int) -> str:
    return f"question {n} about {intent.replace('_', ' ')}"


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("benchmarks")
    intents = [i for domain in DOMAINS.values() for i in domain]
    train = [[train_question(i, n), i] for i in intents for n in range(TRAIN_PER_INTENT)]
    held_back = [["a test question", intents[0]]]
    (root / "clinc150").mkdir()
    (root / "clinc150" / "data_full.json").write_text(json.dumps({
        "train": train, "val": held_back, "test": held_back, "oos_train": [],
        "oos_val": [["weather", "oos"]], "oos_test": [["weather", "oos"]]}), encoding="utf-8")
    (root / "clinc150" / "domains.json").write_text(json.dumps(DOMAINS), encoding="utf-8")
    write_banking77(root, [(train_question(i, n), i) for i in BANKING
                           for n in range(TRAIN_PER_INTENT)],
                    [("a test question", BANKING[0])])
    return root


def intent_of(question: str) -> str:
    """The intent a synthetic training question was written for."""
    return question.split(" about ", 1)[1].rstrip("?").replace(" ", "_")


def number_of(question: str) -> int:
    return int(question.split()[1])


def parts(message: str) -> list[str]:
    """The training questions a long message was made of (its context sentence dropped)."""
    for sentence in CONTEXT:
        message = message.removeprefix(sentence + " ")
    return [p.strip() for p in message.rstrip("?").split(". ")]


def by_key(made: list[Proxy], key: str) -> list[Proxy]:
    return [p for p in made if p.key == key]


def test_near_domain_catalogues_leave_each_intent_out_once(data_root: Path) -> None:
    near = by_key(proxies(["near-domain"], data_root), "near-domain")
    clinc = [p for p in near if p.title.startswith("CLINC150")]
    assert len(clinc) == ROTATIONS * len(DOMAINS)
    for domain, intents in DOMAINS.items():
        mine = [p for p in clinc if f" {domain} " in p.title]
        inside = [{o.id.replace("-", "_") for o in p.catalog} for p in mine]
        assert all(len(i) == 10 for i in inside), "10 of 15 in each, as CLINC's single domain"
        left_out = [set(intents) - i for i in inside]
        assert sorted(i for out in left_out for i in out) == sorted(intents)
    for p in clinc:
        offered = {o.id.replace("-", "_") for o in p.catalog}
        domain = next(d for d, intents in DOMAINS.items() if offered <= set(intents))
        needs = {n for o in p.catalog for n in o.needs}
        assert all(len(o.needs) == NEEDS for o in p.catalog)
        inside = [c for c in p.cases if c.in_scope]
        outside = [c for c in p.cases if not c.in_scope]
        assert len(inside) == IN_SCOPE_PER_INTENT * len(p.catalog)
        assert len(outside) == len(inside) // 2
        assert not needs & {c.question for c in p.cases}, "a need is never asked back"
        assert all(number_of(c.question) >= NEEDS for c in inside)
        assert all({intent_of(c.question).replace("_", "-")} == c.expect for c in inside)
        assert all(intent_of(c.question) in set(DOMAINS[domain]) - offered for c in outside)


def test_banking_near_domain_keeps_two_thirds_then_a_quarter(data_root: Path) -> None:
    banking = [p for p in proxies(["near-domain"], data_root)
               if p.title.startswith("BANKING77")]
    assert [len(p.catalog) for p in banking] == [8, 8, 8, 3]
    for p in banking:
        offered = {o.id.replace("-", "_") for o in p.catalog}
        assert all(intent_of(c.question) not in offered for c in p.cases if not c.in_scope)


def test_long_questions_join_training_questions_of_one_intent(data_root: Path) -> None:
    long = proxies(["long"], data_root)
    assert len(long) == ROTATIONS * len(DOMAINS)
    for p in long:
        assert len(p.catalog) == 5 and all(len(o.needs) == LONG_NEEDS for o in p.catalog)
        offered = {o.id.replace("-", "_") for o in p.catalog}
        inside = [c for c in p.cases if c.in_scope]
        outside = [c for c in p.cases if not c.in_scope]
        assert len(outside) == len(inside) // 2
        for case in inside:
            pieces = parts(case.question)
            assert 1 <= len(pieces) <= 3
            assert {intent_of(q).replace("_", "-") for q in pieces} == set(case.expect)
            assert all(number_of(q) >= LONG_NEEDS for q in pieces), "never a need"
        assert all(not {intent_of(q) for q in parts(c.question)} & offered for c in outside)
        domains = {next(d for d, i in DOMAINS.items() if intent_of(parts(c.question)[0]) in i)
                   for c in outside}
        assert len(domains) == 2, "near-domain and other domains' messages"
    messages = [c.question for p in long for c in p.cases]
    assert any(m.startswith(CONTEXT) for m in messages)
    assert any(len(parts(m)) == 3 for m in messages)


def test_long_messages_are_deterministic_and_never_repeat_a_question_in_one() -> None:
    questions = [f"q{n}" for n in range(7)]
    first = long_messages(questions, 12, seed=1)
    assert first == long_messages(questions, 12, seed=1) and len(first) == 12
    assert all(len(set(parts(m))) == len(parts(m)) for m in first)
    assert long_messages([], 3, seed=0) == []


def test_the_quality_benchmark_names_the_proxies(data_root: Path) -> None:
    from tests.benchmarks.quality import PROXIES, PROXY_MATCHERS, load_benchmarks

    benches = load_benchmarks(list(PROXIES), [5], data_root, data_root, None)
    assert {b.group for b in benches} == {
        f"CLINC150 train near-domain (mean of {ROTATIONS * len(DOMAINS)})",
        "BANKING77 train near-domain (mean of 4)",
        f"CLINC150 train long questions (mean of {ROTATIONS * len(DOMAINS)})"}
    assert all(b.matchers == PROXY_MATCHERS and not b.detail for b in benches)
