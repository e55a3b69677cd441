"""Backups of the lab service's database and their retention (``oligolab serve backup`` / ``restore``).

- **SQLite**: the online backup API (``sqlite3.Connection.backup``) copies a consistent snapshot while the
  service runs and writes; the copy is checked with ``PRAGMA integrity_check`` before it is kept.
- **PostgreSQL**: ``pg_dump --format=custom`` (a consistent snapshot of one database, restored with
  ``pg_restore``); the client tools must be those of the server's major version or newer.

A backup is written next to its final name and renamed into place only when complete, so a folder of backups
never holds a half-written one. Retention (:func:`prune`) keeps the newest ``daily`` backups (one per day),
then one per ISO week for ``weekly`` weeks and one per month for ``monthly`` months, and deletes the rest:
with the defaults 7/5/12 a lab can go back a week day by day and a year month by month.

A restore goes into an empty database only (or, with ``force``, replaces what is there); afterwards the schema
is brought to the newest version and the records can be checked with ``oligolab serve verify``.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import InputError
from ..reports import apply_umask

SUFFIX = {"sqlite": ".sqlite", "postgresql": ".pgdump"}
NAME_RE = re.compile(r"^oligolab-(?P<db>[\w.-]+)-(?P<at>\d{8}T\d{6}Z)\.(?P<kind>sqlite|pgdump)$")
#: retention defaults: daily backups kept, then one per week, then one per month
KEEP_DAILY, KEEP_WEEKLY, KEEP_MONTHLY = 7, 5, 12


@dataclass(frozen=True)
class Backup:
    """One backup file: which database it came from and when (UTC)."""

    path: Path
    database: str
    at: _dt.datetime
    kind: str  #: sqlite | pgdump

    @property
    def size(self) -> int:
        return self.path.stat().st_size


def _dialect(url: str) -> str:
    scheme = urlsplit(url).scheme.split("+")[0]
    if scheme not in SUFFIX:
        raise InputError(
            url, "not a database URL the service uses", "sqlite:///FILE or postgresql+psycopg://USER@HOST:PORT/NAME"
        )
    return scheme


def sqlite_path(url: str) -> Path:
    """The file of a ``sqlite:///FILE`` URL."""
    path = url.split("///", 1)[1] if "///" in url else ""
    if not path or path == ":memory:":
        raise InputError(url, "an in-memory database cannot be backed up", "give sqlite:///FILE")
    return Path(path)


def _libpq(url: str) -> str:
    """A PostgreSQL URL as libpq (pg_dump, pg_restore) reads it."""
    return re.sub(r"^postgresql\+\w+://", "postgresql://", url)


def _database_name(url: str) -> str:
    if _dialect(url) == "sqlite":
        return sqlite_path(url).stem
    return urlsplit(url).path.lstrip("/") or "postgres"


def backup_name(url: str, at: _dt.datetime) -> str:
    safe = re.sub(r"[^\w.-]", "_", _database_name(url))[:60]
    return f"oligolab-{safe}-{at.strftime('%Y%m%dT%H%M%SZ')}{SUFFIX[_dialect(url)]}"


def _sqlite_backup(source: Path, dest: Path) -> None:
    if not source.is_file():
        raise InputError(source, "no such SQLite database", "check --db")
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    try:
        out = sqlite3.connect(dest)
        try:
            src.backup(out, pages=1024)  # in steps: writers are not held up for the whole copy
            ok = out.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            out.close()
    finally:
        src.close()
    if ok != "ok":
        raise InputError(dest, f"the copy fails SQLite's integrity check ({ok})", "run the backup again")


def _run(args: list[str], what: str) -> None:
    tool = shutil.which(args[0])
    if tool is None:
        raise InputError(
            None,
            f"{args[0]} is not installed",
            "install the PostgreSQL client tools (Debian: postgresql-client) of the server's version",
        )
    done = subprocess.run([tool, *args[1:]], capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        message = (done.stderr or done.stdout).strip().splitlines()
        raise InputError(
            None,
            f"{what} failed: {message[-1] if message else done.returncode}",
            "check the database URL, that the server runs and the client tools' version",
        )


def backup(url: str, folder: str | Path, *, now: _dt.datetime | None = None) -> Backup:
    """A new backup of the database at ``url`` in ``folder`` (created if needed)."""
    folder = Path(folder)
    at = (now or _dt.datetime.now(_dt.UTC)).astimezone(_dt.UTC).replace(microsecond=0)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / backup_name(url, at)
        part = final.with_name(final.name + ".part")
        part.unlink(missing_ok=True)
        if _dialect(url) == "sqlite":
            _sqlite_backup(sqlite_path(url), part)
        else:
            _run(
                ["pg_dump", "--format=custom", "--no-owner", "--no-privileges", f"--file={part}", _libpq(url)],
                "pg_dump",
            )
        apply_umask(part)
        os.replace(part, final)
    except OSError as exc:
        raise InputError.from_os_error(exc) from None
    return Backup(final, _database_name(url), at, final.suffix[1:])


def list_backups(folder: str | Path) -> list[Backup]:
    """The backups in ``folder``, newest first (other files are left alone)."""
    out = []
    for path in Path(folder).iterdir() if Path(folder).is_dir() else []:
        m = NAME_RE.match(path.name)
        if m and path.is_file():
            at = _dt.datetime.strptime(m["at"], "%Y%m%dT%H%M%SZ").replace(tzinfo=_dt.UTC)
            out.append(Backup(path, m["db"], at, m["kind"]))
    return sorted(out, key=lambda b: b.at, reverse=True)


def keep(
    backups: list[Backup], daily: int = KEEP_DAILY, weekly: int = KEEP_WEEKLY, monthly: int = KEEP_MONTHLY
) -> list[Backup]:
    """The backups retention keeps, per database: the newest of each of the last ``daily`` days, ``weekly``
    ISO weeks and ``monthly`` months that have one (a backup may count for all three)."""
    periods = (
        (lambda t: t.date(), daily),
        (lambda t: t.isocalendar()[:2], weekly),
        (lambda t: (t.year, t.month), monthly),
    )
    kept: dict[Path, Backup] = {}
    newest_first = sorted(backups, key=lambda b: b.at, reverse=True)
    for database in {b.database for b in backups}:
        mine = [b for b in newest_first if b.database == database]
        for period, count in periods:
            seen: set = set()
            for b in mine:
                key = period(b.at)
                if key not in seen and len(seen) < count:
                    kept[b.path] = b
                seen.add(key)
    return sorted(kept.values(), key=lambda b: b.at, reverse=True)


def prune(
    folder: str | Path, daily: int = KEEP_DAILY, weekly: int = KEEP_WEEKLY, monthly: int = KEEP_MONTHLY
) -> list[Backup]:
    """Delete the backups in ``folder`` that retention does not keep; returns the deleted ones."""
    backups = list_backups(folder)
    kept = {b.path for b in keep(backups, daily, weekly, monthly)}
    gone = [b for b in backups if b.path not in kept]
    for b in gone:
        b.path.unlink()
    return gone


def _sqlite_has_tables(path: Path) -> bool:
    if not path.exists() or path.stat().st_size == 0:
        return False
    con = sqlite3.connect(path)
    try:
        return con.execute("SELECT count(*) FROM sqlite_master WHERE type='table'").fetchone()[0] > 0
    finally:
        con.close()


def _pg_has_tables(url: str) -> bool:
    import psycopg

    with psycopg.connect(_libpq(url), connect_timeout=10) as c:
        row = c.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema='public'").fetchone()
        assert row is not None  # count(*) always returns a row
        return row[0] > 0


def restore(path: str | Path, url: str, *, force: bool = False) -> None:
    """Restore the backup file ``path`` into the database at ``url`` (empty, or replaced with ``force``), then
    bring its schema to the newest version."""
    from .db import migrate

    path = Path(path)
    m = NAME_RE.match(path.name)
    kind = m["kind"] if m else path.suffix.lstrip(".")
    if not path.is_file():
        raise InputError(path, "no such backup file", "give a file written by oligolab serve backup")
    dialect = _dialect(url)
    if (kind == "sqlite") != (dialect == "sqlite"):
        raise InputError(
            path,
            f"a {kind} backup cannot be restored into {dialect}",
            "restore SQLite backups into sqlite:///FILE and PostgreSQL ones into postgresql://",
        )
    if dialect == "sqlite":
        target = sqlite_path(url)
        if _sqlite_has_tables(target) and not force:
            raise InputError(target, "the database is not empty", "restore into a new file, or add --force")
        _sqlite_backup(path, target.with_name(target.name + ".restore"))
        for extra in ("-wal", "-shm"):
            target.with_name(target.name + extra).unlink(missing_ok=True)
        os.replace(target.with_name(target.name + ".restore"), target)
    else:
        if _pg_has_tables(url) and not force:
            raise InputError(
                url.split("@")[-1],
                "the database is not empty",
                "restore into a new database, or add --force (drops what is there)",
            )
        _run(
            [
                "pg_restore",
                "--clean",
                "--if-exists",
                "--no-owner",
                "--no-privileges",
                "--exit-on-error",
                "--single-transaction",
                f"--dbname={_libpq(url)}",
                str(path),
            ],
            "pg_restore",
        )
    migrate(url)
