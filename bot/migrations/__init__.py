"""Alembic migrations of Concierge's database (run by `bot.migrate`, not by `alembic` itself)."""
