"""``oligolab serve backup`` / ``restore`` (oligolab.service.backup) on SQLite (online backup API, while the
service writes) and PostgreSQL (pg_dump / pg_restore): a restored database holds the same rows and passes
``oligolab serve verify``; retention keeps dailies, weeklies and monthlies."""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading

import pytest
from fastapi.testclient import TestClient

from oligolab.errors import InputError
from oligolab.service import backup as bk
from serve_support import drain, make_app, pg_database, token, upload

UTC = dt.timezone.utc
TABLES = ("labs", "users", "batches", "batch_versions", "audit_events")


def _filled(url: str) -> dict[str, int]:
    """A service database with a signed real plate; its row counts."""
    app = make_app(url)
    with TestClient(app) as client:
        tech, rev = token(client, "tech"), token(client, "reviewer")
        r = upload(client, tech, name="backup plate")
        assert r.status_code == 201, r.text
        drain(app)
        b = client.get(f"/api/batches/{r.json()['id']}", headers=tech).json()
        held = [s["sample"] for s in b["result"]["samples"] if s.get("status") == "review"]
        if held:
            client.post(f"/api/batches/{b['id']}/corrections", headers=rev,
                        json={"changes": [{"sample": s, "accept": True} for s in held], "reason": "curves checked"})
        v = client.get(f"/api/batches/{b['id']}", headers=tech).json()["version"]
        assert client.post(f"/api/batches/{b['id']}/sign", headers=rev, json={"version": v}).status_code == 200
    return _counts(url)


def _counts(url: str) -> dict[str, int]:
    from sqlalchemy import text

    from oligolab.service.db import make_engine

    engine = make_engine(url)
    with engine.connect() as c:
        out = {t: c.execute(text(f"SELECT count(*) FROM {t}")).scalar() for t in TABLES}
    engine.dispose()
    return out


def _verified(url: str) -> bool:
    from oligolab.service.db import make_engine, session_factory
    from oligolab.service.verify import verify

    engine = make_engine(url)
    with session_factory(engine)() as s:
        report = verify(s)
    engine.dispose()
    assert report.ok, [str(b) for b in report.breaks]
    return report.events > 0 and report.signoffs == 1


def test_sqlite_backup_while_writing_and_restore(tmp_path):
    url = f"sqlite:///{tmp_path}/lab.db"
    counts = _filled(url)
    stop = threading.Event()

    def writer():                         # the service keeps writing while the backup copies
        con = sqlite3.connect(tmp_path / "lab.db", timeout=30)
        con.execute("CREATE TABLE IF NOT EXISTS scratch (x INTEGER)")
        while not stop.is_set():
            con.execute("INSERT INTO scratch VALUES (1)")
            con.commit()
        con.close()

    t = threading.Thread(target=writer)
    t.start()
    try:
        made = bk.backup(url, tmp_path / "backups", now=dt.datetime(2026, 12, 5, 3, 0, tzinfo=UTC))
    finally:
        stop.set()
        t.join()
    assert made.path.name == "oligolab-lab-20261205T030000Z.sqlite" and made.size > 0
    assert not list((tmp_path / "backups").glob("*.part"))
    target = f"sqlite:///{tmp_path}/restored.db"
    bk.restore(made.path, target)
    assert _counts(target) == counts and _verified(target)
    with pytest.raises(InputError, match="not empty"):
        bk.restore(made.path, target)
    bk.restore(made.path, target, force=True)
    with pytest.raises(InputError, match="cannot be restored into postgresql"):
        bk.restore(made.path, "postgresql+psycopg://postgres@127.0.0.1:5432/nowhere")


def test_postgresql_backup_and_restore_with_the_cli(tmp_path, capsys):
    from oligolab.cli import main

    with pg_database() as url, pg_database() as target:
        counts = _filled(url)
        with pytest.raises(SystemExit) as done:
            main(["serve", "backup", "--db", url, "--to", str(tmp_path / "pg")])
        assert done.value.code in (0, None)
        made = bk.list_backups(tmp_path / "pg")
        assert len(made) == 1 and made[0].kind == "pgdump"
        with pytest.raises(SystemExit) as done:
            main(["serve", "restore", str(made[0].path), "--db", target])
        assert done.value.code in (0, None)
        assert _counts(target) == counts and _verified(target)
        with pytest.raises(SystemExit) as done:
            main(["serve", "restore", str(made[0].path), "--db", target])
        assert done.value.code == 2 and "not empty" in capsys.readouterr().err


def test_retention_keeps_dailies_weeklies_monthlies(tmp_path):
    start = dt.datetime(2026, 1, 1, 2, 0, tzinfo=UTC)
    for day in range(400):                                  # a daily backup for 400 days (two on the last)
        at = start + dt.timedelta(days=day)
        (tmp_path / f"oligolab-lab-{at:%Y%m%dT%H%M%SZ}.sqlite").write_bytes(b"x")
    (tmp_path / "oligolab-lab-20270205T180000Z.sqlite").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("not a backup")
    kept = bk.keep(bk.list_backups(tmp_path), daily=7, weekly=5, monthly=12)
    days = sorted({b.at.date() for b in kept}, reverse=True)
    newest = dt.date(2027, 2, 5)
    assert days[:7] == [newest - dt.timedelta(days=i) for i in range(7)]
    assert kept[0].at.hour == 18                            # the newest backup of the day
    months = {(b.at.year, b.at.month) for b in kept}
    assert len(months) == 12 and (2026, 3) in months and (2026, 2) not in months
    gone = bk.prune(tmp_path, daily=7, weekly=5, monthly=12)
    assert len(bk.list_backups(tmp_path)) == len(kept) == 401 - len(gone)
    assert (tmp_path / "notes.txt").exists()


def test_backup_refusals(tmp_path):
    with pytest.raises(InputError, match="no such SQLite database"):
        bk.backup(f"sqlite:///{tmp_path}/none.db", tmp_path)
    with pytest.raises(InputError, match="in-memory"):
        bk.backup("sqlite:///:memory:", tmp_path)
    with pytest.raises(InputError, match="not a database URL"):
        bk.backup("mysql://x/y", tmp_path)
    with pytest.raises(InputError, match="no such backup file"):
        bk.restore(tmp_path / "oligolab-x-20260101T000000Z.sqlite", f"sqlite:///{tmp_path}/t.db")
