"""The lab service on the shipped real run: upload, background analysis by the lab core, review, versions,
sign-off, exports (CSV, HTML, FHIR), daily summary, audit trail, assay watch; on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json

import pytest
from fastapi.testclient import TestClient
from serve_support import PLATE_MAP, RUN, drain, make_app, pg_database, token, upload
from sqlalchemy import func, select


@pytest.fixture(params=["sqlite", "postgresql"])
def client(request, tmp_path):
    if request.param == "sqlite":
        app = make_app(f"sqlite:///{tmp_path}/lab.db")
        with TestClient(app) as c:
            yield c
    else:
        with pg_database() as url:
            app = make_app(url)
            with TestClient(app) as c:
                yield c
            app.state.engine.dispose()


def _lab_core_samples():
    from oligolab.lab.analysis import analyze_file

    plate = analyze_file(RUN, plate_map=PLATE_MAP, rules="cdc-2019-ncov")[0]
    return plate.samples.set_index("sample")


def test_upload_analyse_review_sign_export(client):
    tech, rev = token(client, "tech"), token(client, "reviewer")
    r = upload(client, tech, name="morning plate 1")
    assert r.status_code == 201, r.text
    bid = r.json()["id"]
    assert client.get(f"/api/batches/{bid}", headers=tech).json()["status"] == "queued"
    assert drain(client.app) == 1

    b = client.get(f"/api/batches/{bid}", headers=tech).json()
    assert b["status"] == "analysed" and b["version"] == 1
    res = b["result"]
    assert res["valid"] is True and res["summary"]["samples"] == 25
    calls = {s["sample"]: s for s in res["samples"]}
    # the service's result is the lab core's, call for call and Cq for Cq
    core = _lab_core_samples()
    for name, s in calls.items():
        assert s["final_call"] == core.loc[name, "final_call"]
        if core.loc[name, "N1_cq"] == core.loc[name, "N1_cq"]:
            assert s["N1_cq"] == pytest.approx(core.loc[name, "N1_cq"], abs=1e-9)
    assert calls["S-002"]["final_call"] == "positive" and calls["S-001"]["final_call"] == "negative"
    held = [s["sample"] for s in res["samples"] if s["status"] == "review"]
    assert held, "the shipped run has flagged controls: samples are held for review"

    # signing is refused while samples are held
    r = client.post(f"/api/batches/{bid}/sign", headers=rev, json={"version": 1})
    assert r.status_code == 400 and "still need review" in r.json()["error"]

    # a correction makes version 2; version 1 is kept as it was
    r = client.post(f"/api/batches/{bid}/corrections", headers=rev,
                    json={"changes": [{"sample": "S-003", "call": "inconclusive"}], "reason": "late N2 rise re-read"})
    assert r.status_code == 200 and r.json()["version"] == 2
    r = client.post(f"/api/batches/{bid}/corrections", headers=rev,
                    json={"changes": [{"sample": s, "accept": True} for s in held if s != "S-003"],
                          "reason": "curves reviewed: calls confirmed"})
    assert r.json()["version"] == 3
    versions = client.get(f"/api/batches/{bid}/versions", headers=rev).json()
    assert [v["version"] for v in versions] == [1, 2, 3]
    assert versions[0]["overrides"] == [] and versions[0]["calls"] == res["summary"]["calls"]
    v3 = {s["sample"]: s for s in client.get(f"/api/batches/{bid}", headers=rev).json()["result"]["samples"]}
    assert v3["S-003"]["final_call"] == "inconclusive" and v3["S-003"]["call"] == "positive"
    assert "reviewer" in v3["S-003"]["override"] and "late N2 rise re-read" in v3["S-003"]["override"]
    assert all(s["status"] != "review" for s in v3.values())

    # only the rule set's calls can be given
    r = client.post(f"/api/batches/{bid}/corrections", headers=rev,
                    json={"changes": [{"sample": "S-004", "call": "probably fine"}], "reason": "x"})
    assert r.status_code == 400 and "inconclusive, invalid, negative, positive" in r.json()["error"]
    # a stale version cannot be signed; the current one can, once
    assert client.post(f"/api/batches/{bid}/sign", headers=rev, json={"version": 2}).status_code == 400
    r = client.post(f"/api/batches/{bid}/sign", headers=rev, json={"version": 3})
    assert r.status_code == 200 and r.json()["status"] == "signed"
    assert client.post(f"/api/batches/{bid}/sign", headers=rev, json={"version": 3}).status_code == 400

    # exports of the signed version
    text = client.get(f"/api/batches/{bid}/export.csv", headers=tech).text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 25 and {r["sample"]: r["final_call"] for r in rows}["S-003"] == "inconclusive"
    html = client.get(f"/api/batches/{bid}/export.html", headers=tech).text
    assert "Edward qPCR Nrd1 calibration" in html and "S-025" in html and "reviewer" in html
    bundle = client.get(f"/api/batches/{bid}/export.fhir.json", headers=tech).json()
    assert bundle["resourceType"] == "Bundle" and len(bundle["entry"]) == 25
    obs = {e["resource"]["specimen"]["display"]: e["resource"] for e in bundle["entry"]}
    assert all(o["status"] == "final" for o in obs.values())
    assert obs["S-002"]["code"]["coding"][0]["code"] == "94500-6"
    assert obs["S-002"]["valueCodeableConcept"]["coding"][0]["code"] == "260373001"
    assert obs["S-001"]["valueCodeableConcept"]["coding"][0]["code"] == "260415000"
    assert obs["S-003"]["valueCodeableConcept"]["coding"][0]["code"] == "419984006"
    from fhir.resources.R4B.bundle import Bundle

    Bundle.model_validate(bundle)      # valid FHIR R4 (B) as served

    # version 1 still exports as the automatic result, preliminary
    v1 = client.get(f"/api/batches/{bid}/export.fhir.json?version=1", headers=tech).json()
    o1 = {e["resource"]["specimen"]["display"]: e["resource"] for e in v1["entry"]}
    assert o1["S-003"]["valueCodeableConcept"]["coding"][0]["code"] == "260373001"
    assert o1["S-003"]["status"] == "preliminary"

    # a correction after sign-off makes a new, unsigned version; the signed one stays signed
    r = client.post(f"/api/batches/{bid}/corrections", headers=rev,
                    json={"changes": [{"sample": "S-004", "call": "invalid"}], "reason": "sample tube mislabelled"})
    assert r.json() == {"version": 4, "status": "analysed"}
    versions = client.get(f"/api/batches/{bid}/versions", headers=rev).json()
    assert versions[2]["signed_by"] == "reviewer" and versions[3]["signed_by"] == ""

    # audit trail: every step with user, before and after; exportable as CSV
    audit = client.get(f"/api/audit?batch={bid}", headers=tech).json()
    actions = [a["action"] for a in reversed(audit)]
    assert actions == ["upload", "analyse", "correct", "correct", "sign", "correct"]
    sign = next(a for a in audit if a["action"] == "sign")
    assert sign["user"] == "reviewer" and sign["before"]["status"] == "analysed" and sign["after"]["version"] == 3
    text = client.get("/audit.csv", headers=tech).text
    assert text.splitlines()[0] == "id,time_utc,user,action,entity,entity_id,before,after"
    assert sum(1 for line in text.splitlines() if ",sign,batch," in line) == 1

    # daily summary
    day = client.get("/api/summary/daily", headers=tech).json()
    assert day["batches"] == 1 and day["status"] == {"analysed": 1}
    counts = day["assays"]["CDC 2019-nCoV RT-PCR (N1, N2, RP)"]
    assert counts["samples"] == 25 and counts["calls"]["invalid"] == 1


def test_pages_render_for_a_real_batch(client):
    tech = token(client, "tech")
    bid = upload(client, tech).json()["id"]
    drain(client.app)
    for path in ["/", f"/batches/{bid}", f"/batches/{bid}/samples/S-002", "/audit", "/summary", "/guide"]:
        r = client.get(path, headers=tech)
        assert r.status_code == 200, path
    page = client.get(f"/batches/{bid}", headers=tech).text
    assert 'id="plate"' in page and "S-002" in page and "valid" in page
    assert 'id="sign"' not in page          # a technician is not offered sign-off
    sample = client.get(f"/batches/{bid}/samples/S-002", headers=tech).text
    assert 'id="curves" data-plot=' in sample and "<script>" not in sample
    assert client.get(f"/guide/files/{RUN.name}", headers=tech).content == RUN.read_bytes()


def test_admin_adds_user_assay_and_rule_set(client):
    admin = token(client, "admin")
    r = client.post("/api/rulesets", headers=admin, json={
        "name": "cdc-strict", "yaml": "extends: cdc-2019-ncov\nid: cdc-strict\nversion: '1.0.0'\n"
                                      "targets:\n  N1: {review_above: 35.0}\n  N2: {review_above: 35.0}\n"})
    assert r.status_code == 201, r.text
    r = client.post("/api/rulesets", headers=admin, json={"name": "broken", "yaml": "targets: [unclosed"})
    assert r.status_code == 400 and "rule set broken" in r.json()["error"]
    r = client.post("/api/assays", headers=admin, json={"name": "CDC strict", "ruleset": "cdc-strict",
                                                         "watch_assays": ["US CDC: 2019-nCoV_N1"]})
    assert r.status_code == 201
    r = client.post("/api/users", headers=admin, json={"username": "ana", "password": "a-long-password",
                                                       "role": "reviewer"})
    assert r.status_code == 201
    ana = token(client, "ana", "a-long-password")
    bid = upload(client, ana, assay_id=r.json() and 3).json()["id"]
    drain(client.app)
    res = client.get(f"/api/batches/{bid}", headers=ana).json()["result"]
    assert res["summary"]["samples"] == 25
    assert client.post("/api/users", headers=admin, json={"username": "x", "password": "short",
                                                          "role": "technician"}).status_code == 400


def test_failed_analysis_is_reported_not_fatal(client, monkeypatch):
    from oligolab.service import worker

    tech = token(client, "tech")
    bid = upload(client, tech).json()["id"]

    def boom(*_a, **_k):
        raise RuntimeError("simulated fault in the analysis")

    monkeypatch.setattr(worker.analysis, "document_job", boom)
    drain(client.app)
    b = client.get(f"/api/batches/{bid}", headers=tech).json()
    assert b["status"] == "failed" and "simulated fault" in b["error"]
    assert client.get("/api/health").json()["status"] == "ok"


def test_assay_watch_names_the_n1_probe_mutation(tmp_path):
    """Assay watch runs the real check: Omicron genomes carry C28311T under the CDC N1 probe."""
    from conftest import pango_records

    from oligolab.service import watch
    from oligolab.service.db import make_engine, migrate, session_factory

    names = ("B.1.1.7", "BA.1", "BA.2", "BA.5", "XBB.1.5", "B.1.617.2", "A")
    path = tmp_path / "subset.fasta"
    path.write_text("".join(f">{r.id}\n{r.text()}\n" for r in pango_records(names=names)))
    url = f"sqlite:///{tmp_path}/w.db"
    migrate(url)
    factory = session_factory(make_engine(url))
    inputs = watch.WatchInputs(genomes=path)
    with factory.begin() as db:
        assert watch.latest(db, inputs) is None
        watch.run_watch(db, inputs)
    with factory() as db:
        res = watch.latest(db, inputs)
        lines = watch.for_assay(res, ["US CDC: 2019-nCoV_N1", "US CDC: 2019-nCoV_N2"])
    n1 = lines[0]
    assert n1["assay"] == "US CDC: 2019-nCoV_N1" and n1["status"] in ("warn", "bad")
    assert any("2019-nCoV-N1-P (probe)" in o and "C28311T (22 nt from 3')" in o for o in n1["oligos"])
    assert res.summary["US CDC: 2019-nCoV_N1"]["genomes"] == len(names)


def test_audit_table_refuses_update_and_delete(client):
    """Enforced by the database for the application's own connection, not only by the code."""
    from oligolab.service.db import AuditEvent
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    tech = token(client, "tech")
    upload(client, tech)
    engine = client.app.state.engine
    with engine.connect() as c:
        n = c.scalar(select(func.count()).select_from(AuditEvent))
    assert n >= 1
    statements = ["UPDATE audit_events SET username = 'mallory'", "DELETE FROM audit_events"]
    if engine.dialect.name == "postgresql":
        statements.append("TRUNCATE audit_events")
    for sql in statements:
        with pytest.raises(DBAPIError, match="append-only"):
            with engine.begin() as c:
                c.execute(text(sql))
    with engine.connect() as c:
        assert c.scalar(select(func.count()).select_from(AuditEvent)) == n
        assert "mallory" not in json.dumps([list(r) for r in c.execute(text("SELECT username FROM audit_events"))])


def test_serve_starts_on_sqlite_with_one_command(tmp_path):
    """`oligolab serve` on a new SQLite file: creates the lab and an admin, prints the password once, and the
    first page opens and signs that admin in."""
    import re

    import httpx
    from serve_support import start_server, stop_server

    log = tmp_path / "serve.log"
    proc, base = start_server(f"sqlite:///{tmp_path}/fresh.db", log, "--no-watch")
    try:
        password = re.search(r"password: (\S+)", log.read_text()).group(1)
        with httpx.Client(base_url=base, follow_redirects=True) as http:
            first = http.get("/")
            assert first.status_code == 200 and "Sign in" in first.text and str(first.url).endswith("/login?next=/")
            login_csrf = re.search(r'name="login_csrf" value="([^"]+)"', first.text).group(1)
            home = http.post("/login", data={"username": "admin", "password": password, "next": "/",
                                             "login_csrf": login_csrf})
            assert home.status_code == 200 and "Upload a plate" in home.text and "CDC 2019-nCoV" in home.text
    finally:
        stop_server(proc)


def test_analysis_process_gives_the_same_result():
    """The service analyses in a separate process: the stored document is the same as in-process."""
    from oligolab.lab.rules import load_ruleset
    from oligolab.service import analysis as svc

    job = svc.AnalysisJob(RUN.name, RUN.read_bytes(), PLATE_MAP.name, PLATE_MAP.read_bytes(),
                          load_ruleset("cdc-2019-ncov"), "0" * 64,
                          ({"time": "2026-01-01T00:00:00+00:00", "user": "r", "subject": "S-003", "field": "call",
                            "new": "inconclusive", "reason": "test"},))
    here = svc.document_job(job)
    svc.use_analysis_processes(1)
    try:
        there = svc.compute(svc.document_job, job)
    finally:
        svc.use_analysis_processes(0)
    for doc in (here.result, there.result):
        doc["provenance"].pop("analysed_at")
    assert there.result == here.result and there.curves == here.curves
    assert {s["sample"]: s["final_call"] for s in there.result["samples"]}["S-003"] == "inconclusive"


def test_batch_list_pages(tmp_path):
    """The batch list shows the newest 50 and links to older ones."""
    from oligolab.service.pages import PAGE_ROWS
    from oligolab.service.db import Batch

    app = make_app(f"sqlite:///{tmp_path}/lab.db")
    with TestClient(app) as client:
        tech = token(client, "tech")
        upload(client, tech)
        with app.state.factory.begin() as db:      # copies of the stored upload, as a busy week leaves them
            first = db.get(Batch, 1)
            for i in range(PAGE_ROWS + 4):
                db.add(Batch(lab_id=first.lab_id, assay_id=first.assay_id, name=f"plate {i + 2}",
                             run_filename=first.run_filename, run_bytes=first.run_bytes, run_sha256=first.run_sha256,
                             created_by="tech"))
        page1 = client.get("/", headers=tech).text
        assert "plate 55" in page1 and 'href="/?before=6"' in page1
        page2 = client.get("/?before=6", headers=tech).text
        assert "plate 5<" in page2 and 'href="/batches/1"' in page2 and 'id="older"' not in page2


def test_two_web_processes_share_one_queue(tmp_path):
    """`--web-processes 2`: two processes answer requests and take plates from the same queue, each plate once."""
    import time

    import httpx
    from serve_support import start_server, stop_server

    proc, base = start_server(f"sqlite:///{tmp_path}/lab.db", tmp_path / "serve.log", "--demo", "--no-watch",
                              "--web-processes", "2")
    try:
        with httpx.Client(base_url=base, timeout=60) as http:
            tech = token(http, "tech")
            ids = [upload(http, tech, name=f"plate {i}").json()["id"] for i in range(4)]
            deadline = time.time() + 90
            while time.time() < deadline:
                states = [http.get(f"/api/batches/{i}", headers=tech).json() for i in ids]
                if all(s["status"] == "analysed" for s in states):
                    break
                time.sleep(0.5)
            assert [s["status"] for s in states] == ["analysed"] * 4
            for i in ids:
                assert [v["version"] for v in http.get(f"/api/batches/{i}/versions", headers=tech).json()] == [1]
                actions = [a["action"] for a in http.get(f"/api/audit?batch={i}", headers=tech).json()]
                assert sorted(actions) == ["analyse", "upload"]
    finally:
        stop_server(proc)


def test_csv_upload_gives_the_rdml_result(tmp_path):
    """The same real run exported as a table (RDES CSV, written by the lab core) with its plate map gives the
    same calls and Cq as the RDML upload."""
    from oligolab.lab.analysis import load_runs
    from oligolab.lab.formats.rdes import write_rdes

    csv_path = write_rdes(load_runs(RUN)[0], tmp_path / "eva_green_b.csv")
    app = make_app(f"sqlite:///{tmp_path}/lab.db")
    with TestClient(app) as client:
        tech = token(client, "tech")
        ids = [upload(client, tech).json()["id"], upload(client, tech, run=csv_path).json()["id"]]
        drain(app)
        rdml, table = ({s["sample"]: (s["final_call"], s["N1_cq"]) for s in
                        client.get(f"/api/batches/{i}", headers=tech).json()["result"]["samples"]} for i in ids)
    assert set(rdml) == set(table) and len(rdml) == 25
    for name, (call, cq) in rdml.items():
        assert table[name][0] == call
        assert (cq is None and table[name][1] is None) or table[name][1] == pytest.approx(cq, abs=1e-6)
