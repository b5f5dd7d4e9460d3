"""accounts: login throttle by (account, address) pairs and TOTP second factor

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("user_account") as batch:
        batch.add_column(sa.Column("totp_secret", sa.String(64), nullable=True))
        batch.add_column(sa.Column("totp_pending", sa.String(64), nullable=True))
        batch.add_column(sa.Column("totp_enabled_at", sa.DateTime(timezone=True),
                                   nullable=True))
        batch.add_column(sa.Column("totp_last_step", sa.Integer(), nullable=True))
    # Pair look-ups (account, address) and the known-pair check.
    op.create_index("ix_login_attempt_pair", "login_attempt", ["account", "address", "ok"])
    op.create_index("ix_login_attempt_at", "login_attempt", ["at"])
    op.create_table(
        "login_challenge",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("user_account.id"), nullable=False),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("tries", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_login_challenge_user_id", "login_challenge", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_login_challenge_user_id", table_name="login_challenge")
    op.drop_table("login_challenge")
    op.drop_index("ix_login_attempt_at", table_name="login_attempt")
    op.drop_index("ix_login_attempt_pair", table_name="login_attempt")
    with op.batch_alter_table("user_account") as batch:
        for column in ("totp_last_step", "totp_enabled_at", "totp_pending", "totp_secret"):
            batch.drop_column(column)
