"""assets: processing jobs any node can claim, and the PostgreSQL asset store's blobs

A queued upload now carries its job (the input files, stored in the asset store, and the
curator's options), and the node processing it holds a lease on it (claimed_by,
lease_until, attempts: the fencing token), so another node re-claims it when that node
dies. asset_blob/asset_blob_chunk hold stored files when --asset-store is postgresql: one
row per file (its sha256 and size), its bytes in chunks of 1 MiB, written in one
transaction.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("stored_asset", sa.Column("job", sa.JSON, nullable=True))
    op.add_column("stored_asset", sa.Column("claimed_by", sa.String(160), nullable=True))
    op.add_column("stored_asset", sa.Column("lease_until", sa.DateTime(timezone=True),
                                            nullable=True))
    op.add_column("stored_asset", sa.Column("attempts", sa.Integer, nullable=False,
                                            server_default="0"))
    op.create_index("ix_stored_asset_status", "stored_asset", ["status"])
    op.create_table(
        "asset_blob",
        sa.Column("key", sa.String(160), primary_key=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.Column("chunks", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "asset_blob_chunk",
        sa.Column("key", sa.String(160), sa.ForeignKey("asset_blob.key", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("asset_blob_chunk")
    op.drop_table("asset_blob")
    op.drop_index("ix_stored_asset_status", "stored_asset")
    with op.batch_alter_table("stored_asset") as batch:
        batch.drop_column("attempts")
        batch.drop_column("lease_until")
        batch.drop_column("claimed_by")
        batch.drop_column("job")
