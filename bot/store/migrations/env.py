"""Alembic's environment: always given a connection by `bot.store.migrate` (online mode only)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from bot.store.tables import Base

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError("run migrations with `concierge db upgrade`, which passes a connection")

context.configure(connection=connection, target_metadata=Base.metadata,
                  # SQLite cannot ALTER most things; batch mode copies the table instead.
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
