"""Alembic, driven from code: the migrations ship inside the package (`bot/store/migrations`).

`Store.upgrade()` calls `run_upgrade` on a connection it has locked, so the
migration scripts never open their own; `concierge db upgrade` goes through
`Store` too. No `alembic.ini`: an installed package has no checkout to hold one.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@cache
def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships migrations
        raise RuntimeError(f"no migrations in {MIGRATIONS_DIR}")
    return head


def current_revision(connection: Connection) -> str | None:
    """The revision recorded in the database (None: never migrated)."""
    return MigrationContext.configure(connection).get_current_revision()


def run_upgrade(connection: Connection) -> list[str]:
    """Upgrade to the newest revision on `connection`; return the revisions applied."""
    before = current_revision(connection)
    if before == head_revision():
        return []
    command.upgrade(alembic_config(connection), "head")
    script = ScriptDirectory.from_config(alembic_config())
    applied = [r.revision for r in script.iterate_revisions(head_revision(), before)]
    return list(reversed(applied))
