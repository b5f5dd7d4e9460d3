"""scenes: scheduled_display_publish (a display's draft document pinned to publish at a
time)

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scheduled_display_publish",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("market", sa.String(64), nullable=False, index=True),
        sa.Column("display", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("base_etag", sa.String(80), nullable=False),
        sa.Column("document", sa.JSON, nullable=False),
        sa.Column("actor", sa.String(120), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(16), nullable=False, index=True),
        sa.Column("result", sa.String(300), nullable=False, server_default=""),
    )


def downgrade() -> None:
    op.drop_table("scheduled_display_publish")
