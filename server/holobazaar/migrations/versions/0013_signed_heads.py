"""audit: the public price-history chain, market signing keys, signed heads, witnesses

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    # One hash chain per market of public records (docs/inventory.md, "Verifiable price
    # history"): what the history API and /t/<m> publish.
    op.create_table(
        "audit_public",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("market", sa.String(64), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        _ts("time"),
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("price", sa.String(40), nullable=True),
        sa.Column("currency", sa.String(8), nullable=True),
        sa.Column("unit", sa.String(20), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        # Two writers that read the same head cannot both append: no fork.
        sa.UniqueConstraint("market", "seq", name="uq_audit_public_seq"),
        sa.Index("ix_audit_public_item", "market", "sku", "seq"),
    )
    op.create_table(
        "audit_market_key",
        sa.Column("market", sa.String(64), primary_key=True),
        sa.Column("public_key", sa.String(64), nullable=False),
        sa.Column("private_key", sa.String(64), nullable=False),
        _ts("created_at"),
    )
    # Heads this server signed, kept apart from the chains they describe.
    op.create_table(
        "audit_signed_head",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("market", sa.String(64), nullable=False),
        sa.Column("height", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("audit_height", sa.BigInteger, nullable=False),
        sa.Column("audit_hash", sa.String(64), nullable=False),
        sa.Column("time", sa.String(40), nullable=False),
        sa.Column("signature", sa.String(128), nullable=False),
        sa.Index("ix_audit_signed_head_market", "market", "id"),
    )
    op.create_table(
        "audit_witness",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("url", sa.String(2000), nullable=False, unique=True),
        _ts("added_at"),
        _ts("last_polled_at", nullable=True),
        _ts("last_ok_at", nullable=True),
        sa.Column("status", sa.String(16), nullable=False, server_default="new"),
        sa.Column("problem", sa.Text, nullable=True),
    )
    op.create_table(
        "audit_witness_head",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("witness_id", sa.Integer, sa.ForeignKey("audit_witness.id",
                                                          ondelete="CASCADE"), nullable=False),
        sa.Column("market", sa.String(64), nullable=False),
        sa.Column("public_key", sa.String(64), nullable=False),
        sa.Column("height", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("audit_height", sa.BigInteger, nullable=False),
        sa.Column("audit_hash", sa.String(64), nullable=False),
        sa.Column("time", sa.String(40), nullable=False),
        sa.Column("signature", sa.String(128), nullable=False),
        _ts("seen_at"),
        sa.Index("ix_audit_witness_head_market", "witness_id", "market", "id"),
    )


def downgrade() -> None:
    op.drop_table("audit_witness_head")
    op.drop_table("audit_witness")
    op.drop_table("audit_signed_head")
    op.drop_table("audit_market_key")
    op.drop_table("audit_public")
