"""Browser walk through ``oligolab serve`` in headless Chromium (system chromium + chromedriver).

A real server (subprocess, SQLite in a temporary folder, demo accounts) and the shipped real run
the shipped demo run (serve_support.RUN) with its CDC plate map: a technician uploads it and looks at the analysed plate and a
sample's curves; a reviewer changes one call, accepts the remaining held samples and signs; the three exports
are fetched with the browser's session; a bad upload shows the error box and stores nothing; the guide page
links to the example files. A screenshot of each major step goes to ``test-artifacts/browser/``.

The tests run in file order and share one browser; each later step needs the earlier ones (run with ``-x``).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
BAD_FILE = ROOT / "README.md"
ASSAY = "CDC 2019-nCoV RT-PCR (N1, N2, RP)"

BATCH_NAME = "browser walk: eva green B"
N_SAMPLES = 25
CHANGED, CHANGED_TO = "S-005", "inconclusive"   # the call the reviewer changes
ARTIFACTS = ROOT / "test-artifacts" / "browser"
DATABASE: dict[str, Path] = {}                 # the server's SQLite file (the tamper step edits it directly)


def _binary(path: str, name: str) -> str | None:
    if Path(path).is_file() and os.access(path, os.X_OK):
        return path
    return shutil.which(name)


CHROMIUM = _binary("/usr/bin/chromium", "chromium")
CHROMEDRIVER = _binary("/usr/bin/chromedriver", "chromedriver")
if CHROMIUM is None or CHROMEDRIVER is None:
    pytest.skip("headless browser tests need chromium and chromedriver (Debian packages chromium, "
                "chromium-driver)", allow_module_level=True)

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException  # noqa: E402
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402
from serve_support import PASSWORD, PLATE_MAP, RUN as RUN_FILE, start_server, stop_server  # noqa: E402

from oligolab.lab.analysis import load_runs  # noqa: E402

RUN_NAME = load_runs(RUN_FILE)[0].name        # the run's name inside the run file


# ------------------------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """``oligolab serve`` on a fresh SQLite database with the demo accounts; yields its base URL."""
    tmp = tmp_path_factory.mktemp("serve-browser")
    DATABASE["path"] = tmp / "browser.db"
    proc, base = start_server(f"sqlite:///{tmp}/browser.db", tmp / "server.log", "--demo", "--no-watch")
    try:
        yield base
    finally:
        stop_server(proc)


@pytest.fixture(scope="module")
def driver():
    opts = Options()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        opts.add_argument(arg)
    d = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    d.set_page_load_timeout(60)
    try:
        yield d
    finally:
        d.quit()


@pytest.fixture(scope="module")
def state() -> dict:
    """What the ordered steps hand each other (batch id, URLs)."""
    return {}


@pytest.fixture(scope="module", autouse=True)
def _artifacts():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()


# -------------------------------------------------------------------------------------------- helpers

def shot(driver, name: str) -> Path:
    path = ARTIFACTS / f"{name}.png"
    assert driver.save_screenshot(str(path)), f"screenshot {path} not written"
    assert path.is_file() and path.stat().st_size > 0, f"screenshot {path} is empty"
    return path


def wait(driver, timeout: float = 15):
    return WebDriverWait(driver, timeout, poll_frequency=0.2,
                         ignored_exceptions=(NoSuchElementException, StaleElementReferenceException))


def find(driver, css: str):
    return driver.find_element(By.CSS_SELECTOR, css)


def find_all(driver, css: str):
    return driver.find_elements(By.CSS_SELECTOR, css)


def sign_in(driver, base: str, username: str, screenshot: str | None = None) -> None:
    driver.get(base + "/login")
    wait(driver).until(lambda d: find(d, "#username"))
    find(driver, "#username").send_keys(username)
    find(driver, "#password").send_keys(PASSWORD)
    if screenshot:
        shot(driver, screenshot)
    find(driver, "#sign-in").click()
    wait(driver).until(lambda d: f"{username} (" in find(d, "nav .who").text)


def sign_out(driver) -> None:
    find(driver, "#logout").click()
    wait(driver).until(lambda d: find(d, "#username"))
    assert "/login" in driver.current_url


def open_batch(driver, base: str, batch_id: int, version: int | None = None) -> None:
    driver.get(f"{base}/batches/{batch_id}" + (f"?version={version}" if version else ""))
    wait(driver).until(lambda d: find(d, "#batch-status"))


def sample_rows(driver) -> dict[str, dict[str, str]]:
    """The samples table as {sample: {column: text}}."""
    table = find(driver, "#samples")
    heads = [th.text.strip() for th in table.find_elements(By.CSS_SELECTOR, "thead th")]
    out = {}
    for tr in table.find_elements(By.CSS_SELECTOR, "tbody tr.sample-row"):
        cells = [td.text.strip() for td in tr.find_elements(By.TAG_NAME, "td")]
        out[tr.get_attribute("data-sample")] = dict(zip(heads, cells))
    return out


def batch_rows(driver) -> list[str]:
    return [tr.text for tr in find_all(driver, "#batches tbody tr") if find_all(tr, "a")]


def fetch(driver, url: str) -> tuple[int, str, bytes]:
    """GET ``url`` with the browser's cookies (the session cookie is HttpOnly, so not reachable from JS)."""
    cookie = "; ".join(f"{c['name']}={c['value']}" for c in driver.get_cookies())
    req = urllib.request.Request(url, headers={"Cookie": cookie})
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.status, r.headers.get("content-type", ""), r.read()


# ---------------------------------------------------------------------------------------------- steps

def test_technician_uploads_and_sees_the_analysed_plate(server, driver, state):
    sign_in(driver, server, "tech", screenshot="01-login")
    assert find(driver, "nav .who").text == "tech (technician)"
    assert not find_all(driver, "nav a[href='/admin']")

    Select(find(driver, "#assay_id")).select_by_visible_text(ASSAY)
    find(driver, "#name").send_keys(BATCH_NAME)
    find(driver, "#run_file").send_keys(str(RUN_FILE))
    find(driver, "#plate_map").send_keys(str(PLATE_MAP))
    shot(driver, "02-upload")
    find(driver, "#upload").click()

    wait(driver).until(lambda d: re.search(r"/batches/\d+$", d.current_url))
    batch_id = int(re.search(r"/batches/(\d+)$", driver.current_url).group(1))
    state["batch"] = batch_id
    # the page polls /batches/N/status and reloads itself when the analysis is done
    wait(driver, 60).until(lambda d: find(d, "#batch-status").text.strip() not in ("queued", "running"))
    status = find(driver, "#batch-status").text.strip()
    assert status == "analysed", find_all(driver, "#batch-error")[0].text if status == "failed" else status
    assert BATCH_NAME in driver.find_element(By.TAG_NAME, "header").text
    assert RUN_FILE.name in find(driver, "main").text and PLATE_MAP.name in find(driver, "main").text

    # the run controls are valid and nothing is reported as a run problem
    kpis = [k.text.split("\n") for k in find_all(driver, ".kpis .kpi")]
    assert ["valid", "run controls"] in kpis, kpis
    assert not find_all(driver, "main > section .error")

    # the plate grid: 16 x 24 (384-well), every plate-map sample linked from its wells
    plate = find(driver, "#plate")
    assert len(plate.find_elements(By.CSS_SELECTOR, "tbody tr")) == 16
    assert len(plate.find_elements(By.CSS_SELECTOR, "thead th")) == 24 + 1
    linked = {a.text for a in plate.find_elements(By.CSS_SELECTOR, "td a")}
    assert len(plate.find_elements(By.CSS_SELECTOR, "td.bad a")) >= 1      # positive wells are red
    assert len(plate.find_elements(By.CSS_SELECTOR, "td.ok a")) >= 1       # negative wells green
    assert len(plate.find_elements(By.CSS_SELECTOR, "td.ctl a")) >= 1      # control wells
    assert "S-002" in linked and "S-001" in linked

    rows = sample_rows(driver)
    assert len(rows) == N_SAMPLES
    assert sorted(rows) == [f"S-{i:03d}" for i in range(1, N_SAMPLES + 1)]
    assert rows["S-002"]["final call"] == "positive"
    assert rows["S-001"]["final call"] == "negative"
    assert {r["status"] for r in rows.values()} == {"review"}   # this rule set holds every sample for review
    controls = find(driver, "#controls").text
    assert "NTC" in controls and "nCoVPC" in controls and "HSC" in controls
    shot(driver, "03-analysed")

    # a technician may look but not review or sign (the direct POST is refused in the API tests)
    for css in ("#sign", "#sign-form", ".accept-box", "#accept", "#correct-form"):
        assert not find_all(driver, css), f"technician sees {css}"

    # a sample page with its amplification curves drawn by plotly
    find(driver, "#samples tr[data-sample='S-002'] a").click()
    wait(driver).until(lambda d: "/sample?id=S-002" in d.current_url)
    wait(driver, 30).until(lambda d: find_all(d, "#curves .main-svg") or find_all(d, "#curves .js-plotly-plot"))
    assert find(driver, "#final-call").text == "positive"
    traces = find_all(driver, "#curves .scatterlayer .trace")
    assert len(traces) == 3, "one curve per target (N1, N2, RP)"
    wells = [tr.text for tr in find_all(driver, "#wells tbody tr")]
    assert len(wells) == 3 and {w.split()[1] for w in wells} == {"N1", "N2", "RP"}
    find(driver, "#curves").location_once_scrolled_into_view
    shot(driver, "04-sample-curves")
    sign_out(driver)


def test_reviewer_corrects_accepts_and_signs(server, driver, state):
    if "batch" not in state:
        pytest.skip("needs the uploaded batch of the previous step")
    batch_id = state["batch"]
    sign_in(driver, server, "reviewer")
    open_batch(driver, server, batch_id)
    assert find(driver, "#batch-status").text == "analysed"
    assert len(find_all(driver, ".accept-box")) == N_SAMPLES

    # change one call with a reason: version 2
    Select(find(driver, "#sample")).select_by_value(CHANGED)
    Select(find(driver, "#call")).select_by_value(CHANGED_TO)
    find(driver, "#reason").send_keys("late N2 curve checked: call it inconclusive and repeat the extraction")
    find(driver, "#correct").click()
    wait(driver).until(lambda d: len(find_all(d, "#versions tbody tr")) == 2)
    assert not find_all(driver, "#error"), find(driver, "#error").text
    assert any(h.text.startswith("Version 2 ") for h in find_all(driver, "main h2"))
    rows = sample_rows(driver)
    assert rows[CHANGED]["final call"] == CHANGED_TO
    assert CHANGED_TO in rows[CHANGED]["override"]
    versions = [tr.text for tr in find_all(driver, "#versions tbody tr")]
    assert versions[0].startswith("1 ") and versions[1].startswith("2 reviewer")
    assert "repeat the extraction" in versions[1]
    find(driver, "#correct-form").location_once_scrolled_into_view
    shot(driver, "05-review")

    # the old version is kept and still shown on request
    open_batch(driver, server, batch_id, version=1)
    assert "older version" in find(driver, ".notice").text
    assert sample_rows(driver)[CHANGED]["final call"] == "positive"
    assert not find_all(driver, ".accept-box") and not find_all(driver, "#sign")   # only the current one is reviewed
    open_batch(driver, server, batch_id)

    # signing while samples are still held is refused with a message, and changes nothing
    find(driver, "#sign").click()
    wait(driver).until(lambda d: find_all(d, "#error"))
    assert "still need review" in find(driver, "#error").text
    assert find(driver, "#batch-status").text == "analysed" and not find_all(driver, "#signed")

    # accept every sample still held, with a reason: version 3
    boxes = find_all(driver, ".accept-box")
    assert boxes and len(boxes) <= N_SAMPLES
    for box in boxes:
        box.click()
    assert all(b.is_selected() for b in find_all(driver, ".accept-box"))
    find(driver, "#accept-reason").send_keys("curves reviewed: calls confirmed")
    find(driver, "#accept").click()
    wait(driver).until(lambda d: len(find_all(d, "#versions tbody tr")) == 3)
    assert not find_all(driver, "#error"), find(driver, "#error").text
    assert not find_all(driver, ".accept-box"), "samples still held after accepting all of them"
    assert {r["status"] for r in sample_rows(driver).values()} != {"review"}
    assert sample_rows(driver)[CHANGED]["final call"] == CHANGED_TO

    find(driver, "#sign").click()
    wait(driver).until(lambda d: find_all(d, "#signed"))
    assert not find_all(driver, "#error"), find(driver, "#error").text
    assert find(driver, "#signed").text.startswith("signed by reviewer")
    assert find(driver, "#batch-status").text == "signed"
    assert not find_all(driver, "#sign")
    last = find_all(driver, "#versions tbody tr")[-1].find_elements(By.TAG_NAME, "td")
    assert last[0].text == "3" and last[-1].text.startswith("reviewer ")
    state["signed_version"] = 3
    shot(driver, "06-signed")


def test_exports_with_the_browser_session(server, driver, state):
    if "signed_version" not in state:
        pytest.skip("needs the signed batch of the previous step")
    open_batch(driver, server, state["batch"])
    links = {k: find(driver, f"#export-{k}").get_attribute("href") for k in ("html", "csv", "fhir")}
    assert all(f"version={state['signed_version']}" in u for u in links.values()), links

    status, ctype, body = fetch(driver, links["csv"])
    assert status == 200 and ctype.startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(body.decode("utf-8"))))
    assert len(table) == N_SAMPLES
    assert "final_call" in table[0]
    calls = {r["sample"]: r["final_call"] for r in table}
    assert calls["S-001"] == "negative" and calls["S-002"] == "positive" and calls[CHANGED] == CHANGED_TO

    status, ctype, body = fetch(driver, links["html"])
    assert status == 200 and ctype.startswith("text/html")
    report = body.decode("utf-8")
    assert RUN_NAME in report
    assert f"SIGNED</span> version {state['signed_version']}, by reviewer" in report   # the stored version, signed
    assert "SIGNATURE OUTDATED" not in report and "SUPERSEDED" not in report
    assert {r["result_status"] for r in table} == {"final"}
    driver.get(links["html"])                     # the printable report as the browser shows it (sandboxed)
    wait(driver, 30).until(lambda d: find_all(d, "#release"))
    assert find(driver, "#release").text.startswith(f"SIGNED version {state['signed_version']}, by reviewer")
    shot(driver, "09-report-signed")

    status, ctype, body = fetch(driver, links["fhir"])
    assert status == 200 and "json" in ctype
    bundle = json.loads(body)
    assert bundle["resourceType"] == "Bundle"
    obs = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation"]
    assert len(obs) == len(bundle["entry"]) == N_SAMPLES
    assert {o["status"] for o in obs} == {"final"}

    # without the session the export is not served
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(urllib.request.Request(links["csv"].replace("/batches/", "/api/batches/")),
                               timeout=30)
    assert err.value.code == 401


def test_correction_after_release_goes_out_corrected(server, driver, state):
    """A released result changed: a new version, signed again; the report and FHIR say what it replaces."""
    if "signed_version" not in state:
        pytest.skip("needs the signed batch of the previous steps")
    open_batch(driver, server, state["batch"])
    before = sample_rows(driver)
    target = next(name for name, r in before.items() if r["final call"] in ("negative", "positive"))
    new_call = "inconclusive"
    Select(find(driver, "#sample")).select_by_value(target)
    Select(find(driver, "#call")).select_by_value(new_call)
    find(driver, "#reason").send_keys("tube swap found after release: result withdrawn as inconclusive")
    find(driver, "#correct").click()
    number = state["signed_version"] + 1
    wait(driver).until(lambda d: len(find_all(d, "#versions tbody tr")) == number)
    assert find(driver, "#batch-status").text == "analysed" and sample_rows(driver)[target]["final call"] == new_call
    find(driver, "#sign").click()
    wait(driver).until(lambda d: find_all(d, "#signed"))
    assert not find_all(driver, "#error"), find(driver, "#error").text
    links = {k: find(driver, f"#export-{k}").get_attribute("href") for k in ("html", "fhir")}
    assert all(f"version={number}" in u for u in links.values())
    bundle = json.loads(fetch(driver, links["fhir"])[2])
    obs = {e["resource"]["specimen"]["display"]: e["resource"] for e in bundle["entry"]}
    assert obs[target]["status"] == "corrected" and obs[target]["valueCodeableConcept"]["text"] == new_call
    assert any(f"replaces '{before[target]['final call']}'" in n["text"] for n in obs[target]["note"])
    driver.get(links["html"])
    wait(driver, 30).until(lambda d: find_all(d, "#release"))
    assert "CHANGED AFTER RELEASE" in find(driver, "main").text
    shot(driver, "10-corrected-report")
    open_batch(driver, server, state["batch"], version=state["signed_version"])
    assert "older version" in find(driver, ".notice").text
    state["corrected_version"] = number
    sign_out(driver)


def test_admin_integrity_page_names_a_tampered_signed_result(server, driver, state):
    """Verify in the browser: intact, then a signed result edited in the database file is named."""
    import sqlite3

    if "corrected_version" not in state:
        pytest.skip("needs the signed versions of the previous steps")
    sign_in(driver, server, "admin")
    find(driver, "#nav-verify").click()
    wait(driver).until(lambda d: find(d, "#verify-verdict"))
    assert find(driver, "#verify-verdict").text == "Intact", find(driver, "main").text
    shot(driver, "11-verify-intact")

    con = sqlite3.connect(DATABASE["path"])           # someone with the database file, around the triggers
    triggers = con.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = "
                           "'batch_versions'").fetchall()
    for name, _ in triggers:
        con.execute(f"DROP TRIGGER {name}")
    version = state["signed_version"]
    result = json.loads(con.execute("SELECT result FROM batch_versions WHERE batch_id = ? AND version = ?",
                                    (state["batch"], version)).fetchone()[0])
    result["samples"][0]["final_call"] = "negative" if result["samples"][0]["final_call"] != "negative" else "positive"
    con.execute("UPDATE batch_versions SET result = ? WHERE batch_id = ? AND version = ?",
                (json.dumps(result), state["batch"], version))
    for _, sql in triggers:
        con.execute(sql)
    con.commit()
    con.close()

    driver.refresh()
    wait(driver).until(lambda d: find(d, "#verify-verdict"))
    assert "break" in find(driver, "#verify-verdict").text
    breaks = find(driver, "#breaks").text
    assert f"batch {state['batch']} version {version}" in breaks and "signed results were changed" in breaks
    shot(driver, "12-verify-break")


def test_bad_upload_shows_the_error_and_stores_nothing(server, driver, state):
    driver.get(server + "/")
    wait(driver).until(lambda d: find(d, "#upload-form"))
    before = batch_rows(driver)
    Select(find(driver, "#assay_id")).select_by_visible_text(ASSAY)
    find(driver, "#name").send_keys("not a run file")
    find(driver, "#run_file").send_keys(str(BAD_FILE))
    find(driver, "#upload").click()
    wait(driver).until(lambda d: find_all(d, "#error"))
    message = find(driver, "#error").text
    assert BAD_FILE.name in message, message
    assert re.search(r"/\?error=", driver.current_url)
    assert batch_rows(driver) == before
    assert "not a run file" not in find(driver, "#batches").text
    shot(driver, "07-bad-upload")


def test_guide_links_to_the_example_files(server, driver):
    driver.get(server + "/guide")
    wait(driver).until(lambda d: find(d, "ol.steps"))
    assert "Your first plate" in find(driver, "main").text
    run_link = find(driver, "#guide-run").get_attribute("href")
    map_link = find(driver, "#guide-map").get_attribute("href")
    assert run_link.endswith("/guide/files/" + RUN_FILE.name)
    assert map_link.endswith("/guide/files/" + PLATE_MAP.name)
    for link, path in ((run_link, RUN_FILE), (map_link, PLATE_MAP)):
        status, _, body = fetch(driver, link)
        assert status == 200 and body == path.read_bytes()
    shot(driver, "08-guide")


def test_screenshots_were_saved():
    names = ["01-login", "02-upload", "03-analysed", "04-sample-curves", "05-review", "06-signed",
             "07-bad-upload", "08-guide", "09-report-signed", "10-corrected-report", "11-verify-intact",
             "12-verify-break"]
    for name in names:
        path = ARTIFACTS / f"{name}.png"
        assert path.is_file() and path.stat().st_size > 0, path
