"""`concierge stats|gaps|owners` and `concierge db upgrade`: the admin reports on the terminal.

They read `DATABASE_URL` (else the SQLite file in `CONCIERGE_DATA_DIR`), the same
database the Slack app writes, and never change it: a database that is missing
or not migrated is an error that says what to run (`concierge db upgrade`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy.exc import SQLAlchemyError

from bot.admin.chart import (
    HEIGHT_PX,
    INSTALL_HINT,
    WIDTH_PX,
    Chart,
    chart_available,
    daily_series,
    stats_chart,
)
from bot.admin.reports import (
    DEFAULT_DAYS,
    MAX_DAYS,
    gaps_report,
    load_activity,
    owners_report,
    requests_report,
    stats_report,
)
from bot.catalogue.loader import load_catalog
from bot.catalogue.models import Catalog
from bot.errors import ConfigError, StoreUnavailable
from bot.settings import knowledge_dir
from bot.store.database import Store, database_url, offerings_digest
from bot.store.migrate import head_revision

DATABASE_HELP = ("database: $DATABASE_URL, else the SQLite file "
                 "$CONCIERGE_DATA_DIR/concierge.sqlite3 (CONCIERGE_DATA_DIR defaults to ./data)")

REPORTS: dict[str, tuple[str, str, Callable[..., Any]]] = {
    "stats": ("questions, answer rates, feedback, top offerings, latency",
              "Questions asked in the period; the share answered, clarified and declined; "
              "helpful vs not-helpful feedback; Request clicks; the most served offerings; "
              "median and p95 latency.", stats_report),
    "gaps": ("unmet needs, grouped by similarity, most frequent first",
             "Needs Concierge could not meet in the period (declined, a \"Did you mean…\" "
             "left without a choice, or rated not helpful), grouped so that many wordings "
             "of one need are one line with a count and examples, with the nearest "
             "offering and its owner. This is what service owners should add as needs or "
             "as new offerings.", gaps_report),
    "owners": ("offerings per owner team, unasked and unhelpful offerings",
               "Every owner team's offerings with their questions, feedback and Request "
               "clicks in the period; live offerings nobody asked for; the offerings rated "
               "not helpful most often.", owners_report),
    "requests": ("requests made in Slack and where each delivery stands",
                 "Requests made with a form in Slack in the period, newest first: the "
                 "offering, who asked, the owner's status (open, taken, done, declined) and "
                 "each delivery (the owner's channel, a webhook, the requester's direct "
                 "messages) as delivered, pending with its last error and next attempt, or "
                 "failed; undeliverable ones first.", requests_report),
}


def days_arg(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number of days, not {text!r}"
                                         ) from None
    if not 1 <= value <= MAX_DAYS:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_DAYS}, not {value}")
    return value


def add_report_parsers(sub: Any) -> None:
    """Add `stats`, `gaps`, `owners` and `db` to the `concierge` command's subparsers."""
    for name, (summary, description, _) in REPORTS.items():
        p: argparse.ArgumentParser = sub.add_parser(
            name, help=summary, description=f"{description} Reads the {DATABASE_HELP}.")
        p.add_argument("--days", type=days_arg, default=DEFAULT_DAYS, metavar="N",
                       help=f"the period: the last N days (default {DEFAULT_DAYS})")
        p.add_argument("--json", action="store_true", help="print the report as one JSON object")
        p.add_argument("--knowledge", metavar="DIR",
                       help="knowledge directory that names offerings and owners (default: "
                            "$CONCIERGE_KNOWLEDGE, else the one `concierge serve` last "
                            "loaded when it can be read here, else the sample catalogue)")
        if name == "stats":
            p.add_argument("--chart", metavar="FILE.png", type=Path,
                           help="also draw questions per day (stacked by decision) and the "
                                f"share rated helpful as a PNG (needs {INSTALL_HINT})")
        p.set_defaults(handler=cmd_report, report=name, chart=None)

    db = sub.add_parser("db", help="manage Concierge's database (migrations)",
                        description=f"Database maintenance. Works on the {DATABASE_HELP}.")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION",
                               help="upgrade: apply migrations; status: show the revision")
    upgrade = db_sub.add_parser(
        "upgrade", help="apply every schema migration not yet applied",
        description="Bring the schema to the newest revision (Alembic migrations shipped "
                    "with Concierge). `concierge serve` does this at start too; run it "
                    "yourself before starting several hosts on a new database.")
    upgrade.set_defaults(handler=cmd_db_upgrade)
    status = db_sub.add_parser("status", help="show the database's schema revision",
                               description="Print the database URL (password hidden), its "
                                           "schema revision and the newest one. Exit 1 when "
                                           "an upgrade is due.")
    status.set_defaults(handler=cmd_db_status)


def open_for_reading() -> Store:
    """The store, checked to exist and to be migrated; never creates or changes anything."""
    url = database_url()
    store = Store(url, migrate=False)
    if store.sqlite_file is not None and not store.sqlite_file.is_file():
        store.close()
        raise StoreUnavailable("no database file yet (Concierge creates it when `concierge "
                               "serve` starts, or run `concierge db upgrade`); set "
                               "DATABASE_URL or CONCIERGE_DATA_DIR to read another",
                               url=store.url)
    try:
        current, head = store.schema_revision()
    except SQLAlchemyError as exc:
        store.close()
        raise StoreUnavailable(f"cannot read the database ({first_line(exc)})",
                               url=store.url) from exc
    if current != head:
        store.close()
        raise StoreUnavailable(f"schema is at {current or 'nothing'}, this Concierge needs "
                               f"{head}: run `concierge db upgrade`", url=store.url)
    return store


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


@contextmanager
def reading() -> Iterator[Store]:
    """The store for a report (`open_for_reading`), closed afterwards; a database error on
    the way is a `StoreUnavailable` naming the database, never a traceback."""
    store = open_for_reading()
    try:
        yield store
    except SQLAlchemyError as exc:
        raise StoreUnavailable(f"cannot read the database ({first_line(exc)})",
                               url=store.url) from exc
    finally:
        store.close()


def cmd_report(args: argparse.Namespace, out: TextIO) -> int:
    with reading() as store:
        catalog = catalogue_for_reports(args.knowledge, store, sys.stderr)
        activity = load_activity(store, args.days)
    report = REPORTS[args.report][2](activity, catalog)
    if args.json:
        out.write(json.dumps(report.to_json(), ensure_ascii=False) + "\n")
    else:
        out.write(report.view().text() + "\n")
    if args.report != "stats":
        return 0
    if args.chart is None:
        if not args.json:
            how = "" if chart_available() else f"install the chart extra ({INSTALL_HINT}), then "
            out.write(f"\nChart: {how}concierge stats --chart stats.png\n")
        return 0
    return write_chart(stats_chart(daily_series(activity)), args.chart)


def write_chart(chart: Chart, path: Path) -> int:
    """Write the chart to `path`, saying so on stderr (stdout carries the report)."""
    if chart.png is None:
        print(f"concierge: {chart.note}", file=sys.stderr)
        return 0 if chart_available() else 2
    try:
        path.write_bytes(chart.png)
    except OSError as exc:
        raise ConfigError(f"cannot write {path} ({exc.strerror or exc})",
                          setting="--chart") from exc
    print(f"concierge: chart written to {path} ({WIDTH_PX}×{HEIGHT_PX} PNG): {chart.alt}",
          file=sys.stderr)
    return 0


def catalogue_for_reports(flag: str | None, store: Store, err: TextIO) -> Catalog:
    """The catalogue that names the offerings in the records.

    `--knowledge` or `CONCIERGE_KNOWLEDGE` when given; else the knowledge directory
    `concierge serve` last loaded (recorded in the database) when it can be read here; else
    the default. Run elsewhere, the default sample catalogue marked every offering served
    in production "no longer in the catalogue": when the one used is not the one served
    (by its offering ids), `err` says so.
    """
    served = store.served()
    chosen = flag or os.environ.get("CONCIERGE_KNOWLEDGE", "").strip() or None
    if chosen is None and served is not None and Path(served.knowledge).is_dir():
        path = Path(served.knowledge)
        print(f"concierge: offerings named from {path}, the catalogue `concierge serve` "
              "last loaded", file=err)
    else:
        path = knowledge_dir(chosen)
    catalog = load_catalog(path)
    if served is not None and offerings_digest(o.id for o in catalog) != served.offerings:
        print(f"concierge: warning: {path} is not the catalogue `concierge serve` last loaded "
              f"({served.knowledge}): offerings it lacks show as \"no longer in the "
              f"catalogue\"; pass --knowledge with a copy of the served one", file=err)
    return catalog


def cmd_db_upgrade(args: argparse.Namespace, out: TextIO) -> int:
    try:
        store = Store(database_url(), migrate=False)
        try:
            applied = store.upgrade()
            current, _ = store.schema_revision()
        finally:
            store.close()
    except SQLAlchemyError as exc:
        raise StoreUnavailable(f"upgrade failed ({first_line(exc)})",
                               url=database_url()) from exc
    if applied:
        print(f"{store.url}: applied {', '.join(applied)}; now at {current}", file=out)
    else:
        print(f"{store.url}: already at {current}, nothing to do", file=out)
    return 0


def cmd_db_status(args: argparse.Namespace, out: TextIO) -> int:
    store = Store(database_url(), migrate=False)
    try:
        if store.sqlite_file is not None and not store.sqlite_file.is_file():
            # Connecting would create the file; report it as missing instead.
            current, head = None, head_revision()
        else:
            current, head = store.schema_revision()
    except SQLAlchemyError as exc:
        raise StoreUnavailable(f"cannot read the database ({first_line(exc)})",
                               url=store.url) from exc
    finally:
        store.close()
    print(f"{store.url}: at {current or 'nothing (not created yet)'}; newest {head}", file=out)
    return 0 if current == head else 1
