"""Alembic migrations of Concierge's database, run by `bot.store.migrate`, not by `alembic`."""
