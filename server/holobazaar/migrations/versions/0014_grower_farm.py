"""accounts: a grower's grant names the farm (producer) of the market it covers

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL for every role but grower; a grower's (user, role, market) row names one farm.
    with op.batch_alter_table("user_role") as batch:
        batch.add_column(sa.Column("farm", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("user_role") as batch:
        batch.drop_column("farm")
