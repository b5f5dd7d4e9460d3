"""inventory feed: signatures seen within the replay window, and when v2 signing began

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inventory_feed_signature",
        sa.Column("market", sa.String(64), primary_key=True),
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("form", sa.String(4), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=False),
        sa.Column("expires", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_inventory_feed_signature_expires", "inventory_feed_signature",
                    ["expires"])
    signing = op.create_table(
        "inventory_signing",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("v2_since", sa.DateTime(timezone=True), nullable=False),
    )
    # The grace period for the old signing form (HOLOBAZAAR_INVENTORY_V1_GRACE_DAYS)
    # counts from this upgrade.
    op.bulk_insert(signing, [{"id": 1, "v2_since": datetime.now(UTC)}])


def downgrade() -> None:
    op.drop_table("inventory_signing")
    op.drop_index("ix_inventory_feed_signature_expires", "inventory_feed_signature")
    op.drop_table("inventory_feed_signature")
