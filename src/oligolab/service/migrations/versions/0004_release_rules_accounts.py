"""release rules and accounts: optional four-eyes sign-off per lab; failed sign-ins kept for the growing delay

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("labs", sa.Column("four_eyes", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        "sign_in_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=100), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_sign_in_attempts_username", "sign_in_attempts", ["username"])
    op.create_index("ix_sign_in_attempts_address", "sign_in_attempts", ["address"])
    op.create_index("ix_sign_in_attempts_at", "sign_in_attempts", ["at"])


def downgrade() -> None:
    op.drop_table("sign_in_attempts")
    with op.batch_alter_table("labs") as b:
        b.drop_column("four_eyes")
