"""SQLite: the large columns of batches and result versions (run file, plate map, rule set, result, curves,
report) move to the end of their rows

SQLite stores a row's columns in order and a large value spills into a chain of overflow pages; reading a column
stored after it walks that chain. With the run file (about 0.7 MB for a 384-well plate) in the middle of
``batches``, every list of batches (status, current version, time) read the run files of all its rows: a batch
list, the daily summary and the QC window cost about 0.7 ms per batch of history. Each table is rebuilt with its
small columns first (SQLite's documented 12-step table change: new table, copy, drop, rename, indexes and
triggers again); the rows, ids, indexes and the append-only triggers stay as they were. PostgreSQL keeps large
values out of line (TOAST) already: nothing to do there.

SQLite adds a new column at the end of a row, after the large ones: a migration that adds a column to these tables
rebuilds them like this one.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

#: table -> its large columns, in the order they are stored at the end of the row (most often read first)
LARGE = {
    "batches": ("ruleset_text", "map_bytes", "run_bytes"),
    "batch_versions": ("ruleset_text", "result", "curves", "report_html"),
}


def _columns(table: str) -> list[sa.Column]:
    if table == "batches":
        return [
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("lab_id", sa.Integer(), nullable=False),
            sa.Column("assay_id", sa.Integer(), nullable=False),
            sa.Column("name", sa.String(length=200), nullable=False),
            sa.Column("run_filename", sa.String(length=300), nullable=False),
            sa.Column("run_sha256", sa.String(length=64), nullable=False),
            sa.Column("map_filename", sa.String(length=300), nullable=False),
            sa.Column("status", sa.String(length=20), nullable=False),
            sa.Column("progress", sa.String(length=300), nullable=False),
            sa.Column("error", sa.Text(), nullable=False),
            sa.Column("attempts", sa.Integer(), nullable=False),
            sa.Column("current_version", sa.Integer(), nullable=False),
            sa.Column("created_by", sa.String(length=100), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("ruleset_sha256", sa.String(length=64), nullable=False, server_default=""),
            sa.Column("ruleset_text", sa.Text(), nullable=True),
            sa.Column("map_bytes", sa.LargeBinary(), nullable=True),
            sa.Column("run_bytes", sa.LargeBinary(), nullable=False),
            sa.ForeignKeyConstraint(["assay_id"], ["assays.id"]),
            sa.ForeignKeyConstraint(["lab_id"], ["labs.id"]),
            sa.PrimaryKeyConstraint("id"),
        ]
    return [
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("overrides", sa.JSON(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ruleset_sha256", sa.String(length=64), nullable=False, server_default=""),
        sa.Column("content_sha256", sa.String(length=64), nullable=False, server_default=""),
        sa.Column("ruleset_text", sa.Text(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("curves", sa.JSON(), nullable=False),
        sa.Column("report_html", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(["batch_id"], ["batches.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("batch_id", "version"),
    ]


def _rebuild(table: str) -> None:
    """New table in the new column order, rows copied, old table dropped, new one renamed, then its indexes and
    triggers (the append-only ones of batch_versions) made again from their stored SQL."""
    bind = op.get_bind()
    kept = [
        sql
        for (sql,) in bind.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE tbl_name = ? AND type IN ('index', 'trigger') AND sql IS NOT NULL "
            "ORDER BY type",
            (table,),
        )
    ]
    new = f"_new_{table}"
    bind.exec_driver_sql(f"DROP TABLE IF EXISTS {new}")  # left by an interrupted run (DDL autocommits)
    op.create_table(new, *_columns(table))
    names = ", ".join(c.name for c in _columns(table) if isinstance(c, sa.Column))
    bind.exec_driver_sql(f"INSERT INTO {new} ({names}) SELECT {names} FROM {table}")
    bind.exec_driver_sql(f"DROP TABLE {table}")
    bind.exec_driver_sql(f"ALTER TABLE {new} RENAME TO {table}")
    for sql in kept:
        bind.exec_driver_sql(sql)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    for table in LARGE:
        order = [name for _cid, name, *_rest in bind.exec_driver_sql(f"PRAGMA table_info({table})")]
        if order[-len(LARGE[table]) :] != list(LARGE[table]):
            _rebuild(table)
    broken = bind.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise RuntimeError(f"rows whose references broke while rebuilding tables: {broken[:5]}")


def downgrade() -> None:
    pass  # the column order is not part of the schema: nothing to undo
