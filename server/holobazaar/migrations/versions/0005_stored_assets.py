"""stored assets (curator uploads) and their processed files

Revision ID: 0005
Revises: 0006
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stored_asset",
        # The sha256 of the input (all its files): the same upload twice is one asset.
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("market", sa.String(64), nullable=True, index=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("source_name", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("input_bytes", sa.BigInteger, nullable=False),
        sa.Column("output_bytes", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("triangles", sa.Integer, nullable=False, server_default="0"),
        sa.Column("processing_ms", sa.Integer, nullable=False, server_default="0"),
        sa.Column("bbox", sa.JSON, nullable=True),
        sa.Column("warnings", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "stored_asset_file",
        sa.Column("asset_id", sa.String(64),
                  sa.ForeignKey("stored_asset.id", ondelete="CASCADE"), primary_key=True),
        # lod0, lod1, ... (web-ready GLB), compat (PNG/JPEG textures), image, thumbnail
        sa.Column("role", sa.String(16), primary_key=True),
        sa.Column("sha256", sa.String(64), nullable=False, index=True),
        sa.Column("ext", sa.String(8), nullable=False),
        sa.Column("media_type", sa.String(64), nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.Column("triangles", sa.Integer, nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.drop_table("stored_asset_file")
    op.drop_table("stored_asset")
