"""``oligolab serve``: the lab web service and its records (a thin shell over :mod:`oligolab.service`):
``serve`` runs it, ``serve verify`` checks its records, ``serve backup`` / ``serve restore`` keep its database
(with retention)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from ..cli import app, fail
from ..errors import InputError

console = Console(stderr=True)
serve_app = typer.Typer(
    invoke_without_command=True,
    no_args_is_help=False,
    help="The lab web service (runs it without a subcommand); 'verify' checks its records, "
    "'backup' and 'restore' keep its database.",
)
app.add_typer(serve_app, name="serve")


@serve_app.command("verify")
def verify_cmd(
    db: str = typer.Option("sqlite:///oligolab-lab.db", "--db", help="database URL of the service"),
) -> None:
    """Recompute the audit chain, every result version's hash and every sign-off; name each break (exit 1)."""
    from .db import make_engine, migrate, session_factory
    from .verify import verify

    try:
        migrate(db)
        engine = make_engine(db)
        with session_factory(engine)() as s:
            report = verify(s)
        engine.dispose()
    except Exception as exc:  # unreachable database, wrong URL
        fail(f"{db}: cannot open the database ({type(exc).__name__}: {str(exc).splitlines()[0]})")
    out = Console()
    out.print(
        f"{report.events} audit events, chain head {report.head[0]} {report.head[1][:16]}…; "
        f"{report.versions} result versions, {report.signoffs} sign-offs, {report.users} users checked",
        highlight=False,
    )
    for b in report.breaks:
        out.print(f"BREAK {b}", highlight=False, soft_wrap=True)
    if report.breaks:
        out.print(f"[bold red]{len(report.breaks)} break(s): the records were changed outside the service[/]")
        raise typer.Exit(1)
    out.print("[bold green]intact[/]: every event chains, every version and sign-off matches its audited hash")


@serve_app.callback()
def serve(
    ctx: typer.Context,
    db: str = typer.Option(
        "sqlite:///oligolab-lab.db",
        "--db",
        help="database URL: sqlite:///FILE (default, nothing to install) or postgresql+psycopg://USER@HOST:PORT/NAME",
    ),
    host: str = typer.Option("127.0.0.1", help="address to listen on (127.0.0.1: this computer only)"),
    port: int = typer.Option(8000, help="TCP port"),
    web_processes: int = typer.Option(
        2,
        help="processes answering requests, each with its own queue thread and "
        "analysis process (2 keeps page p99 under 1 s for 50 users on 2 "
        "cores; 1 for a small machine)",
    ),
    workers: int = typer.Option(1, help="queue threads taking uploaded plates (per web process)"),
    analysis_processes: int = typer.Option(
        1, help="processes the analyses run in (0: inside the service process; more than the cores gains nothing)"
    ),
    demo: bool = typer.Option(
        False,
        help="on a new database, create training accounts tech, reviewer and "
        "admin with --demo-password (never on a production database)",
    ),
    demo_password: str = typer.Option("oligolab-demo", help="password of the training accounts"),
    lab_name: str = typer.Option("Regional laboratory", help="name of the lab created on a new database"),
    no_watch: bool = typer.Option(
        False, "--no-watch", help="skip assay watch (oligolab check on the bundled genomes at start-up)"
    ),
    secure_cookies: bool = typer.Option(False, help="mark cookies Secure (behind an HTTPS proxy)"),
    log_level: str = typer.Option("warning", help="uvicorn log level"),
    access_log: bool = typer.Option(False, help="log every request"),
    root_path: str | None = typer.Option(None, help="URL prefix when served behind a proxy"),
) -> None:
    """Run the lab service: upload plates, review, sign, export; opens on http://HOST:PORT/."""
    if ctx.invoked_subcommand is not None:
        return
    import uvicorn

    from . import auth
    from .app import SETTINGS_ENV, Settings, create_app
    from .db import make_engine, migrate, session_factory
    from .process import PARENT_ENV, port_in_use
    from .watch import WatchInputs

    busy = port_in_use(host, port)
    if busy:
        fail(
            f"{host}:{port}: cannot listen there ({busy}): another service (perhaps an oligolab serve still "
            "running) has the port; stop it or choose another --port"
        )
    try:
        migrate(db)
        engine = make_engine(db)
        with session_factory(engine).begin() as s:
            lines = auth.bootstrap(s, lab_name=lab_name, demo_password=demo_password if demo else None)
        engine.dispose()
    except InputError as exc:
        fail(str(exc))
    except Exception as exc:  # unreachable database, wrong URL
        fail(
            f"{db}: cannot open the database ({type(exc).__name__}: {str(exc).splitlines()[0]}); "
            "check --db and that the server runs"
        )
    for line in lines:
        console.print(f"[bold green]{line}[/]", highlight=False)
    settings: dict[str, Any] = dict(
        db_url=db,
        worker_threads=workers,
        secure_cookies=secure_cookies,
        analysis_processes=analysis_processes,
        freeze_start=True,
    )
    console.print(
        f"oligolab lab service on http://{host}:{port}/  (database {db.split('@')[-1]}); Ctrl-C stops it",
        highlight=False,
    )
    common: dict[str, Any] = dict(
        host=host, port=port, log_level=log_level, access_log=access_log, root_path=root_path or ""
    )
    if web_processes > 1:
        import json
        import os

        from .worker import Worker, recover

        engine = make_engine(db)
        recover(session_factory(engine))
        if not no_watch:  # assay watch once, in this parent process, not once per web process
            Worker(session_factory(engine), threads=0, watch_inputs=WatchInputs()).start()
        os.environ[SETTINGS_ENV] = json.dumps(settings)
        os.environ[PARENT_ENV] = str(os.getpid())  # the web processes die with this one
        uvicorn.run("oligolab.service.app:app_from_environment", factory=True, workers=web_processes, **common)
    else:
        uvicorn.run(create_app(Settings(**settings, watch_inputs=None if no_watch else WatchInputs())), **common)


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
    from . import backup as bk

    try:
        made = bk.backup(db, to)
        gone = bk.prune(to, keep_daily, keep_weekly, keep_monthly)
    except InputError as exc:
        fail(str(exc))
    out = Console()
    out.print(f"backup {made.path} ({made.size / 1e6:.1f} MB)", highlight=False)
    for b in gone:
        out.print(
            f"removed {b.path.name} (retention {keep_daily} daily / {keep_weekly} weekly / {keep_monthly} monthly)",
            highlight=False,
        )


@serve_app.command("restore")
def restore_cmd(
    backup_file: Path = typer.Argument(..., help="a file written by oligolab serve backup"),
    db: str = typer.Option(..., "--db", help="database URL to restore into (an empty one)"),
    force: bool = typer.Option(False, "--force", help="replace what the database holds"),
) -> None:
    """Restore a backup into an empty database (or replace one with --force); check it afterwards with
    oligolab serve verify."""
    from . import backup as bk

    try:
        bk.restore(backup_file, db, force=force)
    except InputError as exc:
        fail(str(exc))
    Console().print(
        f"restored {backup_file} into {db.split('@')[-1]}; check it with: oligolab serve verify --db {db}",
        highlight=False,
    )
