"""show runs: each show runner's state (standing-by cue, status, fired cues)

Revision ID: 0006
Revises: 0003
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "show_run",
        sa.Column("market", sa.String(64), primary_key=True),
        sa.Column("show", sa.String(64), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("standby", sa.String(16), nullable=True),
        sa.Column("serial", sa.Integer, nullable=False),
        sa.Column("started_at", sa.Float, nullable=True),
        sa.Column("paused_at", sa.Float, nullable=True),
        sa.Column("fired", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("show_run")
