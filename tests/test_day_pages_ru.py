"""Every page of the service in Russian goes through the translation layer: after a small day (specimens, a
worklist, its run analysed, signed and released; a run the controls invalidate; a run whose samples are held for
their curves and one of them corrected), each page is rendered for a Russian lab and its visible text, less the
data the lab typed or the instruments wrote (ids, names, assay and rule-set names, audit records), must hold no
English words: the lab core's reasons (run validity, control checks, why a sample is held, curve flags, the
amplification caller's remarks, overrides) included."""

from __future__ import annotations

import html
import re

from fastapi.testclient import TestClient

from day_support import day_csv, day_run_csv
from serve_support import PASSWORD, drain, make_app, ntc_amplified_map, token, upload

#: English words of page texts (a page left untranslated shows some of them)
ENGLISH = re.compile(r"\b(the|and|with|from|this|your|upload|batch(es)?|samples?|sign(ed)?|version|results?|"
                     r"review|release|worklists?|specimens?|patient|control|settings|training|guide|daily|"
                     r"summary|audit|trail|plate|wells?|assay|status|reason|accept|download|print|search|"
                     r"waiting|analysed|valid|invalid|positive|negative|yes|no|"
                     r"amplified|amplification|expected|curves?|cycles?|threshold|noise|drift|held|missing|"
                     r"indeterminate|excluded|replicates|repeat|look|weak|rises?|baseline|queue|automatic|analysis|"
                     r"system|line|entry|efficiency|plateau|readings?|outside|flagged|run)\b", re.I)
#: data shown as typed or as written by the lab core (not page text)
DATA = [r"CDC 2019-nCoV RT-PCR \(N1, N2, RP\)", r"WHO Charité E / RdRp RT-PCR", r"cdc-2019-ncov",
        r"who-charite-e-rdrp", r"oligolab[\w .-]*", r"SYK-\d+", r"P\d{6}", r"LOT-\d+", r"worklist-\d+\.csv",
        r"day\.rdml", r"[\w.-]+@[\w.-]+", r"(tech|reviewer|admin)\b", r"Regional laboratory", r"RT-PCR",
        r"SHA-256", r"well, sample, role, target", r"--no-watch", r"N1|N2|RP|Cq|TD0|SD|LOINC|FHIR|HL7|MLLP|CSV|JSON|YAML|RDML|URL|MSH-5|Excel|MiB|ID"]


def visible_text(page: str) -> str:
    """The text a reader sees, less scripts, styles, code, audit tables, attribute values and data cells."""
    page = re.sub(r"(?s)<(script|style|code|textarea|select)\b.*?</\1>", " ", page)
    page = re.sub(r'(?s)<table id="(audit|batch-audit)".*?</table>', " ", page)
    page = re.sub(r"(?s)<[^>]+>", " ", page)
    text = html.unescape(page)
    for pattern in DATA:
        text = re.sub(pattern, " ", text)
    return text


def _day(client, app) -> dict:
    admin, tech, rev = token(client, "admin"), token(client, "tech"), token(client, "reviewer")
    client.post("/settings/lab", headers=admin, data={"timezone": "Europe/Moscow", "language": "ru",
                                                      "header": "Лаборатория"})
    client.post("/specimens/import", headers=tech, data={"assay_id": "1"}, files={"file": ("d.csv", day_csv(5))})
    wl = client.post("/worklists", headers=tech, data={"assay_id": "1", "plate": "96"},
                     follow_redirects=False).headers["location"].rsplit("/", 1)[1]
    plate_map = client.get(f"/worklists/{wl}/platemap.csv", headers=tech).text
    loc = client.post(f"/worklists/{wl}/run", headers=tech, follow_redirects=False,
                      files={"run_file": ("day.rdml", day_run_csv(plate_map, positives={"SYK-0002"}))})
    batch = loc.headers["location"].rsplit("/", 1)[1]
    drain(app)
    d = client.get(f"/api/batches/{batch}", headers=rev).json()
    held = [s["sample"] for s in d["result"]["samples"] if s.get("status") == "review"]
    version = d["version"]
    if held:
        version = client.post(f"/api/batches/{batch}/corrections", headers=rev, json={
            "changes": [{"sample": s, "accept": True} for s in held], "reason": "проверено"}).json()["version"]
    assert client.post(f"/api/batches/{batch}/sign", headers=rev, json={"version": version}).status_code == 200
    client.post(f"/release/{batch}", headers=rev)
    patient = re.search(r'/patients/(\d+)/report', client.get("/specimens", headers=tech).text).group(1)
    return {"batch": batch, "worklist": wl, "patient": patient}


def _held_and_invalid(client, app, tmp_path) -> list[str]:
    """Pages of the lab core's reasons: the shipped real run with its CDC plate map (samples held for their
    curves and the run's controls; one call corrected) and the same run with an amplifying NTC (invalid)."""
    tech, rev = token(client, "tech"), token(client, "reviewer")
    held = upload(client, tech, name="S1").json()["id"]
    bad = upload(client, tech, name="S2", plate_map=ntc_amplified_map(tmp_path / "ntc.csv")).json()["id"]
    drain(app)
    samples = client.get(f"/api/batches/{held}", headers=rev).json()["result"]["samples"]
    first = samples[0]["sample"]
    r = client.post(f"/api/batches/{held}/corrections", headers=rev, json={
        "changes": [{"sample": first, "call": "inconclusive"}], "reason": "проверено"})
    assert r.status_code == 200, r.text
    flagged = [s["sample"] for s in samples if s.get("review_reasons") and "whole run" not in s["review_reasons"]]
    invalid = client.get(f"/api/batches/{bad}", headers=rev).json()["result"]
    assert not invalid["valid"] and invalid["problems"]
    return ([f"/batches/{held}", f"/batches/{bad}", f"/batches/{held}/sample?id={first}",
             f"/batches/{bad}/sample?id={invalid['samples'][0]['sample']}"]
            + [f"/batches/{held}/sample?id={s}" for s in flagged[:3]])


def test_every_page_speaks_russian(tmp_path):
    app = make_app(f"sqlite:///{tmp_path}/ru.db")
    with TestClient(app) as client:
        ids = _day(client, app)
        b = ids["batch"]
        pages = ["/", f"/batches/{b}", f"/batches/{b}/sample?id=SYK-0002", "/summary", "/audit", "/guide",
                 "/admin", "/admin/verify", "/account", "/specimens", "/specimens?q=SYK", "/specimen?id=SYK-0001",
                 "/worklists", f"/worklists/{ids['worklist']}", f"/labels?worklist={ids['worklist']}", "/release",
                 "/qc", "/training", "/settings", f"/patients/{ids['patient']}/report"]
        pages += _held_and_invalid(client, app, tmp_path)
        r = client.post("/login", data={"username": "admin", "password": PASSWORD, "next": "/", "login_csrf": "x"},
                        cookies={"oligolab_login_csrf": "x"})
        found = {}
        for path in pages:
            r = client.get(path)
            assert r.status_code == 200, (path, r.status_code)
            assert 'lang="ru"' in r.text, path
            words = sorted({m.group(0) for m in ENGLISH.finditer(visible_text(r.text))})
            if words:
                found[path] = words
        client.cookies.clear()
        login = client.get("/login", headers={"Accept-Language": "ru-RU,ru;q=0.9"})
        words = sorted({m.group(0) for m in ENGLISH.finditer(visible_text(login.text))})
        if words:
            found["/login"] = words
    assert not found, f"English left on Russian pages: {found}"


def test_a_retest_reason_is_kept_in_the_labs_language(tmp_path):
    """A reviewer who reads English releases a plate of a Russian lab: the reason an inconclusive specimen goes
    back to the waiting list is kept, and printed for the patient, in the lab's language."""
    app = make_app(f"sqlite:///{tmp_path}/ru.db")
    with TestClient(app) as client:
        admin, tech, rev = token(client, "admin"), token(client, "tech"), token(client, "reviewer")
        client.post("/settings/lab", headers=admin, data={"timezone": "Europe/Moscow", "language": "ru", "header": ""})
        client.post("/settings/language", headers=rev, data={"language": "en"})
        client.post("/specimens/import", headers=tech, data={"assay_id": "1"}, files={"file": ("d.csv", day_csv(5))})
        wl = client.post("/worklists", headers=tech, data={"assay_id": "1", "plate": "96"},
                         follow_redirects=False).headers["location"].rsplit("/", 1)[1]
        plate_map = client.get(f"/worklists/{wl}/platemap.csv", headers=tech).text
        run = day_run_csv(plate_map, inconclusive={"SYK-0003"})
        batch = client.post(f"/worklists/{wl}/run", headers=tech, follow_redirects=False,
                            files={"run_file": ("day.rdml", run)}).headers["location"].rsplit("/", 1)[1]
        drain(app)
        d = client.get(f"/api/batches/{batch}", headers=rev).json()
        held = [s["sample"] for s in d["result"]["samples"] if s.get("status") == "review"]
        version = d["version"]
        if held:
            version = client.post(f"/api/batches/{batch}/corrections", headers=rev, json={
                "changes": [{"sample": s, "accept": True} for s in held], "reason": "checked"}).json()["version"]
        assert client.post(f"/api/batches/{batch}/sign", headers=rev, json={"version": version}).status_code == 200
        assert "-1-" in client.post(f"/release/{batch}", headers=rev, follow_redirects=False).headers["location"]
        page = client.get("/specimens?q=SYK-0003", headers=tech).text
        patient = re.search(r'/patients/(\d+)/report', page).group(1)
        printed = html.unescape(client.get(f"/patients/{patient}/report", headers=rev).text)
        assert f"сомнительный в постановке {batch}, версия {version}" in printed, printed[-2000:]
