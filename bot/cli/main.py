"""The `concierge` command: ask, check, eval, serve, the admin reports and `db`.

Exit codes: 0 success, 1 a check or evaluation failed, 2 bad usage or configuration.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import TextIO

from bot import __version__
from bot.catalogue.loader import check_knowledge, load_catalog
from bot.catalogue.models import Catalog, Problem
from bot.cli.digest import add_digest_parser
from bot.cli.options import add_knowledge, add_matcher
from bot.cli.render import decision_json, decision_text, problem_json
from bot.cli.reports import add_report_parsers
from bot.cli.suggest import add_suggest_parser
from bot.errors import ConciergeError, KnowledgeError
from bot.matching.calibration import too_small
from bot.matching.engine import build_matcher
from bot.matching.evaluate import evaluate, load_cases
from bot.matching.quality import quality_report
from bot.outbox.webhooks import known_for_check
from bot.settings import knowledge_dir, matcher_mode
from bot.slack.serve import add_serve_parser
from bot.wording import plural

Handler = Callable[[argparse.Namespace, TextIO], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="concierge",
        description="Find the IT offering that fulfils a need: product or service, owner, "
                    "and how to request it.")
    parser.add_argument("--version", action="version", version=f"concierge {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    ask = sub.add_parser("ask", help="answer questions from the catalogue",
                         description="Answer each QUERY; with none, read one question per line "
                                     "from standard input (batch mode).")
    ask.add_argument("query", nargs="*", metavar="QUERY", help="a need in plain words")
    ask.add_argument("--json", action="store_true",
                     help="print one JSON object per question, in input order")
    add_knowledge(ask)
    add_matcher(ask)
    ask.set_defaults(handler=cmd_ask)

    check = sub.add_parser("check", help="validate the knowledge directory",
                           description="Report every problem as path:line: field: message. "
                                       "Exit 1 on any error; warnings do not fail (with "
                                       "--strict they do). The webhook names request forms "
                                       "deliver to are checked against those configured here "
                                       "(CONCIERGE_WEBHOOK_<NAME>_URL), listed in "
                                       "CONCIERGE_WEBHOOKS or given with --webhooks; with "
                                       "none known, each is a warning.")
    check.add_argument("--quality", action="store_true",
                       help="also report how well the catalogue can be matched: how often "
                            "each offering's own needs find it, confused offerings, needs "
                            "copied between offerings, offerings with few needs, needs that "
                            "fit their offering below the decline line")
    check.add_argument("--json", action="store_true",
                       help="print one JSON object (problems, and the quality report with "
                            "--quality)")
    check.add_argument("--strict", action="store_true",
                       help="exit 1 on warnings and quality findings too (for CI)")
    check.add_argument("--webhooks", metavar="NAMES",
                       help="webhook names configured where Concierge runs, comma-separated "
                            "(for a CI job without the URLs and secrets), e.g. "
                            "servicedesk,facilities")
    add_knowledge(check)
    add_matcher(check, "for the quality report")
    check.set_defaults(handler=cmd_check)

    ev = sub.add_parser("eval", help="measure the matcher on golden questions",
                        description="Run golden questions (a YAML list of {q, expect: [ids]}, "
                                    "[] = should be declined, optional known_miss: reason) and "
                                    "print the rates and the misses. Exit 1 when any case "
                                    "fails, or when a known miss passes.")
    ev.add_argument("--cases", required=True, metavar="FILE", help="golden questions YAML")
    ev.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    add_knowledge(ev)
    add_matcher(ev)
    ev.set_defaults(handler=cmd_eval)

    add_serve_parser(sub)
    add_report_parsers(sub)
    add_suggest_parser(sub)
    add_digest_parser(sub)
    return parser


def _print_problems(problems: Iterable[Problem], out: TextIO) -> None:
    for p in problems:
        print(p.render(), file=out)


def _load(args: argparse.Namespace) -> Catalog:
    return load_catalog(knowledge_dir(args.knowledge))


def cmd_ask(args: argparse.Namespace, out: TextIO) -> int:
    catalog = _load(args)
    matcher = build_matcher(catalog, matcher_mode(args.matcher))
    questions: Iterable[str] = args.query or (line.rstrip("\r\n") for line in sys.stdin)
    for n, question in enumerate(questions):
        decision = matcher.decide(question)
        if args.json:
            line = {**decision_json(decision), "rule": matcher.rule.as_json()}
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
        else:
            out.write(("\n" if n else "") + decision_text(decision, catalog) + "\n")
        out.flush() if not args.query and not args.json else None
    return 0


def cmd_check(args: argparse.Namespace, out: TextIO) -> int:
    report = check_knowledge(knowledge_dir(args.knowledge),
                             webhooks=known_for_check(listed=args.webhooks))
    if report.files == 0 and any(p.field == "knowledge" and p.line == 0
                                 for p in report.problems):
        _print_problems(report.problems, sys.stderr)
        return 2
    quality = (quality_report(build_matcher(report.catalog, matcher_mode(args.matcher)))
               if args.quality and report.catalog is not None else None)
    small = too_small(report.catalog) if report.catalog is not None else None
    errors, warnings = len(report.errors), len(report.warnings)
    findings = len(quality.findings) if quality is not None else 0
    failed = errors > 0 or (args.strict and warnings + findings > 0)
    if args.json:
        out.write(json.dumps({
            "ok": not failed, "files": report.files,
            "offerings": len(report.catalog) if report.catalog is not None else None,
            "problems": [problem_json(p) for p in report.problems],
            "calibration": "default (catalogue too small)" if small else "calibrated",
            "quality": quality.as_json() if quality is not None else None,
        }, ensure_ascii=False) + "\n")
        return 1 if failed else 0
    _print_problems(report.problems, out)
    if report.catalog is None:
        print(report.verdict(), file=out)
        return 1
    if quality is not None:
        for line in quality.lines():
            print(line, file=out)
    print(report.verdict() + (f", {plural(findings, 'quality finding')}"
                              if quality is not None else ""), file=out)
    if quality is None and small is not None:
        print(f"note: decision rule: default. {small}", file=out)
    return 1 if failed else 0


def cmd_eval(args: argparse.Namespace, out: TextIO) -> int:
    catalog = _load(args)
    cases = load_cases(args.cases, catalog)
    matcher = build_matcher(catalog, matcher_mode(args.matcher))
    report = evaluate(matcher, cases)
    m = report.metrics()
    if args.json:
        out.write(json.dumps({"matcher": matcher.mode, "rule": matcher.rule.as_json(), **m})
                  + "\n")
    else:
        print(f"matcher: {matcher.mode}; {int(m['questions'])} questions "
              f"({int(m['in_scope'])} in scope, {int(m['out_of_scope'])} out of scope)", file=out)
        print(f"decision rule: {matcher.rule.describe()}", file=out)
        rows = [("direct hit", m["direct"]), ("resolved (right answer or right choice)",
                                                m["resolved"]),
                ("confidently wrong", m["confidently_wrong"]),
                ("declined out of scope", m["oos_declined"]),
                ("top-1", m["top1"]), ("top-3", m["top3"])]
        for label, value in rows:
            print(f"  {label:<42} {value:6.1%}", file=out)
        print(f"  {'ms per question (median / p99)':<42} {m['ms_median']:.2f} / "
              f"{m['ms_p99']:.2f}", file=out)
        for o in report.outcomes:
            got = o.decision.offering.id if o.decision.offering else (
                "/".join(c.id for c in o.decision.choices) or "-")
            want = ", ".join(sorted(o.case.expect)) or "(decline)"
            where = f"{args.cases}:{o.case.line}: {o.case.question!r}"
            if not o.passed:
                label = "KNOWN MISS" if o.case.known_miss else "MISS"
                print(f"{label} {where}: expected {want}, got {o.decision.kind.value} {got}",
                      file=out)
            elif o.case.known_miss:
                print(f"FIXED {where}: passes now; remove its known_miss", file=out)
    return 1 if report.failures else 0


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args, out)
    except KnowledgeError as exc:
        _print_problems(exc.problems, sys.stderr)
        print(f"concierge: the knowledge directory has errors ({exc})", file=sys.stderr)
        return 2
    except ConciergeError as exc:
        print(f"concierge: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
