"""``oligolab serve backup`` and ``oligolab serve restore``: database backups of the lab service with retention
(a thin shell over :mod:`oligolab.service.backup`)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from .cli import fail
from .errors import InputError
from .service_cli import serve_app


@serve_app.command("backup")
def backup_cmd(
    db: str = typer.Option("sqlite:///oligolab-lab.db", "--db", help="database URL of the service"),
    to: Path = typer.Option(Path("backups"), "--to", help="folder of backups (created if needed)"),
    keep_daily: int = typer.Option(7, help="newest backups kept, one per day"),
    keep_weekly: int = typer.Option(5, help="then one per ISO week, for this many weeks"),
    keep_monthly: int = typer.Option(12, help="then one per month, for this many months"),
) -> None:
    """Back up the database while the service runs (SQLite online backup API / pg_dump), then delete the
    backups the retention does not keep. Run it daily (cron, systemd timer)."""
    from .service import backup as bk

    try:
        made = bk.backup(db, to)
        gone = bk.prune(to, keep_daily, keep_weekly, keep_monthly)
    except InputError as exc:
        fail(str(exc))
    out = Console()
    out.print(f"backup {made.path} ({made.size / 1e6:.1f} MB)", highlight=False)
    for b in gone:
        out.print(f"removed {b.path.name} (retention {keep_daily} daily / {keep_weekly} weekly / "
                  f"{keep_monthly} monthly)", highlight=False)


@serve_app.command("restore")
def restore_cmd(
    backup_file: Path = typer.Argument(..., help="a file written by oligolab serve backup"),
    db: str = typer.Option(..., "--db", help="database URL to restore into (an empty one)"),
    force: bool = typer.Option(False, "--force", help="replace what the database holds"),
) -> None:
    """Restore a backup into an empty database (or replace one with --force); check it afterwards with
    oligolab serve verify."""
    from .service import backup as bk

    try:
        bk.restore(backup_file, db, force=force)
    except InputError as exc:
        fail(str(exc))
    Console().print(f"restored {backup_file} into {db.split('@')[-1]}; check it with: oligolab serve verify "
                    f"--db {db}", highlight=False)
