"""indexes that keep the day's lists independent of the lab's history: the waiting list (orders by lab and
status) and the newest specimens (by lab and time received)

Without them the database read every order or specimen the lab ever had to answer the specimens and worklist
pages (the planner took the lab index, which every row matches).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_orders_lab_status", "orders", ["lab_id", "status"])
    op.create_index("ix_specimens_lab_received", "specimens", ["lab_id", "received_at"])


def downgrade() -> None:
    op.drop_index("ix_specimens_lab_received", table_name="specimens")
    op.drop_index("ix_orders_lab_status", table_name="orders")
