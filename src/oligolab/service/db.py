"""Tables of the lab service (SQLAlchemy 2) and the database set-up (Alembic migrations to head).

The audit table is append-only by the database itself: triggers refuse UPDATE, DELETE (and, on PostgreSQL,
TRUNCATE) from any role the application connects as, so not even a bug in the service can rewrite history.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, sessionmaker
from sqlalchemy.types import TypeDecorator

#: the embedded default database (a file in the working folder)
DEFAULT_URL = "sqlite:///oligolab-lab.db"


def utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0)


class UTCDateTime(TypeDecorator):
    """A timestamp stored with its time zone and always read back as an aware UTC datetime (SQLite drops it)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=_dt.UTC)
        return value


class Base(DeclarativeBase):
    type_annotation_map = {dict: JSON, list: JSON}


class Lab(Base):
    """One laboratory; every row below belongs to one, and users see only their own lab's data."""

    __tablename__ = "labs"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    #: four-eyes rule: a reviewer who changed a version's calls may not sign that version
    four_eyes: Mapped[bool] = mapped_column(Boolean, default=False)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    lab_id: Mapped[int] = mapped_column(ForeignKey("labs.id"))
    username: Mapped[str] = mapped_column(String(100), unique=True)
    full_name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(20))  # technician | reviewer | admin
    password_hash: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[_dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class LoginSession(Base):
    """A signed-in browser or API client: the token is kept only as its SHA-256."""

    __tablename__ = "sessions"
    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[_dt.datetime] = mapped_column(UTCDateTime)


class SignInAttempt(Base):
    """A failed sign-in (user name as typed, client address): the growing delay counts these."""

    __tablename__ = "sign_in_attempts"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(100), index=True)
    address: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[_dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class RuleSetRow(Base):
    """A lab's own interpretation rule set (YAML, may extend a shipped one); shipped sets need no row."""

    __tablename__ = "rulesets"
    __table_args__ = (UniqueConstraint("lab_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    lab_id: Mapped[int] = mapped_column(ForeignKey("labs.id"))
    name: Mapped[str] = mapped_column(String(100))
    yaml_text: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[_dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Assay(Base):
    """A test the lab runs: its rule set, its oligos for assay watch and its LOINC code for exports."""

    __tablename__ = "assays"
    __table_args__ = (UniqueConstraint("lab_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    lab_id: Mapped[int] = mapped_column(ForeignKey("labs.id"))
    name: Mapped[str] = mapped_column(String(200))
    ruleset: Mapped[str] = mapped_column(String(100))  # shipped id or a lab rule set name
    watch_assays: Mapped[list] = mapped_column(JSON, default=list)  # assay names in the check assays table
    loinc_code: Mapped[str] = mapped_column(String(20), default="")
    loinc_display: Mapped[str] = mapped_column(String(300), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Batch(Base):
    """One uploaded plate: the run file and plate map (kept in the database with the batch, so an upload is
    either stored whole or not at all), its analysis state and its current result version."""

    __tablename__ = "batches"
    id: Mapped[int] = mapped_column(primary_key=True)
    lab_id: Mapped[int] = mapped_column(ForeignKey("labs.id"), index=True)
    assay_id: Mapped[int] = mapped_column(ForeignKey("assays.id"))
    name: Mapped[str] = mapped_column(String(200))
    run_filename: Mapped[str] = mapped_column(String(300))
    run_bytes: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)  # loaded only to analyse
    run_sha256: Mapped[str] = mapped_column(String(64), index=True)
    map_filename: Mapped[str] = mapped_column(String(300), default="")
    map_bytes: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True, deferred=True)
    # the rule set the batch is analysed with, resolved once at upload (rulesets.frozen); empty for old batches
    ruleset_text: Mapped[str | None] = mapped_column(Text, nullable=True, deferred=True)
    ruleset_sha256: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[str] = mapped_column(
        String(20), default="queued", index=True
    )  # queued|running|analysed|failed|signed
    progress: Mapped[str] = mapped_column(String(300), default="waiting in the queue")
    error: Mapped[str] = mapped_column(Text, default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    current_version: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[_dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class BatchVersion(Base):
    """One immutable result of a batch: the automatic analysis (version 1) or a correction of the one before
    (overrides with reasons). A sign-off seals a version; a later correction makes a new one."""

    __tablename__ = "batch_versions"
    __table_args__ = (UniqueConstraint("batch_id", "version"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    overrides: Mapped[list] = mapped_column(JSON, default=list)  # lab-core override entries (dicts)
    summary: Mapped[dict] = mapped_column(JSON, default=dict)  # counts for lists and the daily summary
    # loaded only when a page needs them (a 384-well plate's curves are ~0.5 MB of JSON)
    result: Mapped[dict] = mapped_column(JSON, deferred=True)  # samples, wells, controls, provenance
    curves: Mapped[dict] = mapped_column(JSON, default=dict, deferred=True)  # "WELL/TARGET" -> fluorescence
    # the lab core's printable report as rendered for this version (analysis.pack_report), and the rule set
    report_html: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True, deferred=True)
    ruleset_text: Mapped[str | None] = mapped_column(Text, nullable=True, deferred=True)
    ruleset_sha256: Mapped[str] = mapped_column(String(64), default="")
    #: SHA-256 of everything the version shows (analysis.content_sha256); a sign-off carries it
    content_sha256: Mapped[str] = mapped_column(String(64), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[_dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    signoff: Mapped[Signoff | None] = relationship(back_populates="version_row", uselist=False, lazy="selectin")

    @property
    def signed_by(self) -> str:
        return self.signoff.signed_by if self.signoff is not None else ""

    @property
    def signed_at(self) -> _dt.datetime | None:
        return self.signoff.signed_at if self.signoff is not None else None


class Signoff(Base):
    """The release of one version: who signed, when, and the SHA-256 of the exact content signed. Signed
    versions and sign-offs are refused UPDATE and DELETE by the database (triggers), like the audit table."""

    __tablename__ = "signoffs"
    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("batch_versions.id"), unique=True)
    batch_id: Mapped[int] = mapped_column(Integer, index=True)
    version: Mapped[int] = mapped_column(Integer)
    lab_id: Mapped[int] = mapped_column(Integer)
    signed_by: Mapped[str] = mapped_column(String(100))
    signed_at: Mapped[_dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    statement: Mapped[str] = mapped_column(Text, default="")
    content_sha256: Mapped[str] = mapped_column(String(64))
    #: why a run the controls invalidated was signed (released as an invalid run: no sample results)
    invalid_reason: Mapped[str] = mapped_column(Text, default="")
    version_row: Mapped[BatchVersion] = relationship(back_populates="signoff")


class AuditEvent(Base):
    """Append-only: who did what, when, with the record before and after (UPDATE/DELETE refused by triggers).
    Events form a hash chain: each carries its number, the SHA-256 of the one before and its own."""

    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int | None] = mapped_column(Integer, unique=True, nullable=True)
    prev_sha256: Mapped[str] = mapped_column(String(64), default="")
    sha256: Mapped[str] = mapped_column(String(64), default="")
    lab_id: Mapped[int | None] = mapped_column(Integer, index=True, nullable=True)
    at: Mapped[_dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    username: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(50))
    entity: Mapped[str] = mapped_column(String(50))
    entity_id: Mapped[str] = mapped_column(String(100))
    before: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    after: Mapped[dict | None] = mapped_column(JSON, nullable=True)


class AuditHead(Base):
    """The end of the audit chain (one row): the last event's number and hash. Appending takes its row lock,
    so events chain in commit order; ``oligolab serve verify`` checks that no event after it is missing."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, default=0)
    sha256: Mapped[str] = mapped_column(String(64), default="")


class WatchResult(Base):
    """The latest ``oligolab check`` summary of one assay's oligos on the bundled genomes."""

    __tablename__ = "watch_results"
    id: Mapped[int] = mapped_column(primary_key=True)
    assay_key: Mapped[str] = mapped_column(String(300), index=True)  # sorted watch assay names, '|'-joined
    genomes: Mapped[str] = mapped_column(String(500))
    summary: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[_dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


# --------------------------------------------------------------------------------------- engine and set-up


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and foreign keys, PostgreSQL a pre-ping pool
    (connections dropped by a database restart are replaced instead of failing the next request)."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=10, max_overflow=20
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # pragma: no cover - exercised by every SQLite test
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20, pool_recycle=1800)


def alembic_config(url: str):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).with_name("migrations")))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(url: str) -> None:
    """Bring the database at ``url`` to the newest schema (creates it on first use)."""
    from alembic import command

    command.upgrade(alembic_config(url), "head")


def session_factory(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False)
