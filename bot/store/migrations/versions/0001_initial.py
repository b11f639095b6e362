"""Initial schema: event dedupe, reload generation, questions, feedback, request clicks.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

Databases made before migrations existed already hold `processed_events` (created
directly by the first Slack release); it is kept as it is.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    if not sa.inspect(op.get_bind()).has_table("processed_events"):
        op.create_table(
            "processed_events",
            sa.Column("event_id", sa.String(64), primary_key=True),
            sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        )
        op.create_index("ix_processed_events_claimed_at", "processed_events", ["claimed_at"])
    op.create_table(
        "catalogue_state",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "questions",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("asked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("team_id", sa.String(64), nullable=True),
        sa.Column("surface", sa.String(16), nullable=False),
        sa.Column("user_hash", sa.String(64), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("offering_id", sa.String(200), nullable=True),
        sa.Column("nearest_offering_id", sa.String(200), nullable=True),
        sa.Column("choices", sa.Text(), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("chosen_offering_id", sa.String(200), nullable=True),
        sa.Column("none_fitted", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_questions_asked_at", "questions", ["asked_at"])
    op.create_table(
        "feedback",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("given_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("question_id", BigId,
                  sa.ForeignKey("questions.id", ondelete="CASCADE"), nullable=True),
        sa.Column("offering_id", sa.String(200), nullable=False),
        sa.Column("helpful", sa.Boolean(), nullable=False),
        sa.Column("user_hash", sa.String(64), nullable=True),
    )
    op.create_index("ix_feedback_given_at", "feedback", ["given_at"])
    op.create_index("ix_feedback_question_id", "feedback", ["question_id"])
    op.create_table(
        "request_clicks",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("clicked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("question_id", BigId,
                  sa.ForeignKey("questions.id", ondelete="CASCADE"), nullable=True),
        sa.Column("offering_id", sa.String(200), nullable=False),
        sa.Column("user_hash", sa.String(64), nullable=True),
    )
    op.create_index("ix_request_clicks_clicked_at", "request_clicks", ["clicked_at"])
    op.create_index("ix_request_clicks_question_id", "request_clicks", ["question_id"])


def downgrade() -> None:
    op.drop_table("request_clicks")
    op.drop_table("feedback")
    op.drop_table("questions")
    op.drop_table("catalogue_state")
