"""Requests made in Slack and their outbox: what each must deliver, claimed by one worker.

Revision ID: 0005
Revises: 0002
Create Date: 2026-11-24

`requests` holds each submitted request form (the requester's Slack id and answers with
it, purged after the retention period) and the owner's status; `request_outbox` what it
must deliver, each row claimed with a lease by the worker delivering it
(`bot.outbox.courier`). A partial index keeps the delivery loop's read of pending rows
small.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0002"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
DUE = "state = 'pending'"


def upgrade() -> None:
    op.create_table(
        "requests",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("submission_key", sa.String(64), nullable=False),
        sa.Column("team_id", sa.String(64), nullable=True),
        sa.Column("offering_id", sa.String(200), nullable=False),
        sa.Column("requester_id", sa.String(64), nullable=False),
        sa.Column("requester_name", sa.String(200), nullable=True),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_by", sa.String(64), nullable=True),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("status_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("submission_key", name="uq_requests_submission_key"),
    )
    op.create_index("ix_requests_submitted_at", "requests", ["submitted_at"])
    op.create_table(
        "request_outbox",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("request_id", BigId, sa.ForeignKey("requests.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("payload", sa.Text(), nullable=True),
        sa.Column("idempotency_key", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("lease_owner", sa.String(200), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("message_channel", sa.String(64), nullable=True),
        sa.Column("message_ts", sa.String(32), nullable=True),
        sa.UniqueConstraint("idempotency_key", name="uq_request_outbox_idempotency_key"),
    )
    op.create_index("ix_request_outbox_request_id", "request_outbox", ["request_id"])
    op.create_index("ix_request_outbox_due", "request_outbox", ["next_attempt_at"],
                    sqlite_where=sa.text(DUE), postgresql_where=sa.text(DUE))


def downgrade() -> None:
    op.drop_table("request_outbox")
    op.drop_table("requests")
