"""Tamper evidence: signed versions and sign-offs are refused UPDATE and DELETE by the database for the role
the service connects as (PostgreSQL application role, SQLite connection); changes written around the triggers
(a PostgreSQL superuser, direct access to the SQLite file) are each named by ``oligolab serve verify`` and the
admin page: an edited signed result, a sign-off given to a user that does not exist, a technician made admin,
a forged audit event."""

from __future__ import annotations

import html
import json
import re
import sqlite3
import subprocess
import sys
import uuid

import pytest
from fastapi.testclient import TestClient
from serve_support import ROOT, drain, make_app, pg_database, token, upload
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

REFUSED = ["UPDATE batch_versions SET reason = 'x'", "DELETE FROM batch_versions",
           "UPDATE signoffs SET signed_by = 'ghost'", "DELETE FROM signoffs",
           "UPDATE audit_events SET username = 'mallory'", "DELETE FROM audit_events"]


def _signed_batch(client) -> tuple[int, int, str]:
    tech, rev = token(client, "tech"), token(client, "reviewer")
    bid = upload(client, tech).json()["id"]
    drain(client.app)
    samples = client.get(f"/api/batches/{bid}", headers=rev).json()["result"]["samples"]
    held = [s["sample"] for s in samples if s["status"] == "review"]
    if held:
        client.post(f"/api/batches/{bid}/corrections", headers=rev,
                    json={"changes": [{"sample": s, "accept": True} for s in held], "reason": "reviewed"})
    number = client.get(f"/api/batches/{bid}", headers=rev).json()["version"]
    assert client.post(f"/api/batches/{bid}/sign", headers=rev, json={"version": number}).status_code == 200
    name = samples[1]["sample"]
    return bid, number, name


def _verify_cli(url: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "oligolab.cli", "serve", "verify", "--db", url], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def _tamper(run_sql, bid: int, number: int, name: str) -> None:
    """What the penetration test did, written around the triggers."""
    row = run_sql(f"SELECT result FROM batch_versions WHERE batch_id = {bid} AND version = {number}")
    result = json.loads(row) if isinstance(row, str) else row
    for s in result["samples"]:
        if s["sample"] == name:
            s["final_call"] = "negative" if s["final_call"] != "negative" else "positive"
    run_sql("UPDATE batch_versions SET result = :r WHERE batch_id = :b AND version = :v",
            {"r": json.dumps(result), "b": bid, "v": number})
    run_sql("UPDATE signoffs SET signed_by = 'ghost' WHERE batch_id = :b", {"b": bid})
    run_sql("UPDATE users SET role = 'admin' WHERE username = 'tech'")
    last = run_sql("SELECT MAX(seq) FROM audit_events")
    run_sql("INSERT INTO audit_events (seq, prev_sha256, sha256, lab_id, at, username, action, entity, entity_id) "
            "VALUES (:s, 'f0', 'f1', 1, '2026-01-01 00:00:00', 'admin', 'sign', 'batch', '99')", {"s": last + 1})


def _assert_named(out: str) -> None:
    assert "version" in out and "the signed results were changed" in out          # edited signed row
    assert "sign-off (by ghost) differs from the audited sign event" in out        # forged signer
    assert "user tech" in out and "role 'technician' -> 'admin'" in out            # role change outside
    assert re.search(r"audit event \d+ .*by admin.*(edited|hash of the event before)", out)   # forged event
    assert "chain head" in out


def test_sqlite_refuses_and_verify_names_every_break(tmp_path):
    url = f"sqlite:///{tmp_path}/lab.db"
    app = make_app(url)
    with TestClient(app) as client:
        bid, number, name = _signed_batch(client)
        for sql in REFUSED:
            with pytest.raises(DBAPIError, match="append-only"):
                with app.state.engine.begin() as c:
                    c.execute(text(sql))
        assert _verify_cli(url).returncode == 0
        # direct access to the database file: lift the triggers, change, put them back
        con = sqlite3.connect(tmp_path / "lab.db")
        triggers = con.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'").fetchall()
        for t, _ in triggers:
            con.execute(f"DROP TRIGGER {t}")

        def run_sql(sql, params=None):
            cur = con.execute(sql, params or {})
            row = cur.fetchone() if sql.startswith("SELECT") else None
            return row[0] if row else None
        _tamper(run_sql, bid, number, name)
        for _, sql in triggers:
            con.execute(sql)
        con.commit()
        con.close()
        cli = _verify_cli(url)
        assert cli.returncode == 1, cli.stdout
        _assert_named(cli.stdout)
        admin = token(client, "admin")
        page = client.get("/admin/verify", headers=admin).text
        _assert_named(html.unescape(page))


def test_postgres_application_role_refused_and_superuser_edits_named():
    role = f"oligolab_app_{uuid.uuid4().hex[:8]}"
    with pg_database() as url:
        make_app(url).state.engine.dispose()            # migrated by the owner
        admin_url = url.replace("+psycopg", "")
        import psycopg

        with psycopg.connect(admin_url, autocommit=True) as c:
            c.execute(f'CREATE ROLE "{role}" LOGIN')
            c.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "{role}"')
            c.execute(f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO "{role}"')
        try:
            app_url = url.replace("postgres@", f"{role}@")
            app = make_app(app_url)
            with TestClient(app) as client:
                bid, number, name = _signed_batch(client)
                engine = create_engine(app_url)
                for sql in REFUSED + ["TRUNCATE signoffs", "ALTER TABLE batch_versions DISABLE TRIGGER ALL"]:
                    with pytest.raises(DBAPIError):
                        with engine.begin() as c:
                            c.execute(text(sql))
                engine.dispose()
                assert _verify_cli(app_url).returncode == 0
                with psycopg.connect(admin_url, autocommit=True) as c:     # a superuser goes around the triggers
                    c.execute("SET session_replication_role = replica")

                    def run_sql(sql, params=None):
                        sql = re.sub(r":([a-z]\w*)", r"%(\1)s", sql)
                        cur = c.execute(sql, params or {})
                        return cur.fetchone()[0] if sql.startswith("SELECT") else None
                    _tamper(run_sql, bid, number, name)
                cli = _verify_cli(app_url)
                assert cli.returncode == 1, cli.stdout
                _assert_named(cli.stdout)
                page = client.get("/admin/verify", headers=token(client, "admin")).text
                _assert_named(html.unescape(page))
            app.state.engine.dispose()
        finally:
            with psycopg.connect(admin_url, autocommit=True) as c:
                c.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,))
                c.execute(f'REVOKE ALL ON ALL TABLES IN SCHEMA public FROM "{role}"')
                c.execute(f'REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM "{role}"')
                c.execute(f'DROP ROLE IF EXISTS "{role}"')


def test_upgrade_from_the_first_schema_keeps_records_verifiable(tmp_path):
    """A database of the first release (schema 0001: a signed version, plain audit events) is migrated: its
    sign-off moves to the sign-off table, its events are chained, and verify finds it intact; the old signed
    version exports as signed."""
    from alembic import command

    from oligolab.service.db import alembic_config

    url = f"sqlite:///{tmp_path}/old.db"
    command.upgrade(alembic_config(url), "0001")
    con = sqlite3.connect(tmp_path / "old.db")
    con.executescript("""
        INSERT INTO labs (id, name) VALUES (1, 'Regional laboratory');
        INSERT INTO assays (id, lab_id, name, ruleset, watch_assays, loinc_code, loinc_display, active)
            VALUES (1, 1, 'CDC', 'cdc-2019-ncov', '[]', '94500-6', 'SARS-CoV-2 RNA', 1);
        INSERT INTO batches (id, lab_id, assay_id, name, run_filename, run_bytes, run_sha256, map_filename, status,
            progress, error, attempts, current_version, created_by, created_at)
            VALUES (1, 1, 1, 'old plate', 'old.rdml', x'00', 'ab', '', 'signed', 'done', '', 1, 1, 'tech',
                    '2026-11-20 08:00:00');
        INSERT INTO batch_versions (id, batch_id, version, overrides, summary, result, curves, reason, created_by,
            created_at, signed_by, signed_at)
            VALUES (1, 1, 1, '[]', '{}', '{"valid": true, "summary": {}, "problems": [], "controls": [], "samples": [{"sample": "S-1", "call": "positive",
                    "final_call": "positive", "report": "detected", "action": ""}]}', '{}', 'automatic analysis',
                    'system', '2026-11-20 08:01:00', 'reviewer', '2026-11-20 09:00:00');
        INSERT INTO audit_events (lab_id, at, username, action, entity, entity_id, before, after) VALUES
            (1, '2026-11-20 08:00:00', 'tech', 'upload', 'batch', '1', NULL, '{"name": "old plate"}'),
            (1, '2026-11-20 09:00:00', 'reviewer', 'sign', 'batch', '1', '{"status": "analysed"}',
             '{"status": "signed", "version": 1}');
    """)
    con.commit()
    con.close()
    app = make_app(url)          # migrates to the newest schema; adds the demo accounts (audited)
    assert _verify_cli(url).returncode == 0, _verify_cli(url).stdout
    con = sqlite3.connect(tmp_path / "old.db")      # 0007: large columns stored last, rows and triggers kept
    assert [r[1] for r in con.execute("PRAGMA table_info(batches)")][-3:] == ["ruleset_text", "map_bytes", "run_bytes"]
    assert ([r[1] for r in con.execute("PRAGMA table_info(batch_versions)")][-4:]
            == ["ruleset_text", "result", "curves", "report_html"])
    assert con.execute("SELECT name, run_bytes FROM batches").fetchall() == [("old plate", b"\x00")]
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        con.execute("UPDATE batch_versions SET reason = 'edited'")
    assert con.execute("PRAGMA foreign_key_check").fetchall() == []
    con.close()
    with TestClient(app) as client:
        tech = token(client, "tech")
        assert client.get("/api/batches/1", headers=tech).json()["signed_by"] == "reviewer"
        bundle = client.get("/api/batches/1/export.fhir.json", headers=tech).json()
        assert bundle["entry"][0]["resource"]["status"] == "final"
        assert "SIGNED</span> version 1" in client.get("/api/batches/1/export.html", headers=tech).text
