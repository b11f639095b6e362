"""`concierge stats|gaps|owners` and `concierge db upgrade`: the admin reports on the terminal.

They read `DATABASE_URL` (else the SQLite file in `CONCIERGE_DATA_DIR`), the same
database the Slack app writes, and never change it: a database that is missing
or not migrated is an error that says what to run (`concierge db upgrade`).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any, TextIO

from sqlalchemy.exc import SQLAlchemyError

from bot.admin.reports import (
    DEFAULT_DAYS,
    MAX_DAYS,
    gaps_report,
    load_activity,
    owners_report,
    stats_report,
)
from bot.catalogue.loader import load_catalog
from bot.errors import StoreUnavailable
from bot.settings import knowledge_dir
from bot.store.database import Store, database_url
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
                            "$CONCIERGE_KNOWLEDGE, else the sample catalogue)")
        p.set_defaults(handler=cmd_report, report=name)

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


def cmd_report(args: argparse.Namespace, out: TextIO) -> int:
    catalog = load_catalog(knowledge_dir(args.knowledge))
    store = open_for_reading()
    try:
        activity = load_activity(store, args.days)
    except SQLAlchemyError as exc:
        raise StoreUnavailable(f"cannot read the database ({first_line(exc)})",
                               url=store.url) from exc
    finally:
        store.close()
    report = REPORTS[args.report][2](activity, catalog)
    if args.json:
        out.write(json.dumps(report.to_json(), ensure_ascii=False) + "\n")
    else:
        out.write(report.view().text() + "\n")
    return 0


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
