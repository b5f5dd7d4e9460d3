"""scenes: display_revision (who changed a display's scene file through the studio, when,
the unified diff and the document after)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "display_revision",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("market", sa.String(64), nullable=False, index=True),
        sa.Column("display", sa.String(64), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("actor", sa.String(120), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("etag", sa.String(80), nullable=False),
        sa.Column("diff", sa.Text, nullable=False),
        sa.Column("document", sa.JSON, nullable=True),
        sa.UniqueConstraint("market", "display", "number"),
    )


def downgrade() -> None:
    op.drop_table("display_revision")
