"""pulse: reactions to recipe cards (pulse_event.recipe), a reject reason on notes

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch_alter_table: SQLite cannot drop columns in place (downgrade).
    with op.batch_alter_table("pulse_event") as batch:
        batch.add_column(sa.Column("recipe", sa.String(64), nullable=True))
    with op.batch_alter_table("pulse_feedback") as batch:
        batch.add_column(sa.Column("reason", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("pulse_feedback") as batch:
        batch.drop_column("reason")
    with op.batch_alter_table("pulse_event") as batch:
        batch.drop_column("recipe")
