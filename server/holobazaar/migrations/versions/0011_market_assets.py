"""assets: one asset record per market upload (its own name, market and uploader)

Until now a stored asset's id was the hash of its input, so the same bytes uploaded by a
second market returned the first market's record. Now the input's hash (with its processing
options) is `source`, shared by every record made from it, and each record's id is derived
from (source, market, name). Existing rows keep their ids and become their own source.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # add_column (no table rebuild on SQLite): NOT NULL with a default, then filled in.
    op.add_column("stored_asset", sa.Column("source", sa.String(64), nullable=False,
                                            server_default=""))
    op.add_column("stored_asset", sa.Column("uploaded_by", sa.String(160), nullable=True))
    op.execute("UPDATE stored_asset SET source = id")
    op.create_index("ix_stored_asset_source", "stored_asset", ["source"])


def downgrade() -> None:
    op.drop_index("ix_stored_asset_source", "stored_asset")
    with op.batch_alter_table("stored_asset") as batch:
        batch.drop_column("uploaded_by")
        batch.drop_column("source")
