"""Matching quality: Concierge and two reference matchers, on the same data, in one run.

    python -m tests.benchmarks.quality
        [--datasets clinc150-domains,clinc150,banking77,heldout,near-domain,long]
        [--shots 5,10] [--domain-shots 10,4] [--domains banking,travel]
        [--matchers semantic-default,semantic-first-pass,semantic,lexical,bm25,centroid]
        [--limit N] [--markdown | --json]

One table per data set (CLINC150 by domain: ten catalogues of one domain's 15 intents, each
with its test questions in scope and 450 test questions of the other domains plus 450 of
`oos_test` out of scope, at K needs per intent, shown as the mean of the ten; CLINC150 test
with its out-of-scope queries; BANKING77 test; each at K shots per intent; the held-out IT
catalogue in `tests/benchmarks/heldout`; and the development proxies of
`tests/benchmarks/proxies.py`, built from training splits only: near-domain out-of-scope
questions, and long questions to a few offerings), one row per matcher. "Concierge semantic"
decides with the lines it learns from each catalogue (`bot/matching/calibration.py`);
"built-in lines" with those of `bot/matching/thresholds.py`, the rule before calibration;
"first pass's lines" with the answer and margin lines the first calibration chose
(`tests/benchmarks/first_pass.py`); the reference matchers' decision rules are chosen here
on CLINC150 *val* (K=10) before any test question is seen. Nothing is tuned on test, and
only aggregate numbers are printed: the held-out questions must stay unseen.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from bot.catalogue.loader import load_catalog
from bot.catalogue.models import Catalog, Decision, DecisionKind
from bot.errors import EmbeddingUnavailable
from bot.matching.calibration import SelfTest, derive_rule, self_test
from bot.matching.evaluate import Case, Outcome, Report, load_cases
from bot.matching.lexical import FloatArray
from bot.matching.matcher import Matcher
from bot.matching.semantic import Embedder, SemanticIndex
from bot.matching.thresholds import MAX_QUERY_CHARS
from tests.benchmarks.datasets import (
    BENCHMARKS,
    IntentData,
    banking77,
    clinc150,
    clinc150_domains,
    subset,
    to_cases,
    to_catalog,
)
from tests.benchmarks.first_pass import first_pass_rule
from tests.benchmarks.proxies import proxies
from tests.benchmarks.references import (
    BM25Ranker,
    Calibration,
    CentroidRanker,
    Ranker,
    RuleMatcher,
    calibrate_rule,
)

HELDOUT = Path(__file__).resolve().parent / "heldout"
DATASETS = ("clinc150-domains", "clinc150", "banking77", "heldout", "near-domain", "long")
PROXIES = ("near-domain", "long")
MATCHERS = ("semantic-default", "semantic-first-pass", "semantic", "lexical", "bm25",
            "centroid")
DOMAIN_MATCHERS = ("semantic-default", "semantic-first-pass", "semantic", "lexical")
"""By domain only Concierge: 20 catalogues of 1,350 questions each would take the
references most of an hour."""
PROXY_MATCHERS = ("semantic-default", "semantic-first-pass", "semantic")
"""The proxies compare decision rules: Concierge's semantic rows only."""
OTHER_DOMAINS, OOS_PER_DOMAIN = 450, 450
CALIBRATION_SHOTS = 10
"""The reference rules are chosen on CLINC150 val at this K, as Concierge's thresholds were."""
# The bounds that `bot/matching/thresholds.py` documents for the Concierge mode each reference
# stands beside: at most 2% confidently wrong; words alone decline fewer out-of-scope questions.
BOUNDS = {"bm25": (0.02, 0.5), "centroid": (0.02, 0.9)}
LABELS = {"lexical": "Concierge lexical", "semantic": "Concierge semantic",
          "semantic-default": "Concierge semantic, built-in lines",
          "semantic-first-pass": "Concierge semantic, first pass's lines",
          "bm25": "BM25 (reference)", "centroid": "MiniLM centroid (reference)"}
COLUMNS = (("top1", "top-1"), ("top3", "top-3"), ("direct", "direct"), ("resolved", "resolved"),
           ("confidently_wrong", "conf. wrong"), ("worst_wrong", "worst catalogue wrong"),
           ("in_declined", "in-scope declined"),
           ("in_declined_top1", "… right first"), ("oos_declined", "OOS declined"),
           ("auroc", "AUROC"), ("ms_median", "ms median"), ("ms_p99", "ms p99"),
           ("speed_vs_bm25", "× BM25 ms"))


class BenchEmbedder:
    """The model as the benchmark needs it: catalogue texts (batches) are embedded once
    per run and reused across matchers and K, while every question (a single text)
    reaches the model, as a new question does in production, so its latency is real.

    A text asked for again before `forget()` is not re-embedded: the top score read right
    after a timed decision costs nothing, and `forget()` runs before each timed decision.
    """

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self._batches: dict[str, FloatArray] = {}
        self._recent: dict[str, FloatArray] = {}
        self.remember = False
        """Answer single questions from the batches too (runs whose latency is not shown)."""

    @property
    def name(self) -> str:
        return self.inner.name

    def knows(self, word: str) -> bool:
        return self.inner.knows(word)

    def embed(self, texts: Sequence[str]) -> FloatArray:
        if len(texts) == 1 and self.remember and texts[0] in self._batches:
            return self._batches[texts[0]][None, :]
        if len(texts) == 1:
            text = texts[0]
            if text not in self._recent:
                self._recent[text] = self.inner.embed([text])
            return self._recent[text]
        missing = [t for t in dict.fromkeys(texts) if t not in self._batches]
        if missing:
            self._batches.update(zip(missing, self.inner.embed(missing), strict=True))
        return np.stack([self._batches[t] for t in texts]) if texts else np.zeros((0, 0))

    def forget(self) -> None:
        self._recent.clear()


class Contender(Protocol):
    def decide(self, question: str) -> Decision: ...

    def top_score(self, question: str, decision: Decision) -> float:
        """How well the best offering fits (for AUROC in-scope vs out-of-scope)."""
        ...


class Concierge:
    def __init__(self, matcher: Matcher) -> None:
        self.matcher = matcher

    def decide(self, question: str) -> Decision:
        return self.matcher.decide(question)

    def top_score(self, question: str, decision: Decision) -> float:
        # The strength that the decision rule compares with the decline threshold.
        text = " ".join(question.split())[:MAX_QUERY_CHARS]
        return self.matcher.score(text).best_strength if decision.candidates else 0.0


class Reference:
    def __init__(self, matcher: RuleMatcher) -> None:
        self.matcher = matcher

    def decide(self, question: str) -> Decision:
        return self.matcher.decide(question)

    def top_score(self, question: str, decision: Decision) -> float:
        return decision.candidates[0].score if decision.candidates else 0.0


@dataclass(frozen=True, slots=True)
class Benchmark:
    """One catalogue with its questions."""

    key: str
    title: str
    shots: int | None
    catalog: Catalog
    cases: tuple[Case, ...]
    group: str | None = None
    """Benchmarks of one group (the CLINC150 domains at one K) are shown as their mean."""
    detail: bool = True
    """A group is also shown part by part."""
    matchers: tuple[str, ...] = MATCHERS
    """The matchers this benchmark is measured with (of those selected)."""


@dataclass(frozen=True, slots=True)
class Row:
    matcher: str
    metrics: dict[str, float | None]


@dataclass(frozen=True, slots=True)
class Table:
    dataset: str
    shots: int | None
    questions: int
    in_scope: int
    out_of_scope: int
    rows: tuple[Row, ...]
    notes: tuple[str, ...] = field(default=())


def auroc(scores: Sequence[float], positive: Sequence[bool]) -> float | None:
    """Probability that an in-scope question's top score beats an out-of-scope one's
    (ties count half); None without both kinds of question."""
    s = np.asarray(scores, dtype=np.float64)
    pos = np.asarray(positive, dtype=bool)
    inside, outside = np.sort(s[pos]), np.sort(s[~pos])
    if not len(inside) or not len(outside):
        return None
    below = np.searchsorted(outside, inside, side="left")
    equal = np.searchsorted(outside, inside, side="right") - below
    return float((below + 0.5 * equal).sum() / (len(inside) * len(outside)))


def measure(contender: Contender, cases: Sequence[Case],
            forget: Callable[[], None]) -> dict[str, float | None]:
    """`bot.matching.evaluate`'s metrics (one timed `decide` per question, as `concierge eval`
    times it), plus the AUROC of the top score."""
    if cases:
        contender.decide(cases[0].question)  # lazy set-up is not a question's cost
    outcomes, tops = [], []
    for case in cases:
        forget()
        start = time.perf_counter()
        decision = contender.decide(case.question)
        seconds = time.perf_counter() - start
        tops.append(contender.top_score(case.question, decision))
        outcomes.append(Outcome(case, decision, seconds))
    report = Report(tuple(outcomes))
    metrics: dict[str, float | None] = dict(report.metrics())
    ins = report.in_scope
    declined = [o for o in ins if o.decision.kind is DecisionKind.NONE]
    metrics["in_declined"] = len(declined) / len(ins) if ins else None
    metrics["in_declined_top1"] = (sum(o.ranked_within(1) for o in declined) / len(ins)
                                   if ins else None)
    if not report.out_of_scope:
        metrics["oos_declined"] = None
    metrics["auroc"] = auroc(tops, [c.in_scope for c in cases])
    return metrics


def intent_benchmark(key: str, title: str, data: IntentData, shots: int,
                     limit: int | None) -> Benchmark:
    return Benchmark(key, title, shots, to_catalog(data, shots),
                     tuple(subset(to_cases(data), limit)))


def domain_benchmarks(shots: Sequence[int], data_root: Path, domains: Sequence[str] | None,
                      limit: int | None, *, split: str = "test") -> list[Benchmark]:
    """CLINC150 by domain: per domain and K, a catalogue of its 15 intents; in scope its
    questions of `split`, out of scope 450 questions of `split` of the other domains and 450
    of `oos_<split>` (each evenly spaced)."""
    data = clinc150(split, data_root)
    table = clinc150_domains(data_root)
    oos = [(q, i) for q, i in data.evaluation if i == "oos"]
    out = []
    for k in shots:
        for domain, intents in table.items():
            if domains and domain not in domains:
                continue
            mine = set(intents)
            part = IntentData(f"clinc150-{domain}",
                              [(q, i) for q, i in data.train if i in mine], [])
            inside = [(q, i) for q, i in data.evaluation if i in mine]
            others = [(q, "oos") for q, i in data.evaluation if i != "oos" and i not in mine]
            evaluation = inside + subset(others, OTHER_DOMAINS) + subset(oos, OOS_PER_DOMAIN)
            cases = to_cases(IntentData(part.name, [], evaluation))
            out.append(Benchmark("clinc150-domains", f"CLINC150 {domain}", k,
                                 to_catalog(part, k), tuple(subset(cases, limit)),
                                 group=f"CLINC150 by domain (mean of {len(domains or table)})",
                                 matchers=DOMAIN_MATCHERS))
    return out


def load_benchmarks(names: Sequence[str], shots: Sequence[int], data_root: Path,
                    heldout: Path, limit: int | None, *, domain_shots: Sequence[int] = (10, 4),
                    domains: Sequence[str] | None = None) -> list[Benchmark]:
    out = []
    for name in names:
        if name in PROXIES:
            continue
        if name == "clinc150-domains":
            out += domain_benchmarks(domain_shots, data_root, domains, limit)
        elif name == "clinc150":
            data = clinc150("test", data_root)
            out += [intent_benchmark(name, "CLINC150 test", data, k, limit) for k in shots]
        elif name == "banking77":
            data = banking77(data_root)
            out += [intent_benchmark(name, "BANKING77 test", data, k, limit) for k in shots]
        else:
            catalog = load_catalog(heldout / "catalogue")
            cases = load_cases(heldout / "questions.yaml", catalog)
            out.append(Benchmark(name, "Held-out IT catalogue", None, catalog,
                                 tuple(subset(cases, limit))))
    made = proxies(names, data_root, domains)
    counts = Counter(p.group for p in made)
    out += [Benchmark(p.key, p.title, None, p.catalog, tuple(subset(p.cases, limit)),
                      group=f"{p.group} (mean of {counts[p.group]})", detail=False,
                      matchers=PROXY_MATCHERS) for p in made]
    return out


class Matchers:
    """Builds each selected matcher for a catalogue; the model is loaded once."""

    def __init__(self, names: Sequence[str], threads: int) -> None:
        self.names = list(names)
        self.skipped: list[str] = []
        self.embedder: BenchEmbedder | None = None
        if {"semantic", "semantic-default", "semantic-first-pass", "centroid"} & set(self.names):
            self.embedder = self._load_model(threads)
        if "bm25" in self.names:
            try:
                import bm25s  # noqa: F401
            except ImportError:
                self._skip("bm25", "bm25s is not installed (pip install -e '.[bench]')")
        self.rules: dict[str, Calibration] = {}
        self._asked: tuple[Catalog, SelfTest] | None = None
        """The last catalogue's self-test: the first pass's lines are learnt from the same."""

    def _skip(self, name: str, why: str) -> None:
        self.names.remove(name)
        self.skipped.append(f"{LABELS[name]} not measured: {why}")

    def _load_model(self, threads: int) -> BenchEmbedder | None:
        from bot.matching.embeddings import load_embedder

        try:
            # Uncached: the on-disk cache would turn repeated runs into cache look-ups.
            inner = load_embedder(cache=False)
        except EmbeddingUnavailable as exc:
            for name in ("semantic", "semantic-default", "semantic-first-pass", "centroid"):
                if name in self.names:
                    self._skip(name, str(exc))
            return None
        if "torch" in sys.modules:  # sentence-transformers runs the configured model
            import torch

            # One thread per question: on a busy 2-core machine, two torch threads fight
            # over the cores and a single question takes several times longer.
            torch.set_num_threads(threads)
        return BenchEmbedder(inner)

    def forget(self) -> None:
        if self.embedder is not None:
            self.embedder.forget()

    def remember(self, cases: Sequence[Case]) -> None:
        """Embed these questions in one batch and answer them from it (no latency shown);
        none: back to embedding every question on its own."""
        if self.embedder is None:
            return
        self.embedder.remember = bool(cases)
        if cases:
            self.embedder.embed([c.question for c in cases])

    def ranker(self, name: str, catalog: Catalog) -> Ranker:
        if name == "bm25":
            return BM25Ranker(catalog)
        assert self.embedder is not None
        return CentroidRanker(catalog, self.embedder)

    def calibrate(self, data_root: Path, limit: int | None) -> None:
        """Choose each reference's rule on CLINC150 val, before any test question."""
        references = [n for n in self.names if n in BOUNDS]
        if not references:
            return
        data = clinc150("val", data_root)
        catalog = to_catalog(data, CALIBRATION_SHOTS)
        position = {o.id: i for i, o in enumerate(catalog.offerings)}
        cases = subset(to_cases(data), limit)
        expect = [frozenset(position[e] for e in c.expect) for c in cases]
        for name in references:
            scores = self.ranker(name, catalog).scores_many([c.question for c in cases])
            max_wrong, min_declined = BOUNDS[name]
            self.rules[name] = calibrate_rule(scores, expect, max_wrong=max_wrong,
                                              min_declined=min_declined)

    def build(self, name: str, catalog: Catalog) -> Contender:
        if name == "lexical":
            return Concierge(Matcher(catalog))
        if name in ("semantic", "semantic-default", "semantic-first-pass"):
            assert self.embedder is not None
            plain = Matcher(catalog, semantic=SemanticIndex(catalog, self.embedder))
            if name == "semantic-default":
                return Concierge(plain)
            # As `calibrated` does when a catalogue loads, without the disk cache (every run
            # asks afresh); the first pass's lines are learnt from the same questions.
            if self._asked is None or self._asked[0] is not catalog:
                self._asked = (catalog, self_test(plain, cache=False))
            test = self._asked[1]
            learn = derive_rule if name == "semantic" else first_pass_rule
            return Concierge(plain.with_rule(learn(test, plain.mode, catalog), test))
        return Reference(RuleMatcher(catalog, self.ranker(name, catalog), self.rules[name].rule))


def run(benchmarks: Sequence[Benchmark], matchers: Matchers,
        progress: Callable[[str], None]) -> list[Table]:
    tables = []
    grouped: dict[tuple[str, int | None, bool], list[Table]] = {}
    for bench in benchmarks:
        names = matchers.names
        # By domain, questions come from a batch (their latency is not shown); elsewhere
        # every question reaches the model on its own, as in production.
        matchers.remember(bench.cases if bench.group is not None else ())
        names = [n for n in names if n in bench.matchers]
        if not names:
            continue
        rows = []
        for name in names:
            contender = matchers.build(name, bench.catalog)
            start = time.perf_counter()
            metrics = measure(contender, bench.cases, matchers.forget)
            progress(f"{bench.title}{_shots(bench.shots)}: {LABELS[name]}, "
                     f"{len(bench.cases)} questions in {time.perf_counter() - start:.0f} s")
            rows.append(Row(LABELS[name], metrics))
        baseline = next((r.metrics["ms_median"] for r in rows if r.matcher == LABELS["bm25"]),
                        None)
        for r in rows:
            ms = r.metrics["ms_median"]
            r.metrics["speed_vs_bm25"] = (ms / baseline if baseline and ms is not None
                                          else None)
            if bench.group is not None:  # questions embedded in a batch: no latency to show
                r.metrics.update(ms_median=None, ms_p99=None, speed_vs_bm25=None)
        ins = sum(c.in_scope for c in bench.cases)
        table = Table(bench.title, bench.shots, len(bench.cases), ins, len(bench.cases) - ins,
                      tuple(rows))
        if bench.group is not None:
            grouped.setdefault((bench.group, bench.shots, bench.detail), []).append(table)
        else:
            tables.append(table)
    summaries = [t for (group, shots, detail), parts in grouped.items()
                 for t in mean_tables(group, shots, parts)[:2 if detail else 1]]
    return summaries + tables


def mean_tables(group: str, shots: int | None, parts: Sequence[Table]) -> list[Table]:
    """A group of tables as the mean of each rate (and the worst catalogue's confidently
    wrong), then one row per part and matcher."""
    labels = [r.matcher for r in parts[0].rows]
    rows = []
    for label in labels:
        each = [next(r for r in t.rows if r.matcher == label).metrics for t in parts]
        mean: dict[str, float | None] = {}
        for key in each[0]:
            values = [m[key] for m in each if m[key] is not None]
            mean[key] = float(np.mean(values)) if values else None
        mean["worst_wrong"] = max(m["confidently_wrong"] or 0.0 for m in each)
        rows.append(Row(label, mean))
    detail = tuple(Row(f"{t.dataset.removeprefix('CLINC150 ')}: {r.matcher}", r.metrics)
                   for t in parts for r in t.rows)
    questions = sum(t.questions for t in parts)
    ins = sum(t.in_scope for t in parts)
    return [Table(group, shots, questions, ins, questions - ins, tuple(rows)),
            Table(f"{group.split(' (', maxsplit=1)[0]}, each domain", shots, questions, ins,
                  questions - ins, detail)]


def _shots(shots: int | None) -> str:
    return f", K={shots}" if shots is not None else ""


def _cell(key: str, value: float | None) -> str:
    if value is None:
        return "-"
    if key == "auroc":
        return f"{value:.3f}"
    if key.startswith("ms_"):
        return f"{value:.2f}" if value < 10 else f"{value:.1f}"
    if key == "speed_vs_bm25":
        return f"{value:.1f}"
    return f"{100 * value:.1f}%"


def footnotes(matchers: Matchers) -> list[str]:
    notes = [
        "Rates: top-1, top-3, direct, resolved over in-scope questions; conf. wrong over all "
        "questions; OOS declined over out-of-scope ones. AUROC: in-scope vs out-of-scope by "
        "the top score. ms: one question's decision, median and p99; × BM25 ms: median "
        "time relative to BM25's in the same run.",
        "Concierge semantic: the lines it learns from each catalogue when it loads "
        "(bot/matching/calibration.py: the catalogue's needs, each asked of the catalogue "
        "without it, and the background questions shipped in bot/matching/data/background); "
        "built-in lines: bot/matching/thresholds.py (chosen on CLINC150 val), the rule before "
        "calibration; lexical mode keeps the built-in lines. In-scope declined: in-scope "
        "questions answered 'I don't know'; … right first: of those, the share whose right "
        "offering was ranked first (over all in-scope questions). Worst catalogue wrong: "
        "the highest conf. wrong among a group's catalogues (CLINC150's domains, the "
        "proxies' catalogues).",
        "First pass's lines: the decline line and lead learnt as today, the answer and "
        "margin lines as the first calibration chose them (tests/benchmarks/first_pass.py: "
        "the most right answers to the catalogue's own needs within an estimated 2% "
        "confidently wrong, lowered below the built-in lines where that estimate allowed).",
        "Proxies (tests/benchmarks/proxies.py, training splits only): near-domain, a "
        "catalogue of some intents of one domain with the domain's other intents' questions "
        "out of scope; long questions, five offerings asked two or three training questions "
        "joined into one message, or one after a sentence of context.",
    ]
    for name, cal in matchers.rules.items():
        wrong, declined = BOUNDS[name]
        fit = "" if cal.feasible else " (no rule met both bounds; the closest)"
        notes.append(
            f"{LABELS[name]}: rule chosen on CLINC150 val (K={CALIBRATION_SHOTS}) for the most "
            f"direct answers with ≤ {wrong:.0%} conf. wrong and ≥ {declined:.0%} OOS declined"
            f"{fit}: {cal.rule.describe()}; otherwise the top 3 are offered as choices.")
    if "bm25" in matchers.rules:
        notes.append("BM25: one document per offering (name, summary, needs, keywords), "
                     "bm25s defaults, Snowball stemmer; raw scores, so its rule transfers "
                     "poorly to other catalogues.")
    if "centroid" in matchers.rules:
        notes.append("MiniLM centroid: cosine to the mean of each offering's need embeddings.")
    return notes + matchers.skipped


def render_text(tables: Sequence[Table], notes: Sequence[str]) -> str:
    out = []
    for t in tables:
        header = ["matcher", *(label for _, label in COLUMNS)]
        body = [[r.matcher, *(_cell(k, r.metrics.get(k)) for k, _ in COLUMNS)] for r in t.rows]
        widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
        out.append(f"{t.dataset}{_shots(t.shots)}: {t.questions} questions "
                   f"({t.in_scope} in scope, {t.out_of_scope} out of scope)")
        for row in [header, *body]:
            out.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                 for i, (c, w) in enumerate(zip(row, widths, strict=True))))
        out.append("")
    return "\n".join(out + [f"- {n}" for n in notes]) + "\n"


def render_markdown(tables: Sequence[Table], notes: Sequence[str]) -> str:
    out = []
    for t in tables:
        out.append(f"**{t.dataset}{_shots(t.shots)}** ({t.questions} questions: "
                   f"{t.in_scope} in scope, {t.out_of_scope} out of scope)\n")
        out.append("| matcher | " + " | ".join(label for _, label in COLUMNS) + " |")
        out.append("|---|" + "---:|" * len(COLUMNS))
        out += [f"| {r.matcher} | " + " | ".join(_cell(k, r.metrics.get(k)) for k, _ in COLUMNS)
                + " |" for r in t.rows]
        out.append("")
    return "\n".join(out + [f"- {n}" for n in notes]) + "\n"


def render_json(tables: Sequence[Table], notes: Sequence[str], matchers: Matchers) -> str:
    rules = {LABELS[n]: asdict(c) for n, c in matchers.rules.items()}
    return json.dumps({"tables": [asdict(t) for t in tables], "rules": rules,
                       "notes": list(notes)}, indent=2, ensure_ascii=False) + "\n"


def _names(text: str, allowed: Sequence[str]) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in allowed]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(allowed)}")
    return names


def _positive_ints(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",")]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("comma-separated positive numbers, e.g. 5,10")
    return values


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.quality",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", type=lambda s: _names(s, DATASETS), default=DATASETS,
                        help="comma-separated, from: clinc150-domains, clinc150, banking77, "
                             "heldout, near-domain, long (default: all)")
    parser.add_argument("--shots", type=_positive_ints, default=[5, 10],
                        help="training examples per intent used as needs (default: 5,10)")
    parser.add_argument("--domain-shots", type=_positive_ints, default=[10, 4],
                        help="the same for CLINC150 by domain (default: 10,4)")
    parser.add_argument("--domains", type=lambda s: [d.strip() for d in s.split(",")],
                        default=None, help="CLINC150 domains to run (default: all ten)")
    parser.add_argument("--matchers", type=lambda s: _names(s, MATCHERS), default=MATCHERS,
                        help="comma-separated, from: semantic-default (the built-in lines), "
                             "semantic-first-pass (the first calibration's answer lines), "
                             "semantic (the lines learnt from each catalogue), lexical, bm25, "
                             "centroid (default: all that are installed; by domain only "
                             "Concierge's)")
    parser.add_argument("--limit", type=int, default=None, metavar="N",
                        help="a quick run: N evenly spaced questions per data set (and of "
                             "CLINC150 val for the reference rules)")
    parser.add_argument("--threads", type=int, default=1,
                        help="threads for BLAS and the embedding model (default: 1)")
    parser.add_argument("--data", type=Path, default=BENCHMARKS,
                        help=f"folder with clinc150/ and banking77/ (default: {BENCHMARKS})")
    parser.add_argument("--heldout", type=Path, default=HELDOUT,
                        help="folder with catalogue/ and questions.yaml (default: the "
                             "held-out set in tests/benchmarks/heldout)")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--markdown", action="store_true", help="Markdown tables (README)")
    output.add_argument("--json", action="store_true", help="one JSON document")
    return parser


def limit_blas_threads(threads: int, stack: ExitStack) -> str:
    """Limit numpy's BLAS to `threads` for the run; say which limit applied.

    On 2 cores, OpenBLAS threads that spin after a matrix product take the core from the
    model's next question and double its time."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return "BLAS threads not limited (threadpoolctl is not installed: the `bench` extra)."
    stack.enter_context(threadpool_limits(limits=threads, user_api="blas"))
    return f"Threads: {threads} for BLAS and for the embedding model."


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.limit is not None and args.limit < 1:
        build_parser().error("--limit must be at least 1")

    def progress(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    benchmarks = load_benchmarks(args.datasets, args.shots, args.data, args.heldout, args.limit,
                                 domain_shots=args.domain_shots, domains=args.domains)
    with ExitStack() as limits:
        blas = limit_blas_threads(args.threads, limits)
        matchers = Matchers(args.matchers, args.threads)
        matchers.calibrate(args.data, args.limit)
        tables = run(benchmarks, matchers, progress)
    notes = footnotes(matchers) + [blas]
    if args.json:
        sys.stdout.write(render_json(tables, notes, matchers))
    elif args.markdown:
        sys.stdout.write(render_markdown(tables, notes))
    else:
        sys.stdout.write(render_text(tables, notes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
