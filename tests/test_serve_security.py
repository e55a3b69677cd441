"""Security of the lab service: authentication on every route, roles, CSRF, lab separation, hostile uploads."""

from __future__ import annotations

import io
import re
import tempfile
import zipfile
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from serve_support import PLATE_MAP, RUN, drain, make_app, token, upload
from sqlalchemy import func, select


@pytest.fixture()
def client(tmp_path):
    app = make_app(f"sqlite:///{tmp_path}/lab.db")
    with TestClient(app, follow_redirects=False) as c:
        yield c


PUBLIC = {"/api/health", "/login", "/api/login", "/static/app.css", "/static/plotly.min.js", "/static/app.js"}


def _all_routes(routes):
    """The app's routes, those of included routers too (FastAPI includes routers as one entry each)."""
    for route in routes:
        if hasattr(route, "original_router"):
            yield from _all_routes(route.original_router.routes)
        else:
            yield route


def _routes(app):
    for route in _all_routes(app.routes):
        if isinstance(route, APIRoute) and route.path not in PUBLIC:
            for method in route.methods:
                yield method, re.sub(r"\{(\w+)\}", lambda m: "csv" if m.group(1) == "kind" else "1", route.path)


def test_every_route_refuses_anonymous_requests(client):
    tech = token(client, "tech")
    upload(client, tech)                      # batch 1 exists: refusals are not mere 404s
    routes = list(_routes(client.app))
    assert len(routes) >= 30
    for method, path in routes:
        r = client.request(method, path)
        if path.startswith("/api/") and path != "/api/docs":
            assert r.status_code == 401, (method, path, r.status_code)
        else:
            assert r.status_code == 303 and r.headers["location"].startswith("/login"), (method, path, r.status_code)
    # a forged or expired token is no better
    bad = {"Authorization": "Bearer not-a-token"}
    for method, path in routes:
        if path.startswith("/api/"):
            expected = 303 if path == "/api/docs" else 401       # the docs page sends a browser to sign in
            assert client.request(method, path, headers=bad).status_code == expected, (method, path)
    assert client.get("/api/health").status_code == 200


def test_roles(client):
    tech, rev, admin = token(client, "tech"), token(client, "reviewer"), token(client, "admin")
    bid = upload(client, tech).json()["id"]
    drain(client.app)
    # a technician can neither correct nor sign, by API or by page
    assert client.post(f"/api/batches/{bid}/sign", headers=tech, json={"version": 1}).status_code == 403
    r = client.post(f"/api/batches/{bid}/corrections", headers=tech,
                    json={"changes": [{"sample": "S-001", "accept": True}], "reason": "x"})
    assert r.status_code == 403
    assert client.post(f"/batches/{bid}/sign", headers=tech, data={"version": "1"}).status_code == 403
    # nor administer
    assert client.post("/api/users", headers=tech, json={"username": "eve", "password": "0123456789x",
                                                         "role": "admin"}).status_code == 403
    assert client.post("/api/users", headers=rev, json={"username": "eve", "password": "0123456789x",
                                                        "role": "admin"}).status_code == 403
    assert client.get("/admin", headers=rev).status_code == 403
    assert client.get("/admin", headers=admin).status_code == 200
    # nothing changed: still version 1, unsigned
    b = client.get(f"/api/batches/{bid}", headers=rev).json()
    assert b["status"] == "analysed" and b["version"] == 1 and b["signed_by"] == ""


def _browser_login(client, username: str) -> str:
    """Sign in through the login page like a browser; returns the page's CSRF token."""
    page = client.get("/login").text
    login_csrf = re.search(r'name="login_csrf" value="([^"]+)"', page).group(1)
    r = client.post("/login", data={"username": username, "password": "oligolab-demo", "next": "/",
                                    "login_csrf": login_csrf})
    assert r.status_code == 303 and r.headers["location"] == "/"
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get("/").text).group(1)


def test_csrf_on_browser_forms(client):
    csrf = _browser_login(client, "reviewer")
    files = {"run_file": (RUN.name, RUN.read_bytes()), "plate_map": (PLATE_MAP.name, PLATE_MAP.read_bytes())}
    # without the token (a cross-site form post): refused, nothing stored
    r = client.post("/batches", data={"assay_id": "1"}, files=files)
    assert r.status_code == 403
    r = client.post("/api/batches", data={"assay_id": "1"}, files=files)      # cookie-authenticated API call
    assert r.status_code == 403
    assert client.get("/api/batches").json() == []
    # with it: accepted
    r = client.post("/batches", data={"assay_id": "1", "csrf_token": csrf}, files=files)
    assert r.status_code == 303 and r.headers["location"] == "/batches/1"
    # login form without its own token is refused too (login CSRF)
    client.cookies.clear()
    r = client.post("/login", data={"username": "reviewer", "password": "oligolab-demo", "login_csrf": "x"})
    assert r.status_code == 303 and "expired" in r.headers["location"]
    # no open redirect after sign-in
    page = client.get("/login?next=//evil.example/x").text
    assert 'name="next" value="/"' in page


def test_labs_are_separated(client):
    from oligolab.service import auth
    from oligolab.service.rulesets import seed_lab

    tech = token(client, "tech")
    bid = upload(client, tech).json()["id"]
    drain(client.app)
    with client.app.state.factory.begin() as db:
        other = auth.get_or_create_lab(db, "Another hospital")
        seed_lab(db, other.id)
        auth.create_user(db, lab=other, username="otto", password="another-password", role="admin")
    otto = token(client, "otto", "another-password")
    assert client.get("/api/batches", headers=otto).json() == []
    for path in [f"/api/batches/{bid}", f"/api/batches/{bid}/export.csv", f"/api/batches/{bid}/versions",
                 f"/batches/{bid}", f"/batches/{bid}/samples/S-001"]:
        assert client.get(path, headers=otto).status_code == 404, path
    assert client.get("/api/audit", headers=otto).json()[-1]["entity"] == "assay"   # only its own lab's events
    assert all(e["entity"] != "batch" for e in client.get("/api/audit", headers=otto).json())
    # nor can it upload into the first lab's assay
    r = upload(client, otto, assay_id=1)
    assert r.status_code == 400 and "unknown assay" in r.json()["error"]


def _zip(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(name, data)
    return buf.getvalue()


def _hostile_cases(tmp: Path) -> list[tuple[str, dict, str]]:
    """(label, upload kwargs, expected words in the one-line error)."""
    bomb = _zip("rdml_data.xml", b"<" + b"0" * (300 << 20))        # 300 MiB of zeros in a few hundred KiB
    broken_xml = _zip("rdml_data.xml", RUN.read_bytes()[:0] + b"<rdml version='1.4'><run><unclosed>")
    wrong_map = tmp / "wrong_map.csv"
    wrong_map.write_text("position_of_tube,name\nA1,S-1\n")
    unknown_wells = tmp / "unknown_wells.csv"
    unknown_wells.write_text(PLATE_MAP.read_text() + "Q99,S-999,sample,N1\n")
    big = tmp / "big_map.csv"
    big.write_bytes(b"well,sample\n" + b"A1,x\n" * (7 << 20))
    return [
        ("not a zip", {"run_name": "plate.rdml", "run_bytes": b"this is not an RDML file\n"}, "plate.rdml"),
        ("damaged zip", {"run_name": "plate.rdml", "run_bytes": b"PK\x03\x04broken"}, "damaged zip"),
        ("zip bomb", {"run_name": "bomb.rdml", "run_bytes": bomb}, "zip bomb"),
        ("broken XML", {"run_name": "broken.rdml", "run_bytes": broken_xml}, "broken.rdml"),
        ("wrong plate map", {"plate_map": wrong_map}, "wrong_map.csv, line 1: the plate map has no 'well' column"),
        ("unknown wells", {"plate_map": unknown_wells}, "unknown_wells.csv"),
        ("oversized", {"plate_map": big}, "larger than 32 MiB"),
        ("empty", {"run_name": "empty.rdml", "run_bytes": b""}, "empty"),
        ("wrong type", {"run_name": "run.exe", "run_bytes": b"MZ\x90\x00"}, "not a run file type"),
        ("plate of another assay", {"plate_map": None}, "none of the plate's targets (483-533)"),
    ]


def test_hostile_uploads_are_refused_cleanly(client, tmp_path, monkeypatch):
    from oligolab.service.db import AuditEvent, Batch

    scratch = tmp_path / "scratch"          # the service's temporary files go here, watched for leftovers
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    tech = token(client, "tech")
    for label, kwargs, words in _hostile_cases(tmp_path):
        r = upload(client, tech, **kwargs)
        assert r.status_code in (400, 413), (label, r.status_code, r.text)
        error = r.json()["error"]
        assert words in error and "\n" not in error, (label, error)
    # nothing left behind: no batch, no audit event, no temporary files; the service still works
    with client.app.state.factory() as db:
        assert db.scalar(select(func.count()).select_from(Batch)) == 0
        assert db.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.entity == "batch")) == 0
    assert list(scratch.iterdir()) == []
    assert upload(client, tech).status_code == 201


def test_run_with_missing_readings_is_analysed_and_held(client, tmp_path):
    """Missing readings are repaired and the curves held, as the command line does (the service used to fail
    the batch telling the browser user to "analyse with --repair-gaps")."""
    from oligolab.lab.analysis import load_runs
    from oligolab.lab.formats.rdml import write_rdml
    from oligolab.lab.platemap import apply_plate_map, read_plate_map
    from oligolab.service import analysis
    from oligolab.service.db import Batch

    run = apply_plate_map(load_runs(RUN)[0], read_plate_map(PLATE_MAP))
    gap = int((run.layout["well"] == "A17").to_numpy().argmax())        # S-001's N1 well
    run.fluor[gap, 14:17] = float("nan")                                # cycles 15-17 not read
    path = write_rdml(run, tmp_path / "gaps.rdml")
    tech, rev = token(client, "tech"), token(client, "reviewer")
    r = upload(client, tech, run=path, plate_map=None)
    assert r.status_code == 201, r.text
    drain(client.app)
    detail = client.get(f"/api/batches/{r.json()['id']}", headers=rev).json()
    assert detail["status"] == "analysed", detail["error"]
    sample = next(s for s in detail["result"]["samples"] if s["sample"] == "S-001")
    assert sample["status"] == "review"
    with client.app.state.factory() as db:
        stored = analysis.version(db, db.get(Batch, r.json()["id"])).result
    well = next(w for w in stored["wells"] if w["well"] == "A17")
    assert "gap_repaired:cycles 15-17" in well["flags"] and well["review"]
    assert stored["provenance"]["gaps"] == "repair"


def test_hostile_upload_in_the_page_shows_the_message(client):
    csrf = _browser_login(client, "tech")
    r = client.post("/batches", data={"assay_id": "1", "csrf_token": csrf},
                    files={"run_file": ("notes.rdml", b"hello")})
    assert r.status_code == 303 and r.headers["location"].startswith("/?error=")
    page = client.get(r.headers["location"]).text
    assert 'id="error"' in page and "notes.rdml" in page and "No batches yet" in page


def test_uploaded_file_names_cannot_escape(client):
    tech = token(client, "tech")
    r = upload(client, tech, run_name="../../../../etc/cron.d/x.rdml")
    assert r.status_code == 201
    assert client.get(f"/api/batches/{r.json()['id']}", headers=tech).json()["run_file"] == "x.rdml"


def test_passwords_are_hashed_with_argon2(client):
    from oligolab.service.db import User

    with client.app.state.factory() as db:
        hashes = [u.password_hash for u in db.scalars(select(User))]
    assert hashes and all(h.startswith("$argon2id$") and "oligolab-demo" not in h for h in hashes)
    r = client.post("/api/login", json={"username": "tech", "password": "wrong-password"})
    assert r.status_code == 401


def test_admin_forms_add_a_user_and_show_errors(client):
    csrf = _browser_login(client, "admin")
    r = client.post("/admin/users", data={"csrf_token": csrf, "username": "bea", "role": "technician",
                                          "password": "bea-long-password"})
    assert r.status_code == 303 and r.headers["location"] == "/admin"
    assert "bea" in client.get("/admin").text
    r = client.post("/admin/users", data={"csrf_token": csrf, "username": "cy", "role": "technician",
                                          "password": "short"})
    assert r.status_code == 303 and "error=" in r.headers["location"]
    assert "shorter than 10 characters" in client.get(r.headers["location"]).text
    r = client.post("/admin/assays", data={"csrf_token": csrf, "name": "X", "ruleset": "no-such-rules"})
    assert "no+rule+set" in r.headers["location"] or "no%20rule%20set" in r.headers["location"]
    audit = client.get("/api/audit", headers={"X-CSRF-Token": csrf}).json()
    assert [a["entity_id"] for a in audit if a["entity"] == "user" and a["user"] == "admin"] == ["bea"]
    assert token(client, "bea", "bea-long-password")
