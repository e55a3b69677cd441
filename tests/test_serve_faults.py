"""Faults against the real PostgreSQL: the database drops and refuses connections during an analysis, an upload
arrives during the outage, and the service process is killed mid-analysis. Nothing uploaded or analysed is lost
and no result is half-written."""

from __future__ import annotations

import hashlib
import os
import signal
import threading
import time

import psycopg
import pytest
from fastapi.testclient import TestClient
from serve_support import PG_ADMIN, RUN, free_port, make_app, pg_database, start_server, stop_server, token, upload

pytestmark = pytest.mark.slow


def _admin():
    return psycopg.connect(PG_ADMIN.replace("+psycopg", ""), autocommit=True)


def _outage(dbname: str, seconds: float) -> threading.Thread:
    """Drop every connection to ``dbname`` and refuse new ones for ``seconds`` (what clients of a restarting
    server see), then let them in again; returns the thread that ends the outage."""
    with _admin() as c:
        c.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS false')
        c.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> "
                  "pg_backend_pid()", (dbname,))

    def end():
        time.sleep(seconds)
        with _admin() as c:
            c.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS true')
    t = threading.Thread(target=end, daemon=True)
    t.start()
    return t


def _state(url: str, batch_id: int) -> tuple[str, int, int, str]:
    with psycopg.connect(url.replace("+psycopg", "")) as c:
        status, attempts, version, sha = c.execute(
            "SELECT status, attempts, current_version, encode(sha256(run_bytes), 'hex') FROM batches WHERE id = %s",
            (batch_id,)).fetchone()
        return status, attempts, version, sha


def _count(url: str, sql: str, *args) -> int:
    with psycopg.connect(url.replace("+psycopg", "")) as c:
        return c.execute(sql, args).fetchone()[0]


def test_database_outage_mid_analysis_loses_nothing(monkeypatch):
    from oligolab.service import worker as worker_mod

    real_analyse = worker_mod.analysis.document_job
    calls = {"n": 0}
    with pg_database() as url:
        dbname = url.rsplit("/", 1)[1]
        ender: list[threading.Thread] = []

        def analyse_then_outage(*args, **kwargs):
            document = real_analyse(*args, **kwargs)
            calls["n"] += 1
            if calls["n"] == 1:      # the first analysis finishes just as the database goes away
                ender.append(_outage(dbname, 3.0))
            return document

        monkeypatch.setattr(worker_mod.analysis, "document_job", analyse_then_outage)
        app = make_app(url, start_worker=True)
        with TestClient(app) as client:
            tech = token(client, "tech")
            r = upload(client, tech)
            assert r.status_code == 201
            bid = r.json()["id"]
            deadline = time.time() + 60
            while time.time() < deadline:
                try:
                    if _state(url, bid)[0] == "analysed":
                        break
                except psycopg.OperationalError:
                    pass                      # the outage
                time.sleep(0.3)
            status, attempts, version, sha = _state(url, bid)
            assert ender and not ender[0].is_alive()
            assert status == "analysed" and version == 1 and attempts == 2 and calls["n"] == 2
            assert sha == hashlib.sha256(RUN.read_bytes()).hexdigest()
            assert _count(url, "SELECT count(*) FROM batch_versions WHERE batch_id = %s", bid) == 1
            actions = [a["action"] for a in reversed(client.get(f"/api/audit?batch={bid}", headers=tech).json())]
            assert actions == ["upload", "analyse"]
            res = client.get(f"/api/batches/{bid}", headers=tech).json()["result"]
            assert res["summary"]["samples"] == 25 and res["valid"] is True
        app.state.engine.dispose()


def test_upload_during_outage_is_refused_then_accepted():
    with pg_database() as url:
        dbname = url.rsplit("/", 1)[1]
        app = make_app(url)
        with TestClient(app) as client:
            tech = token(client, "tech")
            ender = _outage(dbname, 2.0)
            r = upload(client, tech)
            assert r.status_code == 503 and "nothing was stored" in r.json()["error"]
            ender.join()
            assert _count(url, "SELECT count(*) FROM batches") == 0
            r = upload(client, tech)             # the pool replaces the dropped connections by itself
            assert r.status_code == 201
            assert _count(url, "SELECT count(*) FROM batches") == 1
            assert client.get("/api/health").json()["status"] == "ok"
        app.state.engine.dispose()


def test_service_killed_mid_analysis_resumes_on_restart(tmp_path):
    import httpx

    with pg_database() as url:
        port = free_port()
        log = tmp_path / "serve.log"
        proc, base = start_server(url, log, "--demo", "--no-watch", port=port)
        try:
            with httpx.Client(base_url=base, timeout=30) as http:
                tech = token(http, "tech")
                killed = None
                for _attempt in range(8):
                    r = upload(http, tech)
                    assert r.status_code == 201, r.text
                    bid = r.json()["id"]
                    deadline = time.time() + 30
                    while time.time() < deadline:
                        status = _state(url, bid)[0]
                        if status != "queued":
                            break
                        time.sleep(0.005)
                    if status == "running":
                        os.killpg(proc.pid, signal.SIGKILL)        # no clean shutdown of any kind
                        proc.wait(10)
                        killed = bid
                        break
            assert killed is not None, "never caught an analysis in progress"
            assert _state(url, killed)[0] == "running" and _state(url, killed)[2] == 0   # nothing half-written
            proc, _ = start_server(url, log, "--demo", "--no-watch", port=port)
            deadline = time.time() + 60
            while time.time() < deadline and _state(url, killed)[0] != "analysed":
                time.sleep(0.3)
            status, attempts, version, sha = _state(url, killed)
            assert status == "analysed" and version == 1 and attempts == 2
            assert sha == hashlib.sha256(RUN.read_bytes()).hexdigest()
            assert _count(url, "SELECT count(*) FROM batch_versions WHERE batch_id = %s", killed) == 1
            assert _count(url, "SELECT count(*) FROM batches WHERE status <> 'analysed'") == 0
            with httpx.Client(base_url=base, timeout=30) as http:
                tech = token(http, "tech")
                audit = [a["action"] for a in reversed(http.get(f"/api/audit?batch={killed}", headers=tech).json())]
                assert audit == ["upload", "recover", "analyse"]
                res = http.get(f"/api/batches/{killed}", headers=tech).json()["result"]
                assert res["summary"]["samples"] == 25
        finally:
            stop_server(proc)


def test_application_role_cannot_rewrite_the_audit_trail():
    """Production layout: the owner role migrates, the service connects as an application role with data rights
    only. That role works normally, but cannot UPDATE, DELETE or TRUNCATE audit events, nor drop the triggers."""
    import uuid

    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import DBAPIError

    role = f"oligolab_app_{uuid.uuid4().hex[:8]}"
    with pg_database() as url:
        app = make_app(url)                  # migrated and seeded by the owner (the admin role here)
        app.state.engine.dispose()
        with _admin() as c:
            c.execute(f'CREATE ROLE "{role}" LOGIN')
        try:
            with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as c:
                # a generous grant, as a hurried administrator might give: every data right on every table
                c.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA public TO "{role}"')
                c.execute(f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO "{role}"')
            app_url = url.replace("postgres@", f"{role}@")
            app = make_app(app_url)
            with TestClient(app) as client:
                tech = token(client, "tech")
                assert upload(client, tech).status_code == 201        # the service works as this role
            app.state.engine.dispose()
            engine = create_engine(app_url)
            for sql in ["UPDATE audit_events SET username = 'mallory'", "DELETE FROM audit_events",
                        "TRUNCATE audit_events", "DROP TRIGGER audit_events_no_update ON audit_events",
                        "ALTER TABLE audit_events DISABLE TRIGGER ALL"]:
                with pytest.raises(DBAPIError):
                    with engine.begin() as c:
                        c.execute(text(sql))
            with engine.connect() as c:
                actions = [r[0] for r in c.execute(text("SELECT action FROM audit_events ORDER BY id"))]
            engine.dispose()
            assert "upload" in actions and "mallory" not in actions
        finally:
            with _admin() as c:
                c.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,))
            with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as c:
                c.execute(f'REVOKE ALL ON ALL TABLES IN SCHEMA public FROM "{role}"')
                c.execute(f'REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM "{role}"')
            with _admin() as c:
                c.execute(f'DROP ROLE IF EXISTS "{role}"')
