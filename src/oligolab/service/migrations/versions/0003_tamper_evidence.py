"""tamper evidence: audit events chained by SHA-256 (number, previous hash, own hash) with the chain head in
audit_head; sign-offs in their own table carrying the signed content's SHA-256; result versions and sign-offs
refused UPDATE and DELETE (and TRUNCATE on PostgreSQL) by triggers, as the audit table is

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_REFUSE = "{table} is append-only once written: UPDATE, DELETE and TRUNCATE are refused"
_AUDIT = "audit_events is append-only: UPDATE, DELETE and TRUNCATE are refused"


def upgrade() -> None:
    op.add_column("audit_events", sa.Column("seq", sa.Integer(), nullable=True))
    op.add_column("audit_events", sa.Column("prev_sha256", sa.String(length=64), nullable=False, server_default=""))
    op.add_column("audit_events", sa.Column("sha256", sa.String(length=64), nullable=False, server_default=""))
    op.create_index("ix_audit_events_seq", "audit_events", ["seq"], unique=True)
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    bind = op.get_bind()
    # the signatures move out of the versions (kept aside while the columns go: SQLite rebuilds the table)
    bind.execute(
        sa.text(
            "CREATE TABLE signoffs_moving AS SELECT v.id AS version_id, v.batch_id, v.version, b.lab_id, v.signed_by, "
            "v.signed_at, v.content_sha256 FROM batch_versions v JOIN batches b ON b.id = v.batch_id "
            "WHERE v.signed_by <> '' AND v.signed_at IS NOT NULL"
        )
    )
    with op.batch_alter_table("batch_versions") as b:
        b.drop_column("signed_at")
        b.drop_column("signed_by")
    op.create_table(
        "signoffs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("lab_id", sa.Integer(), nullable=False),
        sa.Column("signed_by", sa.String(length=100), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("statement", sa.Text(), nullable=False),
        sa.Column("content_sha256", sa.String(length=64), nullable=False),
        sa.Column("invalid_reason", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["version_id"], ["batch_versions.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("version_id"),
    )
    op.create_index("ix_signoffs_batch_id", "signoffs", ["batch_id"])
    bind.execute(
        sa.text(
            "INSERT INTO signoffs (version_id, batch_id, version, lab_id, signed_by, signed_at, statement, "
            "content_sha256, invalid_reason) SELECT version_id, batch_id, version, lab_id, signed_by, signed_at, "
            "'results reviewed and released', content_sha256, '' FROM signoffs_moving"
        )
    )
    op.drop_table("signoffs_moving")
    _chain_existing_events(bind, head)
    for table in ("batch_versions", "signoffs"):
        _protect(table, _REFUSE.format(table=table))


def _chain_existing_events(bind, head) -> None:
    """Number and chain the events written before this migration (triggers lifted meanwhile, as owner)."""
    import datetime as _dt
    import json

    from oligolab.service.audit import GENESIS, event_sha256

    _unprotect("audit_events")
    prev, seq = GENESIS, 0
    rows = bind.execute(
        sa.text(
            "SELECT id, lab_id, at, username, action, entity, entity_id, before, after FROM audit_events ORDER BY id"
        )
    ).all()
    for r in rows:
        seq += 1
        at = r.at if isinstance(r.at, _dt.datetime) else _dt.datetime.fromisoformat(str(r.at))
        at = at if at.tzinfo else at.replace(tzinfo=_dt.UTC)
        before = json.loads(r.before) if isinstance(r.before, str) else r.before
        after = json.loads(r.after) if isinstance(r.after, str) else r.after
        sha = event_sha256(seq, r.lab_id, at, r.username, r.action, r.entity, r.entity_id, before, after, prev)
        bind.execute(
            sa.text("UPDATE audit_events SET seq = :s, prev_sha256 = :p, sha256 = :h WHERE id = :i"),
            {"s": seq, "p": prev, "h": sha, "i": r.id},
        )
        prev = sha
    bind.execute(head.insert().values(id=1, seq=seq, sha256=prev))
    _protect("audit_events", _AUDIT)


def _protect(table: str, message: str) -> None:
    """UPDATE and DELETE (TRUNCATE on PostgreSQL) of ``table`` refused, whatever role connects."""
    if op.get_bind().dialect.name == "postgresql":
        fn = "audit_events_refuse" if table == "audit_events" else f"{table}_refuse"
        if table != "audit_events":
            op.execute(f"""
                CREATE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN RAISE EXCEPTION '{message}' USING ERRCODE = 'insufficient_privilege'; END $$""")
        op.execute(
            f"CREATE TRIGGER {table}_no_update BEFORE UPDATE OR DELETE ON {table} FOR EACH ROW EXECUTE FUNCTION {fn}()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} FOR EACH STATEMENT EXECUTE FUNCTION {fn}()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{message}'); END"
            )


def _unprotect(table: str) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_update ON {table}")
        if table != "audit_events":
            op.execute(f"DROP FUNCTION IF EXISTS {table}_refuse()")
    else:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")


def downgrade() -> None:
    for table in ("signoffs", "batch_versions"):
        _unprotect(table)
    with op.batch_alter_table("batch_versions") as b:
        b.add_column(sa.Column("signed_by", sa.String(length=100), nullable=False, server_default=""))
        b.add_column(sa.Column("signed_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        "UPDATE batch_versions SET signed_by = (SELECT s.signed_by FROM signoffs s WHERE s.version_id = "
        "batch_versions.id), signed_at = (SELECT s.signed_at FROM signoffs s WHERE s.version_id = "
        "batch_versions.id) WHERE id IN (SELECT version_id FROM signoffs)"
    )
    op.drop_index("ix_signoffs_batch_id", "signoffs")
    op.drop_table("signoffs")
    op.drop_table("audit_head")
    op.drop_index("ix_audit_events_seq", "audit_events")
    with op.batch_alter_table("audit_events") as b:
        for col in ("sha256", "prev_sha256", "seq"):
            b.drop_column(col)
