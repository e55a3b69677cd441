"""QC points: the control Cq values and NTC counts of each result version, so QC views and the batch page's
Westgard panel never reload whole results

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "qc_points",
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("lab_id", sa.Integer(), nullable=False),
        sa.Column("assay_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lot", sa.String(length=100), nullable=False),
        sa.Column("points", sa.JSON(), nullable=False),
        sa.Column("ntc_wells", sa.Integer(), nullable=False),
        sa.Column("ntc_amplified", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["assay_id"], ["assays.id"]),
        sa.ForeignKeyConstraint(["batch_id"], ["batches.id"]),
        sa.ForeignKeyConstraint(["lab_id"], ["labs.id"]),
        sa.PrimaryKeyConstraint("batch_id", "version"),
    )
    op.create_index("ix_qc_points_lab_id", "qc_points", ["lab_id"])


def downgrade() -> None:
    op.drop_index("ix_qc_points_lab_id", table_name="qc_points")
    op.drop_table("qc_points")
