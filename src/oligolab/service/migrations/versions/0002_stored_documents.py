"""one signed document: batches keep the rule set they are analysed with; each version keeps its rule set, its
printable report and the SHA-256 of its content; batches are found by run file hash (duplicate uploads)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("batches", sa.Column("ruleset_text", sa.Text(), nullable=True))
    op.add_column("batches", sa.Column("ruleset_sha256", sa.String(length=64), nullable=False, server_default=""))
    op.create_index("ix_batches_run_sha256", "batches", ["run_sha256"])
    op.add_column("batch_versions", sa.Column("report_html", sa.LargeBinary(), nullable=True))
    op.add_column("batch_versions", sa.Column("ruleset_text", sa.Text(), nullable=True))
    op.add_column(
        "batch_versions", sa.Column("ruleset_sha256", sa.String(length=64), nullable=False, server_default="")
    )
    op.add_column(
        "batch_versions", sa.Column("content_sha256", sa.String(length=64), nullable=False, server_default="")
    )


def downgrade() -> None:
    with op.batch_alter_table("batch_versions") as b:
        for col in ("content_sha256", "ruleset_sha256", "ruleset_text", "report_html"):
            b.drop_column(col)
    op.drop_index("ix_batches_run_sha256", "batches")
    with op.batch_alter_table("batches") as b:
        b.drop_column("ruleset_sha256")
        b.drop_column("ruleset_text")
