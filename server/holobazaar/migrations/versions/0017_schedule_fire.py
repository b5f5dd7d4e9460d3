"""scenes: schedule_fire (each applied edge of a market's opening hours and display
schedules, claimed once across the cluster)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "schedule_fire",
        sa.Column("market", sa.String(64), primary_key=True),
        sa.Column("edge_at", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("fired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("node", sa.String(120), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("skipped", sa.Integer, nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.drop_table("schedule_fire")
