"""pulse: per-minute aggregates, raw events (short retention), held feedback, daily salt

Revision ID: 0007
Revises: 0005
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0005"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "pulse_minute",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("market", sa.String(64), nullable=False),
        sa.Column("scope", sa.String(8), nullable=False),
        sa.Column("scope_id", sa.String(64), nullable=False),
        _ts("minute"),
        sa.Column("devices", sa.Integer, nullable=False),
        sa.Column("love", sa.Integer, nullable=False),
        sa.Column("wow", sa.Integer, nullable=False),
        sa.Column("hungry", sa.Integer, nullable=False),
        sa.Column("learn", sa.Integer, nullable=False),
        sa.Column("dwell_hist", sa.String(200), nullable=False),
        sa.Column("dwell_median", sa.Integer, nullable=True),
        sa.Column("mood", sa.Integer, nullable=False),
        sa.UniqueConstraint("market", "scope", "scope_id", "minute", name="uq_pulse_minute"),
    )
    op.create_index("ix_pulse_minute_minute", "pulse_minute", ["minute"])
    op.create_table(
        "pulse_event",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("market", sa.String(64), nullable=False),
        sa.Column("display", sa.String(64), nullable=False),
        sa.Column("zone", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("dwell", sa.Integer, nullable=True),
        sa.Column("device", sa.String(32), nullable=False),
        _ts("at"),
    )
    op.create_index("ix_pulse_event_at", "pulse_event", ["at"])
    op.create_index("ix_pulse_event_market_at", "pulse_event", ["market", "at"])
    op.create_table(
        "pulse_feedback",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("market", sa.String(64), nullable=False),
        sa.Column("display", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("text", sa.String(400), nullable=False),
        sa.Column("flags", sa.String(200), nullable=False, server_default=""),
        sa.Column("status", sa.String(10), nullable=False, server_default="held"),
        _ts("created_at"),
        sa.Column("decided_by", sa.String(64), nullable=True),
    )
    op.create_index("ix_pulse_feedback_market", "pulse_feedback", ["market"])
    op.create_table(
        "pulse_salt",
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("salt", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("pulse_salt")
    op.drop_index("ix_pulse_feedback_market", "pulse_feedback")
    op.drop_table("pulse_feedback")
    op.drop_index("ix_pulse_event_market_at", "pulse_event")
    op.drop_index("ix_pulse_event_at", "pulse_event")
    op.drop_table("pulse_event")
    op.drop_index("ix_pulse_minute_minute", "pulse_minute")
    op.drop_table("pulse_minute")
