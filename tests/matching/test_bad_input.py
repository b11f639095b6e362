"""Property-based tests: whatever the input, the loader reports and the matcher decides.

Never a crash: the loader returns problems located to a file, the matcher returns a
`none` decision or a well-formed one, and matching time stays bounded by the cap on
question length (the answer says when a question was cut).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.catalogue.loader import check_knowledge
from bot.catalogue.models import Catalog, DecisionKind, Kind, Offering, Owner, RequestInfo
from bot.matching.matcher import Matcher
from bot.matching.thresholds import MAX_QUERY_CHARS

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


def _offering(oid: str, needs: tuple[str, ...]) -> Offering:
    return Offering(id=oid, name=oid.replace("-", " ").title(), summary=f"{oid} summary",
                    kind=Kind.SERVICE, owner=Owner("IT"),
                    request=RequestInfo(url="https://it.example/x"), needs=needs)


MATCHER = Matcher(Catalog((
    _offering("laptop", ("my laptop is old", "ich brauche einen neuen Laptop")),
    _offering("password-reset", ("I forgot my password",)),
    _offering("vpn", ("work from home securely", "VPN access")),
)))

yaml_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                         st.text(max_size=30))
yaml_values = st.recursive(
    yaml_scalars,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.text(max_size=10), children, max_size=4)),
    max_leaves=20)


def _only_problems_with_locations(root: Path) -> None:
    report = check_knowledge(root)
    for p in report.problems:
        assert p.path.startswith(str(root))
        assert p.line >= 0
        assert p.render().startswith(p.path)
    if report.catalog is None:
        assert report.errors


@SETTINGS
@given(data=yaml_values)
def test_any_yaml_data_is_reported_not_crashed(tmp_path: Path, data: object) -> None:
    folder = tmp_path / "k"
    folder.mkdir(exist_ok=True)
    (folder / "x.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    _only_problems_with_locations(folder)


@SETTINGS
@given(blob=st.binary(max_size=400))
def test_any_bytes_are_reported_not_crashed(tmp_path: Path, blob: bytes) -> None:
    folder = tmp_path / "k"
    folder.mkdir(exist_ok=True)
    (folder / "x.yaml").write_bytes(blob)
    _only_problems_with_locations(folder)


@SETTINGS
@given(text=st.text(max_size=300))
def test_any_text_is_reported_not_crashed(tmp_path: Path, text: str) -> None:
    folder = tmp_path / "k"
    folder.mkdir(exist_ok=True)
    (folder / "x.yaml").write_text(text, encoding="utf-8")
    _only_problems_with_locations(folder)


def test_deep_nesting_is_an_error_not_a_crash(kdir: Path) -> None:
    (kdir / "deep.yaml").write_text("x-a: " + "[" * 5000 + "]" * 5000 + "\n", encoding="utf-8")
    report = check_knowledge(kdir)
    assert report.catalog is None
    assert report.errors[0].path == str(kdir / "deep.yaml")


def test_huge_file_is_refused_with_its_size(kdir: Path) -> None:
    (kdir / "huge.yaml").write_text("# " + "x" * 3_000_000 + "\n", encoding="utf-8")
    report = check_knowledge(kdir)
    assert [p.field for p in report.errors] == ["file"]
    assert "bytes" in report.errors[0].message


def test_latin1_file_is_reported_with_its_line(kdir: Path) -> None:
    (kdir / "latin.yaml").write_bytes("id: a\nname: Gr\xfc\xdfe\n".encode("latin-1"))
    [problem] = check_knowledge(kdir).errors
    assert (problem.line, problem.message) == (2, "is not UTF-8 text")


def test_file_that_vanishes_or_dangles_is_reported(kdir: Path) -> None:
    # A dangling link reads like a file deleted between listing and reading (CI runs as
    # root, where permission bits cannot make a file unreadable).
    path = kdir / "gone.yaml"
    path.symlink_to(kdir / "nowhere.yaml")
    [problem] = check_knowledge(kdir).errors
    assert problem.path == str(path) and "cannot read" in problem.message


def test_symlink_loop_is_not_followed(kdir: Path) -> None:
    (kdir / "loop").symlink_to(kdir, target_is_directory=True)
    report = check_knowledge(kdir)
    assert report.files == 0


@SETTINGS
@given(question=st.text(max_size=2000))
def test_any_question_gets_a_well_formed_decision(question: str) -> None:
    decision = MATCHER.decide(question)
    assert decision.kind in set(DecisionKind)
    assert 0.0 <= decision.confidence <= 1.0
    assert decision.why
    assert len(decision.candidates) <= 5
    if decision.kind is DecisionKind.ANSWER:
        assert decision.offering is not None
    if decision.kind is DecisionKind.CLARIFY:
        assert 2 <= len(decision.choices) <= 3


@pytest.mark.parametrize("question", [
    "🙂🙂🙂", "?!?!...,,,", "مرحبا، أحتاج إلى كمبيوتر محمول جديد", "\u202eesrever\u202c",
    "<@U012AB3CD> <!channel> <https://evil.example|click here>", "\x00\x01\x02", " \n\t ",
    "ｌａｐｔｏｐ", "LAPTOP!!!", "a" * 40_000,
])
def test_odd_questions_never_crash(question: str) -> None:
    decision = MATCHER.decide(question)
    assert decision.why


def test_forty_kilobyte_question_is_cut_and_says_so() -> None:
    # ~42 KB, no phrase repeated (a repeated one is read once instead: test_matcher).
    question = " ".join(f"my laptop number {n} is old" for n in range(1600))
    decision = MATCHER.decide(question)
    assert f"first {MAX_QUERY_CHARS} characters" in decision.why
    assert decision.query == question


def test_slack_markup_does_not_match_by_itself() -> None:
    decision = MATCHER.decide("<@U012AB3CD> <#C0123ABCD|laptop-talk>")
    # The channel label "laptop-talk" is visible text; the raw IDs are not words.
    assert all("U012AB3CD" not in c.evidence.text for c in decision.candidates)
