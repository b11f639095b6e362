"""Owner digests: one claim per period, and each message of it.

Revision ID: 0004
Revises: 0005
Create Date: 2026-11-30

`digest_runs` has one row per digest period (its name is the primary key, so exactly one
worker on any host claims it, as `processed_events` does for events) with the worker
sending it; `digest_deliveries` one row per owner team and recipient, written before the
message is posted and settled after, so that a worker taking over a dead one's period
knows what went out and what is in doubt (`bot.store.digests`).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "digest_runs",
        sa.Column("period", sa.String(40), primary_key=True),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("takeovers", sa.Integer(), nullable=False, server_default=sa.text("0")),
    )
    op.create_table(
        "digest_deliveries",
        sa.Column("period", sa.String(40),
                  sa.ForeignKey("digest_runs.period", ondelete="CASCADE"), primary_key=True),
        sa.Column("team_key", sa.String(32), primary_key=True),
        sa.Column("recipient", sa.String(100), primary_key=True),
        sa.Column("team", sa.Text(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(64), nullable=True),
        sa.Column("ts", sa.String(64), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("error", sa.String(500), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("digest_deliveries")
    op.drop_table("digest_runs")
