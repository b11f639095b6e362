"""Claimed, not yet answered: event bodies, owners and answer times; worker heartbeats.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23

`processed_events` gains what a live worker needs to answer an event whose owner died
after acknowledging it (`bot.store.takeover`): the event as JSON, the owning worker, when it
was answered and how often it was taken over. `worker_heartbeats` records when each
worker was last alive.

Claims made before this revision keep `body` and `owner` empty: nothing can replay them,
and the sweep (and its partial index) skips rows without a body, so they need no backfill.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

PENDING = "answered_at IS NULL AND body IS NOT NULL"


def upgrade() -> None:
    with op.batch_alter_table("processed_events") as batch:
        batch.add_column(sa.Column("body", sa.Text(), nullable=True))
        batch.add_column(sa.Column("owner", sa.String(200), nullable=True))
        batch.add_column(sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("takeovers", sa.Integer(), nullable=False,
                                   server_default=sa.text("0")))
    op.create_index("ix_processed_events_pending", "processed_events", ["claimed_at"],
                    sqlite_where=sa.text(PENDING), postgresql_where=sa.text(PENDING))
    op.create_table(
        "worker_heartbeats",
        sa.Column("worker_id", sa.String(200), primary_key=True),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("worker_heartbeats")
    op.drop_index("ix_processed_events_pending", table_name="processed_events")
    with op.batch_alter_table("processed_events") as batch:
        batch.drop_column("takeovers")
        batch.drop_column("answered_at")
        batch.drop_column("owner")
        batch.drop_column("body")
