"""inventory truth: item source versions, history, feed batches, feed config, mismatches,
held changes

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0006"  # re-chained after show runs (merge: inventory tests downgrade one step)
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    with op.batch_alter_table("inventory_item") as batch:
        batch.add_column(sa.Column("source_version", sa.BigInteger, nullable=False,
                                   server_default="0"))
        batch.add_column(_ts("source_timestamp", nullable=True))
    op.create_table(
        "inventory_feed",
        sa.Column("market", sa.String(64), primary_key=True),
        sa.Column("secret", sa.String(128), nullable=True),
        sa.Column("pull_url", sa.String(2000), nullable=True),
        sa.Column("pull_format", sa.String(8), nullable=False, server_default="json"),
        sa.Column("pull_interval", sa.Float, nullable=False, server_default="60"),
        sa.Column("disappear", sa.String(16), nullable=False, server_default="sold_out"),
        sa.Column("etag", sa.String(256), nullable=True),
        sa.Column("last_modified", sa.String(64), nullable=True),
        _ts("last_feed_at", nullable=True),
        sa.Column("revision", sa.BigInteger, nullable=False, server_default="0"),
    )
    op.create_table(
        "inventory_batch",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("market", sa.String(64), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=True),
        sa.Column("body_hash", sa.String(64), nullable=False),
        sa.Column("response", sa.Text, nullable=False),
        _ts("received_at"),
        sa.UniqueConstraint("market", "idempotency_key"),
    )
    op.create_table(
        "inventory_history",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("market", sa.String(64), nullable=False),
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("batch_id", sa.Integer, nullable=True),
        sa.Column("op", sa.String(16), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("source_version", sa.BigInteger, nullable=True),
        _ts("at"),
        sa.Index("ix_inventory_history_item", "market", "sku"),
    )
    op.create_table(
        "inventory_mismatch",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("market", sa.String(64), nullable=False, index=True),
        sa.Column("display", sa.String(64), nullable=False),
        sa.Column("sku", sa.String(64), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("expected", sa.Text, nullable=False),
        sa.Column("shown", sa.Text, nullable=False),
        _ts("detected_at"),
        _ts("resolved_at", nullable=True),
        sa.Column("resolution", sa.String(32), nullable=True),
    )
    op.create_table(
        "inventory_held",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("market", sa.String(64), nullable=False, index=True),
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("batch_id", sa.Integer, nullable=True),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("old", sa.Text, nullable=True),
        sa.Column("new", sa.Text, nullable=False),
        _ts("created_at"),
        _ts("decided_at", nullable=True),
        sa.Column("decision", sa.String(16), nullable=True),
        sa.Column("decided_by", sa.String(120), nullable=True),
    )


def downgrade() -> None:
    for table in ("inventory_held", "inventory_mismatch", "inventory_history",
                  "inventory_batch", "inventory_feed"):
        op.drop_table(table)
    with op.batch_alter_table("inventory_item") as batch:
        batch.drop_column("source_timestamp")
        batch.drop_column("source_version")
