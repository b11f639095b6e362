"""Development stand-ins for catalogues we do not have, built from TRAINING splits only.

The matcher is judged on sets of shapes the public test tables do not show: real users'
chatbot traffic full of *near-domain* out-of-scope questions (people ask the bot about the
business's neighbouring topics), and catalogues of a few offerings asked in *long* messages.
These proxies imitate both from the training questions of CLINC150 and BANKING77, so a
decision rule can be tried on them without touching a test split (the test tables stay the
measurement):

near-domain  a catalogue of some intents of one domain (K training questions each as its
             needs); in scope, other training questions of those intents; out of scope,
             training questions of the domain's *other* intents (as many as half the
             in-scope ones, evenly spread over them). Each intent is left out in one
             rotation:
             - CLINC150, per domain: 10 of its 15 intents (three rotations of 5 left out,
               as CLINC's single-domain out-of-scope sets hold out a third);
             - BANKING77: two thirds of the 77 intents (three rotations, as BANKING77-OOS
               holds out 27 of 77), and a quarter (20 intents, the rest left out); intents
               in the order they first appear in `train.csv`.
long         five intents of one CLINC150 domain (three rotations), K training questions
             each as needs; every question is one longer message of the kind a person types
             into a chat window: two or three training questions of one intent joined
             ("... . ..."), or one or two of them after a sentence of context ("Sorry to
             bother you, I have been stuck on this all morning."). In scope, messages of the
             five intents; out of scope, messages of the domain's other ten intents (half)
             and of other domains' intents (half), as many as half the in-scope ones.

Questions are training questions not used as needs, chosen evenly (no randomness: the same
sets every run). No test or validation question, no golden question and no held-out
question is used.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from bot.catalogue.models import Catalog
from bot.matching.evaluate import Case
from tests.benchmarks.datasets import (
    BENCHMARKS,
    IntentData,
    banking77,
    clinc150,
    clinc150_domains,
    slug,
    subset,
    to_catalog,
)

NEEDS = 10
"""Needs per intent in the near-domain catalogues."""
LONG_NEEDS = 5
"""Needs per intent in the long-question catalogues."""
IN_SCOPE_PER_INTENT = 20
LONG_PER_INTENT = 20
OUT_OF_SCOPE_SHARE = 0.5
"""Out-of-scope questions, as a share of the in-scope ones."""
ROTATIONS = 3

CONTEXT = (
    "Hi, I hope this is the right place to ask.",
    "Sorry to bother you, I have been stuck on this all morning.",
    "Quick question before my next meeting.",
    "A colleague told me to ask here.",
    "I tried to find this myself but had no luck.",
    "This is a bit urgent for me.",
    "Hello, I need some help please.",
    "I am not sure who else to ask about this.",
)
"""Sentences of context a person puts around a question; written for these proxies."""


@dataclass(frozen=True, slots=True)
class Proxy:
    """One stand-in catalogue and its questions."""

    key: str
    """`near-domain` or `long`."""
    group: str
    """The proxies shown as one mean (e.g. all CLINC150 near-domain catalogues)."""
    title: str
    catalog: Catalog
    cases: tuple[Case, ...]


def _shares(total: int, parts: int) -> list[int]:
    """`total` split into `parts` near-equal whole shares, the first ones one larger."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def by_intent(data: IntentData) -> dict[str, list[str]]:
    """Training questions per intent, in file order (out-of-scope ones dropped)."""
    out: dict[str, list[str]] = defaultdict(list)
    for text, intent in data.train:
        if intent != "oos":
            out[intent].append(text)
    return out


def _out_of_scope(questions: dict[str, list[str]], intents: Sequence[str],
                  total: int) -> list[str]:
    """`total` questions spread evenly over `intents` (the first intents get one more)."""
    if not intents:
        return []
    out = []
    for intent, share in zip(intents, _shares(total, len(intents)), strict=True):
        out += subset(questions[intent], share)
    return out


def near_domain(name: str, group: str, questions: dict[str, list[str]], *,
                inside: Sequence[str], outside: Sequence[str], needs: int = NEEDS) -> Proxy:
    """A catalogue of `inside` intents; in scope their unused questions, out of scope the
    `outside` intents' questions."""
    train = [(q, i) for i in inside for q in questions[i][:needs]]
    cases = [Case(q, frozenset({slug(i)}))
             for i in inside for q in subset(questions[i][needs:], IN_SCOPE_PER_INTENT)]
    oos = _out_of_scope(questions, outside, int(len(cases) * OUT_OF_SCOPE_SHARE))
    cases += [Case(q, frozenset()) for q in oos]
    return Proxy("near-domain", group, name,
                 to_catalog(IntentData(name, train, []), needs), tuple(cases))


def clinc_near_domain(root: Path = BENCHMARKS,
                      domains: Sequence[str] | None = None) -> Iterator[Proxy]:
    questions = by_intent(clinc150("train", root))
    table = clinc150_domains(root)
    for domain, intents in table.items():
        if domains and domain not in domains:
            continue
        for r in range(ROTATIONS):
            outside = intents[r::ROTATIONS]
            inside = [i for i in intents if i not in outside]
            yield near_domain(f"CLINC150 {domain} near-domain {r + 1}",
                              "CLINC150 train near-domain", questions, inside=inside,
                              outside=outside)


def banking_near_domain(root: Path = BENCHMARKS) -> Iterator[Proxy]:
    questions = by_intent(banking77(root))
    intents = list(questions)  # in order of first appearance in train.csv
    for r in range(ROTATIONS):
        outside = intents[r::ROTATIONS]
        inside = [i for i in intents if i not in outside]
        yield near_domain(f"BANKING77 two thirds {r + 1}", "BANKING77 train near-domain",
                          questions, inside=inside, outside=outside)
    inside = intents[::4]
    yield near_domain("BANKING77 a quarter", "BANKING77 train near-domain", questions,
                      inside=inside, outside=[i for i in intents if i not in inside])


def long_messages(questions: Sequence[str], n: int, seed: int) -> list[str]:
    """`n` longer messages from one intent's questions: joined in twos and threes, or after
    a sentence of context, in turn (deterministic: `seed` only shifts the turn)."""
    out: list[str] = []
    at = 0
    for j in range(n):
        if not questions:
            break
        style = (j + seed) % 4
        take = (2, 3, 1, 2)[style]
        parts = [questions[(at + p) % len(questions)] for p in range(take)]
        at += take
        message = ". ".join(p.strip().rstrip(".?!") for p in parts) + "?"
        if style >= 2:
            message = f"{CONTEXT[(j + seed) % len(CONTEXT)]} {message}"
        out.append(message)
    return out


def clinc_long(root: Path = BENCHMARKS, domains: Sequence[str] | None = None,
               needs: int = LONG_NEEDS) -> Iterator[Proxy]:
    questions = by_intent(clinc150("train", root))
    table = clinc150_domains(root)
    names = list(table)
    for d, (domain, intents) in enumerate(table.items()):
        if domains and domain not in domains:
            continue
        for r in range(ROTATIONS):
            inside = intents[5 * r:5 * r + 5]
            train = [(q, i) for i in inside for q in questions[i][:needs]]
            cases = [Case(m, frozenset({slug(i)}))
                     for s, i in enumerate(inside)
                     for m in long_messages(questions[i][needs:], LONG_PER_INTENT, s)]
            total = int(len(cases) * OUT_OF_SCOPE_SHARE)
            near = [i for i in intents if i not in inside]
            far = [table[names[(d + 1 + j) % len(names)]][(r + j) % len(intents)]
                   for j in range(len(names) - 1)]
            oos = (_long_out_of_scope(questions, near, total // 2, needs)
                   + _long_out_of_scope(questions, far, total - total // 2, needs))
            cases += [Case(m, frozenset()) for m in oos]
            yield Proxy("long", "CLINC150 train long questions",
                        f"CLINC150 {domain} long {r + 1}",
                        to_catalog(IntentData(domain, train, []), needs), tuple(cases))


def _long_out_of_scope(questions: dict[str, list[str]], intents: Sequence[str], total: int,
                       needs: int) -> list[str]:
    """`total` long messages spread evenly over `intents`."""
    out = []
    for s, (intent, share) in enumerate(zip(intents, _shares(total, len(intents)),
                                            strict=True)):
        out += long_messages(questions[intent][needs:], share, s)
    return out


def proxies(names: Sequence[str], root: Path = BENCHMARKS,
            domains: Sequence[str] | None = None) -> list[Proxy]:
    """The proxies named (`near-domain`, `long`)."""
    out: list[Proxy] = []
    if "near-domain" in names:
        out += [*clinc_near_domain(root, domains), *banking_near_domain(root)]
    if "long" in names:
        out += list(clinc_long(root, domains))
    return out
