"""One rating per answer, admins' own questions marked, and the catalogue that was served.

Revision ID: 0003
Revises: 0004
Create Date: 2026-11-30

- `feedback`: at most one row per question. Only the asker may rate an answer, and a
  second click changes the rating instead of adding one (five clicks on "Not what I need"
  made five rows). Older duplicates are reduced to the newest rating of each question.
- `questions.by_admin`: a question asked by an admin (trying Concierge out, or a slip such
  as `/concierge stats abc`); the reports leave these out and say how many.
- `catalogue_state.knowledge` and `.offerings`: the knowledge directory `concierge serve`
  loaded and a digest of its offering ids, so the reports on the command line name
  offerings from the catalogue the records came from, or say that they cannot.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0004"
branch_labels = None
depends_on = None

ONE_PER_QUESTION = "question_id IS NOT NULL"


def upgrade() -> None:
    op.execute("DELETE FROM feedback WHERE question_id IS NOT NULL AND id NOT IN "
               "(SELECT MAX(id) FROM feedback WHERE question_id IS NOT NULL "
               "GROUP BY question_id)")
    op.drop_index("ix_feedback_question_id", table_name="feedback")
    op.create_index("ux_feedback_question_id", "feedback", ["question_id"], unique=True,
                    sqlite_where=sa.text(ONE_PER_QUESTION),
                    postgresql_where=sa.text(ONE_PER_QUESTION))
    with op.batch_alter_table("questions") as batch:
        batch.add_column(sa.Column("by_admin", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
    with op.batch_alter_table("catalogue_state") as batch:
        batch.add_column(sa.Column("knowledge", sa.Text(), nullable=True))
        batch.add_column(sa.Column("offerings", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("catalogue_state") as batch:
        batch.drop_column("offerings")
        batch.drop_column("knowledge")
    with op.batch_alter_table("questions") as batch:
        batch.drop_column("by_admin")
    op.drop_index("ux_feedback_question_id", table_name="feedback")
    op.create_index("ix_feedback_question_id", "feedback", ["question_id"])
