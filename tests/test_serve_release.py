"""What a reviewer signs is what the clinic receives: every export (printable report, CSV, FHIR, pages) renders
the stored version; a correction changes the texts and codes of all of them; an edited rule set changes no
stored version; release states (signed, superseded, corrected) are stated the same way everywhere. On the
shipped real run, SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import re

import pytest
from fastapi.testclient import TestClient
from serve_support import drain, lenient_assay, make_app, pg_database, token, upload

from oligolab.lab.rules import load_ruleset


@pytest.fixture(params=["sqlite", "postgresql"])
def client(request, tmp_path):
    if request.param == "sqlite":
        with TestClient(make_app(f"sqlite:///{tmp_path}/lab.db")) as c:
            yield c
    else:
        with pg_database() as url:
            app = make_app(url)
            with TestClient(app) as c:
                yield c
            app.state.engine.dispose()


def _exports(client, headers, bid: int, version: int) -> tuple[str, list[dict], dict]:
    html = client.get(f"/api/batches/{bid}/export.html?version={version}", headers=headers)
    text = client.get(f"/api/batches/{bid}/export.csv?version={version}", headers=headers).text
    bundle = client.get(f"/api/batches/{bid}/export.fhir.json?version={version}", headers=headers).json()
    return html.text, list(csv.DictReader(io.StringIO(text))), bundle


def _observations(bundle: dict) -> dict[str, dict]:
    return {e["resource"]["specimen"]["display"]: e["resource"] for e in bundle["entry"]}


def _html_row(html: str, sample: str) -> str:
    """The printable report's Samples-table row of one sample."""
    rows = re.findall(r"<tr>(?:(?!</tr>).)*</tr>", html, flags=re.S)
    return next(r for r in rows if re.search(rf"<td[^>]*>{re.escape(sample)}</td>", r) and "<td" in r)


def _analysed_and_signed(client, tech, rev, assay_id: int) -> tuple[int, int]:
    bid = upload(client, tech, assay_id=assay_id).json()["id"]
    drain(client.app)
    samples = client.get(f"/api/batches/{bid}", headers=rev).json()["result"]["samples"]
    held = [s["sample"] for s in samples if s["status"] == "review"]
    if held:
        r = client.post(f"/api/batches/{bid}/corrections", headers=rev,
                        json={"changes": [{"sample": s, "accept": True} for s in held], "reason": "curves reviewed"})
        assert r.status_code == 200, r.text
    number = client.get(f"/api/batches/{bid}", headers=rev).json()["version"]
    r = client.post(f"/api/batches/{bid}/sign", headers=rev, json={"version": number})
    assert r.status_code == 200, r.text
    return bid, number


def test_signed_then_corrected_exports_agree_everywhere(client):
    tech, rev, admin = token(client, "tech"), token(client, "reviewer"), token(client, "admin")
    bid, signed = _analysed_and_signed(client, tech, rev, lenient_assay(client, admin))

    # the signed version: signed everywhere, nothing stale
    html, rows, bundle = _exports(client, tech, bid, signed)
    assert f"SIGNED</span> version {signed}, by reviewer" in html
    for stale in ("SIGNATURE OUTDATED", "NOT SIGNED", "SUPERSEDED"):
        assert stale not in html
    assert {r["result_status"] for r in rows} == {"final"}
    assert {o["status"] for o in _observations(bundle).values()} == {"final"}
    page = client.get(f"/batches/{bid}", headers=tech).text
    assert "signed by reviewer" in page and "older version" not in page

    # a correction after release: a new version with the corrected call's texts and code in every export
    target = next(r for r in rows if r["final_call"] in ("negative", "positive"))
    name, old_call, old_report = target["sample"], target["final_call"], target["report"]
    rule = next(c for c in load_ruleset("cdc-2019-ncov").calls if c.call == "inconclusive")
    r = client.post(f"/api/batches/{bid}/corrections", headers=rev,
                    json={"changes": [{"sample": name, "call": "inconclusive"}], "reason": "N2 curve re-read"})
    assert r.status_code == 200, r.text
    new = r.json()["version"]
    html, rows, bundle = _exports(client, tech, bid, new)
    row = next(r for r in rows if r["sample"] == name)
    assert (row["final_call"], row["report"], row["action"]) == ("inconclusive", rule.report, rule.action)
    assert row["result_status"] == "preliminary"
    obs = _observations(bundle)[name]
    assert obs["status"] == "preliminary"
    assert obs["valueCodeableConcept"]["coding"][0]["code"] == "419984006"
    assert rule.report in obs["note"][0]["text"] and old_report not in str(obs["note"])
    line = _html_row(html, name)
    assert rule.report in line and old_report not in line
    assert "NOT SIGNED</span> version" in html and "SUPERSEDED" not in html
    sample_page = client.get(f"/batches/{bid}/sample", params={"id": name}, headers=tech).text
    assert rule.report in sample_page

    # the released version is now marked superseded, and still says what was signed
    html, rows, bundle = _exports(client, tech, bid, signed)
    assert "SUPERSEDED" in html and f"SIGNED</span> version {signed}" in html
    assert next(r for r in rows if r["sample"] == name)["final_call"] == old_call

    # once signed, the change goes out as a correction naming the value it replaces
    assert client.post(f"/api/batches/{bid}/sign", headers=rev, json={"version": new}).status_code == 200
    html, rows, bundle = _exports(client, tech, bid, new)
    obs = _observations(bundle)
    assert obs[name]["status"] == "corrected"
    assert obs[name]["extension"][0]["valueCodeableConcept"]["text"] == f"{old_call} (version {signed})"
    assert any(f"replaces '{old_call}'" in n["text"] for n in obs[name]["note"])
    assert {o["status"] for s, o in obs.items() if s != name} == {"final"}
    row = next(r for r in rows if r["sample"] == name)
    assert row["result_status"] == "corrected" and f"replaces '{old_call}'" in row["replaces"]
    assert "CHANGED AFTER RELEASE" in html and "SUPERSEDED" not in html


def test_rule_set_edit_changes_no_stored_version(client):
    tech, rev, admin = token(client, "tech"), token(client, "reviewer"), token(client, "admin")
    assay_id = lenient_assay(client, admin)
    bid = upload(client, tech, assay_id=assay_id).json()["id"]
    queued = upload(client, tech, assay_id=assay_id).json()["id"]     # analysed only after the edit below
    drain(client.app)
    before = _exports(client, tech, bid, 1)
    detail = client.get(f"/api/batches/{bid}", headers=tech).json()
    rules_sha = detail["result"]["provenance"]["rules_sha256"] if "provenance" in detail["result"] else None

    edited = ("extends: cdc-2019-ncov\nid: cdc-test-controls\nversion: '2.0.0'\n"
              "targets:\n  N1: {positive_below: 20.0}\n  N2: {positive_below: 20.0}\n"
              "default: {call: review, report: EDITED DEFAULT TEXT, action: edited}\n")
    r = client.post("/api/rulesets", headers=admin, json={"name": "cdc-test-controls", "yaml": edited})
    assert r.status_code == 201, r.text
    drain(client.app)

    assert _exports(client, tech, bid, 1) == before              # byte for byte, every export
    versions = {v["version"]: v for v in client.get(f"/api/batches/{queued}/versions", headers=tech).json()}
    assert versions[1]["ruleset_sha256"] == client.get(f"/api/batches/{bid}/versions",
                                                       headers=tech).json()[0]["ruleset_sha256"]
    # a correction is analysed with the version's own rule set, not the edited one
    name = before[1][0]["sample"]
    r = client.post(f"/api/batches/{bid}/corrections", headers=rev,
                    json={"changes": [{"sample": name, "accept": True}], "reason": "confirmed"})
    assert r.status_code == 200, r.text
    html, rows, _ = _exports(client, tech, bid, 2)
    assert "EDITED DEFAULT TEXT" not in html and all(r["report"] != "EDITED DEFAULT TEXT" for r in rows)
    assert [r["final_call"] for r in rows] == [r["final_call"] for r in before[1]]
    assert rules_sha is None or "v2.0.0" not in html


def _accept_held(client, rev, bid: int) -> int:
    samples = client.get(f"/api/batches/{bid}", headers=rev).json()["result"]["samples"]
    held = [s["sample"] for s in samples if s["status"] == "review"]
    if held:
        r = client.post(f"/api/batches/{bid}/corrections", headers=rev,
                        json={"changes": [{"sample": s, "accept": True} for s in held], "reason": "reviewed"})
        assert r.status_code == 200, r.text
    return client.get(f"/api/batches/{bid}", headers=rev).json()["version"]


def test_invalid_run_is_released_only_as_invalid(client, tmp_path):
    from serve_support import ntc_amplified_map

    tech, rev = token(client, "tech"), token(client, "reviewer")
    bid = upload(client, tech, plate_map=ntc_amplified_map(tmp_path / "ntc.csv")).json()["id"]
    drain(client.app)
    detail = client.get(f"/api/batches/{bid}", headers=rev).json()
    assert detail["result"]["valid"] is False
    name = detail["result"]["samples"][0]["sample"]
    # no sample call can be turned into a result on an invalid run
    r = client.post(f"/api/batches/{bid}/corrections", headers=rev,
                    json={"changes": [{"sample": name, "call": "negative"}], "reason": "looks negative"})
    assert r.status_code == 400 and "run is invalid" in r.json()["error"]
    number = _accept_held(client, rev, bid)
    # one click does not release it: the reason is asked for
    r = client.post(f"/api/batches/{bid}/sign", headers=rev, json={"version": number})
    assert r.status_code == 400 and "the run is invalid" in r.json()["error"] and "NTC" in r.json()["error"]
    reason = "NTC amplified: contamination; plate repeated"
    r = client.post(f"/api/batches/{bid}/sign", headers=rev, json={"version": number, "reason": reason})
    assert r.status_code == 200, r.text
    html, rows, bundle = _exports(client, tech, bid, number)
    obs = list(_observations(bundle).values())
    assert {o["status"] for o in obs} == {"cancelled"}
    assert not any("valueCodeableConcept" in o for o in obs)
    assert all(reason in o["note"][0]["text"] for o in obs)
    assert {r["result_status"] for r in rows} == {"cancelled"}
    assert "RELEASED AS INVALID RUN" in html and reason in html
    sign = next(a for a in client.get(f"/api/audit?batch={bid}", headers=rev).json() if a["action"] == "sign")
    assert sign["after"]["released_as_invalid_run"] == reason


def test_four_eyes(client):
    tech, rev, admin = token(client, "tech"), token(client, "reviewer"), token(client, "admin")
    assay = lenient_assay(client, admin)
    assert client.post("/api/lab", headers=admin, json={"four_eyes": True}).json()["four_eyes"] is True
    bid = upload(client, tech, assay_id=assay).json()["id"]
    drain(client.app)
    rows = client.get(f"/api/batches/{bid}", headers=rev).json()["result"]["samples"]
    r = client.post(f"/api/batches/{bid}/corrections", headers=rev, json={
        "changes": [{"sample": rows[0]["sample"], "call": "inconclusive"}]
        + [{"sample": s["sample"], "accept": True} for s in rows[1:] if s["status"] == "review"],
        "reason": "re-read"})
    number = r.json()["version"]
    r = client.post(f"/api/batches/{bid}/sign", headers=rev, json={"version": number})
    assert r.status_code == 400 and "four eyes" in r.json()["error"]
    r = client.post(f"/api/batches/{bid}/sign", headers=admin, json={"version": number})
    assert r.status_code == 200 and r.json()["signed_by"] == "admin"
    lab_events = [a for a in client.get("/api/audit", headers=admin).json() if a["entity"] == "lab"]
    assert lab_events[0]["after"] == {"four_eyes": True} and lab_events[0]["user"] == "admin"


def test_accept_all_held_for_one_reason_in_one_step(client):
    """The samples held for the same (run-level) reason are accepted with one reason, in one version."""
    tech, rev = token(client, "tech"), token(client, "reviewer")
    bid = upload(client, tech).json()["id"]
    drain(client.app)
    samples = client.get(f"/api/batches/{bid}", headers=rev).json()["result"]["samples"]
    from oligolab.service.review import held_groups

    groups = held_groups(samples)
    if not groups:
        pytest.skip("the demo plate holds no sample for review")
    group = groups[0]
    page = client.get(f"/batches/{bid}", headers=rev).text
    if len(group["samples"]) > 1:
        assert "accept_held_for" in page and f"Accept the {len(group['samples'])} samples" in page
    r = client.post(f"/api/batches/{bid}/corrections", headers=rev,
                    json={"changes": [{"accept_held_for": group["reasons"]}], "reason": "control curves checked"})
    assert r.status_code == 200, r.text
    after = {s["sample"]: s for s in client.get(f"/api/batches/{bid}", headers=rev).json()["result"]["samples"]}
    assert all(after[n]["status"] != "review" for n in group["samples"])
    assert all("control curves checked" in after[n]["override"] for n in group["samples"])
    left = [s for s in after.values() if s["status"] == "review"]
    assert len(left) == sum(len(g["samples"]) for g in groups[1:])
