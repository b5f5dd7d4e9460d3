"""inventory: confirmed and four-eyes manual changes

A curator's manual change that a `four_eyes` market holds for a second curator is a held
change (reason `four_eyes`) that records who asked for it: `requested_by`, the actor who
may not approve it.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("inventory_held") as batch:
        batch.add_column(sa.Column("requested_by", sa.String(120), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("inventory_held") as batch:
        batch.drop_column("requested_by")
