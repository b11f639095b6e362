"""`concierge suggest`: needs to add to the catalogue, learnt from the question log.

Prints the suggestions with a YAML snippet per offering, `--json` the same as data, or
`--patch` one unified diff against the knowledge files (for `git apply`). It reads the
database and the knowledge directory and writes neither.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from typing import Any, TextIO

from bot.admin.reports import DEFAULT_DAYS, load_activity
from bot.admin.suggest import suggest
from bot.catalogue.loader import load_catalog
from bot.catalogue.models import Catalog
from bot.cli.options import add_knowledge, add_matcher
from bot.cli.reports import DATABASE_HELP, days_arg, reading
from bot.errors import ConfigError
from bot.matching.engine import build_matcher
from bot.settings import knowledge_dir, matcher_mode

DESCRIPTION = f"""\
Needs to add to offerings, learnt from what people asked: questions whose asker picked an
offering after "Did you mean…", rated its answer helpful, clicked its Request button, or
asked again in other words and then got it. Questions the catalogue already answers
outright with that offering are left out; alike questions are grouped and ranked by how
often and how recently they were asked. For each suggested need it shows what the matcher
decides today and with the need added, and any question answered with another offering
today that would change. Each offering gets a YAML snippet that passes `concierge check`;
--patch prints them all as one diff. Nothing is ever written to the knowledge directory.
Reads the {DATABASE_HELP}."""


def add_suggest_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "suggest", help="needs to add, learnt from real questions",
        description=DESCRIPTION)
    p.add_argument("--days", type=days_arg, default=DEFAULT_DAYS, metavar="N",
                   help=f"the period: the last N days (default {DEFAULT_DAYS})")
    p.add_argument("--owner", metavar="TEAM",
                   help="only the offerings of this owner team (as written in owner.team)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print the suggestions as JSON")
    out.add_argument("--patch", action="store_true",
                     help="print a unified diff adding the suggested needs to the knowledge "
                          "files, comments and order kept (apply with `git apply`)")
    add_knowledge(p)
    add_matcher(p, "to judge the suggestions with")
    p.set_defaults(handler=cmd_suggest)


def owner_team(catalog: Catalog, wanted: str | None) -> str | None:
    """The owner team named `wanted` (case does not matter); a `ConfigError` listing the
    teams when there is none."""
    if wanted is None:
        return None
    teams = sorted({o.owner.team for o in catalog}, key=str.casefold)
    for team in teams:
        if team.casefold() == wanted.strip().casefold():
            return team
    close = difflib.get_close_matches(wanted, teams, n=1, cutoff=0.5)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ConfigError(f"no owner team {wanted!r}{hint}; the teams are: {', '.join(teams)}",
                      setting="--owner")


def cmd_suggest(args: argparse.Namespace, out: TextIO) -> int:
    catalog = load_catalog(knowledge_dir(args.knowledge))
    team = owner_team(catalog, args.owner)
    with reading() as store:
        activity = load_activity(store, args.days)
    report = suggest(activity, build_matcher(catalog, matcher_mode(args.matcher)), team=team)
    if args.json:
        out.write(json.dumps(report.to_json(), ensure_ascii=False) + "\n")
    elif args.patch:
        patch = report.patch()
        out.write(patch)
        if not patch:
            print("concierge: no suggested needs to patch in this period", file=sys.stderr)
    else:
        out.write(report.view().text() + "\n")
    return 0
