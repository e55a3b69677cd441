"""The lab's day through the service (TestClient, SQLite and PostgreSQL): 96 specimens accessioned from a CSV,
a 384-well worklist, the run uploaded for it (real curves laid out by the worklist), review and sign-off,
release (one inconclusive specimen goes back to the waiting list), its retest through a second run, deliveries
to a real MLLP listener and a real FHIR receiver, the per-patient printout in Russian in the lab's zone, QC and
search across batches."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from day_support import FhirReceiver, MllpListener, day_csv, day_run_csv
from serve_support import drain, make_app, pg_database, token

POSITIVES = {"SYK-0003", "SYK-0050"}
RETESTED = "SYK-0010"


def _ok(r, where: str):
    assert r.status_code == 303 and "error=" not in r.headers["location"], (where, r.headers.get("location"))
    return r.headers["location"]


def _sign_all(client, rev, batch_id: int) -> None:
    b = client.get(f"/api/batches/{batch_id}", headers=rev).json()
    assert b["status"] == "analysed", b
    held = [s["sample"] for s in b["result"]["samples"] if s.get("status") == "review"]
    if held:
        r = client.post(f"/api/batches/{batch_id}/corrections", headers=rev,
                        json={"changes": [{"sample": s, "accept": True} for s in held], "reason": "curves checked"})
        assert r.status_code == 200, r.text
    v = client.get(f"/api/batches/{batch_id}", headers=rev).json()["version"]
    r = client.post(f"/api/batches/{batch_id}/sign", headers=rev, json={"version": v})
    assert r.status_code == 200, r.text


def _plate(client, headers, app, worklist_id: int, **run) -> int:
    csv_text = client.get(f"/worklists/{worklist_id}/platemap.csv", headers=headers).text
    files = {"run_file": ("day.rdml", day_run_csv(csv_text, **run))}
    loc = _ok(client.post(f"/worklists/{worklist_id}/run", headers=headers, files=files, data={"name": "plate"},
                          follow_redirects=False), "upload")
    drain(app)
    return int(loc.rsplit("/", 1)[1])


def _day(url: str) -> None:
    from oligolab.service import clinic

    app = make_app(url)
    listener, receiver = MllpListener(), FhirReceiver()
    try:
        with TestClient(app) as client:
            admin, tech, rev = token(client, "admin"), token(client, "tech"), token(client, "reviewer")
            _ok(client.post("/settings/lab", headers=admin, follow_redirects=False, data={
                "timezone": "Europe/Moscow", "language": "ru", "header": "ГБУЗ «Лаборатория»\nг. Сыктывкар"}), "lab")
            for kind, u in (("mllp", listener.url), ("fhir", receiver.url)):
                _ok(client.post("/settings/endpoints", headers=admin, follow_redirects=False,
                                data={"name": f"HIS {kind}", "kind": kind, "url": u}), "endpoint")
            loc = _ok(client.post("/specimens/import", headers=tech, follow_redirects=False,
                                  data={"assay_id": "1"}, files={"file": ("day.csv", day_csv(96))}), "import")
            assert loc.endswith("done=96")
            loc = _ok(client.post("/worklists", headers=tech, follow_redirects=False,
                                  data={"assay_id": "1", "plate": "384", "reagent_lot": "LOT-2211"}), "worklist")
            first = int(loc.rsplit("/", 1)[1])
            page = client.get(f"/worklists/{first}", headers=tech).text
            assert page.count("SYK-00") >= 96
            labels = client.get(f"/labels?worklist={first}", headers=tech).text
            assert labels.count('class="barcode"') == 96
            b1 = _plate(client, tech, app, first, positives=POSITIVES, inconclusive={RETESTED})
            _sign_all(client, rev, b1)
            done = _ok(client.post(f"/release/{b1}", headers=rev, follow_redirects=False), "release")
            assert done.endswith("done=95-1-96"), done            # 95 released, 1 retest, 95 HL7 + 1 FHIR
            assert clinic.drain(app.state.factory) == 96
            assert len(listener.messages) == 95 and len(receiver.bundles) == 1
            spec = client.get(f"/specimen?id={RETESTED}", headers=tech).text
            assert "ожидает" in spec or "waiting" in spec
            loc = _ok(client.post("/worklists", headers=tech, follow_redirects=False,
                                  data={"assay_id": "1", "plate": "96", "reagent_lot": "LOT-2211"}), "worklist 2")
            second = int(loc.rsplit("/", 1)[1])
            b2 = _plate(client, tech, app, second, positives={RETESTED})
            _sign_all(client, rev, b2)
            assert _ok(client.post(f"/release/{b2}", headers=rev, follow_redirects=False), "release 2").endswith(
                "done=1-0-2")
            assert clinic.drain(app.state.factory) == 2
            last = listener.messages[-1].ORU_R01_PATIENT_RESULT.ORU_R01_ORDER_OBSERVATION
            assert last.OBR.obr_3.to_er7() == RETESTED
            assert last.ORU_R01_OBSERVATION.OBX.obx_5.to_er7() == "260373001^Detected^SCT"
            notes = [n.nte_3.to_er7() for n in last.ORU_R01_OBSERVATION.children if n.name == "NTE"]
            assert any(f"batch {b2}" in n and "retest of order" in n for n in notes), notes
            fhir = receiver.bundles[-1]
            obs = [e["resource"] for e in fhir["entry"] if e["resource"]["resourceType"] == "Observation"]
            assert len(obs) == 1 and obs[0]["identifier"][0]["value"] == f"{RETESTED}/94500-6"
            # the patient's printout: in Russian, the lab's letterhead and zone, the result from the retest run
            found = client.get(f"/specimens?q={RETESTED}", headers=tech).text
            patient = re.search(r'href="/patients/(\d+)/report"', found).group(1)
            report = client.get(f"/patients/{patient}/report", headers=tech).text
            assert "РНК 2019-nCoV (SARS-CoV-2) обнаружена" in report and "г. Сыктывкар" in report
            assert f"постановка {b2}, версия" in report
            assert "(UTC+03:00)" in report
            qc = client.get("/qc", headers=tech).text
            assert qc.count('class="lj-chart"') >= 4
            assert client.get(f"/batches/{b2}", headers=tech).status_code == 200
    finally:
        listener.close()
        receiver.close()


def test_day_sqlite(tmp_path):
    _day(f"sqlite:///{tmp_path}/day.db")


@pytest.mark.slow
def test_day_postgresql():
    with pg_database() as url:
        _day(url)
