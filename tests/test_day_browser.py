"""The lab's whole day in Russian, in headless Chromium, against a real ``oligolab serve`` (SQLite, two web
processes): the admin sets the lab (Europe/Moscow, Russian, letterhead) and the clinic's endpoints (a real MLLP
listener and a real FHIR HTTP receiver started here); a technician accessions 96 specimens from a CSV, prints
their labels, builds the worklist and uploads the run (REAL curves of the shipped LightCycler 480 plate laid
out by the worklist's plate map); a reviewer reviews, signs and releases; the one inconclusive specimen goes
back to the waiting list and through a second run; the per-patient printout, the Levey-Jennings chart and the
delivery log are checked and photographed; every HL7 v2 message is parsed and validated by hl7apy, the FHIR
bundles by fhir.resources. Screenshots go to ``test-artifacts/day/``.

The tests run in file order and share one browser and one server; each step needs the earlier ones.
"""

from __future__ import annotations

import json
import re
import shutil
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts" / "day"
POSITIVES = {"SYK-0003", "SYK-0050", "SYK-0077"}
RETESTED = "SYK-0010"
LOT = "LOT-2211"

CHROMIUM = next((p for p in ("/usr/bin/chromium", shutil.which("chromium")) if p and Path(p).is_file()), None)
CHROMEDRIVER = next((p for p in ("/usr/bin/chromedriver", shutil.which("chromedriver")) if p and Path(p).is_file()),
                    None)
if CHROMIUM is None or CHROMEDRIVER is None:
    pytest.skip("headless browser tests need chromium and chromedriver (Debian packages chromium, "
                "chromium-driver)", allow_module_level=True)
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException  # noqa: E402
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

from day_support import FhirReceiver, MllpListener, day_csv, day_run_csv  # noqa: E402
from serve_support import PASSWORD, start_server, stop_server  # noqa: E402


@pytest.fixture(scope="module")
def clinic():
    listener, receiver = MllpListener(), FhirReceiver()
    try:
        yield listener, receiver
    finally:
        listener.close()
        receiver.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("day-browser")
    proc, base = start_server(f"sqlite:///{tmp}/day.db", tmp / "server.log", "--demo", "--no-watch")
    try:
        yield base
    finally:
        stop_server(proc)


@pytest.fixture(scope="module")
def driver():
    opts = Options()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000", "--lang=ru"):
        opts.add_argument(arg)
    opts.add_experimental_option("prefs", {"intl.accept_languages": "ru,ru-RU"})
    d = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    d.set_page_load_timeout(60)
    try:
        yield d
    finally:
        d.quit()


@pytest.fixture(scope="module")
def state(tmp_path_factory) -> dict:
    return {"tmp": tmp_path_factory.mktemp("day-files")}


@pytest.fixture(scope="module", autouse=True)
def _artifacts():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()


def wait(driver, timeout: float = 40):
    return WebDriverWait(driver, timeout, poll_frequency=0.2,
                         ignored_exceptions=(NoSuchElementException, StaleElementReferenceException))


def find(driver, css: str):
    return driver.find_element(By.CSS_SELECTOR, css)


def find_all(driver, css: str):
    return driver.find_elements(By.CSS_SELECTOR, css)


def shot(driver, name: str) -> None:
    path = ARTIFACTS / f"{name}.png"
    assert driver.save_screenshot(str(path)) and path.stat().st_size > 0, path


def sign_in(driver, base: str, username: str) -> None:
    driver.delete_all_cookies()
    driver.get(base + "/login")
    wait(driver).until(lambda d: find(d, "#username"))
    find(driver, "#username").send_keys(username)
    find(driver, "#password").send_keys(PASSWORD)
    find(driver, "#sign-in").click()
    wait(driver).until(lambda d: f"{username} (" in find(d, "nav .who").text)


def fetch(driver, url: str) -> bytes:
    cookie = "; ".join(f"{c['name']}={c['value']}" for c in driver.get_cookies())
    with urllib.request.urlopen(urllib.request.Request(url, headers={"Cookie": cookie}), timeout=60) as r:
        return r.read()


def notice(driver) -> str:
    wait(driver).until(lambda d: find_all(d, "#done") or find_all(d, "#error"))
    assert not find_all(driver, "#error"), find(driver, "#error").text
    return find(driver, "#done").text


def wait_analysed(driver, base: str, batch_id: int) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        status = json.loads(fetch(driver, f"{base}/batches/{batch_id}/status"))
        if status["status"] not in ("queued", "running"):
            assert status["status"] == "analysed", status
            return
        time.sleep(1)
    pytest.fail(f"batch {batch_id} not analysed in 180 s")


def upload_worklist_run(driver, base: str, state: dict, worklist_id: int, name: str, **run) -> int:
    plate_map = fetch(driver, f"{base}/worklists/{worklist_id}/platemap.csv").decode()
    path = state["tmp"] / f"{name}.rdml"
    path.write_bytes(day_run_csv(plate_map, name=name, **run))
    driver.get(f"{base}/worklists/{worklist_id}")
    find(driver, "#run-file").send_keys(str(path))
    find(driver, "#upload-run").click()
    wait(driver).until(lambda d: re.search(r"/batches/\d+$", d.current_url))
    batch_id = int(driver.current_url.rsplit("/", 1)[1])
    wait_analysed(driver, base, batch_id)
    return batch_id


def review_and_sign(driver, base: str, batch_id: int) -> None:
    driver.get(f"{base}/batches/{batch_id}")
    wait(driver).until(lambda d: find(d, "#batch-status"))
    boxes = find_all(driver, ".accept-box")
    if boxes:
        for box in boxes:
            driver.execute_script("arguments[0].checked = true;", box)
        find(driver, "#accept-reason").send_keys("Кривые просмотрены, результаты подтверждены")
        find(driver, "#accept").click()
        wait(driver, 60).until(lambda d: not find_all(d, ".accept-box"))
    find(driver, "#sign").click()
    wait(driver, 60).until(lambda d: find_all(d, "#signed") or find_all(d, "#error"))
    assert not find_all(driver, "#error"), find(driver, "#error").text


def release(driver, base: str, batch_id: int) -> str:
    driver.get(base + "/release")
    wait(driver).until(lambda d: find(d, f"#release-{batch_id}"))
    find(driver, f"#release-{batch_id}").click()
    return notice(driver)


def wait_for(predicate, what: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    pytest.fail(f"{what} not within {timeout} s")


# ---------------------------------------------------------------------------------------------- the day

def test_admin_sets_up_the_lab_in_russian(server, driver, clinic):
    listener, receiver = clinic
    sign_in(driver, server, "admin")
    driver.get(server + "/settings")
    Select(find(driver, "#timezone")).select_by_value("Europe/Moscow")
    Select(find(driver, "#lab-language")).select_by_value("ru")
    find(driver, "#header").send_keys("ГБУЗ РК «Республиканская лаборатория»\nг. Сыктывкар, лицензия № ЛО-11-01-000000")
    find(driver, "#save-lab").click()
    wait(driver).until(lambda d: "Образцы" in find(d, "nav").text)
    for name, kind, url in (("МИС HL7", "mllp", listener.url), ("МИС FHIR", "fhir", receiver.url)):
        find(driver, "#ep-name").send_keys(name)
        Select(find(driver, "#ep-kind")).select_by_value(kind)
        find(driver, "#ep-url").send_keys(url)
        find(driver, "#add-endpoint").click()
        wait(driver).until(lambda d: name in find(d, "#endpoints").text)
    assert "Получатели результатов" in find(driver, "main").text
    shot(driver, "01-settings")


def test_technician_accessions_96_specimens_and_prints_labels(server, driver, state):
    sign_in(driver, server, "tech")
    assert "Рабочие листы" in find(driver, "nav").text
    csv_path = state["tmp"] / "приём-2026-12-04.csv"
    csv_path.write_bytes(day_csv(96))
    driver.get(server + "/specimens")
    find(driver, "#import-file").send_keys(str(csv_path))
    find(driver, "#import").click()
    assert notice(driver) == "Принято 96 образцов."
    rows = find_all(driver, "#specimens tbody tr")
    assert len(rows) == 50 and "ожидает" in rows[0].text          # the newest 50; search finds the others
    assert "(UTC+03:00)" in rows[0].text                        # collection time in the lab's zone
    shot(driver, "02-accessioned")

    driver.get(server + "/worklists")
    Select(find(driver, "#w-plate")).select_by_value("384")
    find(driver, "#w-lot").send_keys(LOT)
    find(driver, "#make-worklist").click()
    wait(driver).until(lambda d: re.search(r"/worklists/\d+$", d.current_url))
    state["worklist1"] = int(driver.current_url.rsplit("/", 1)[1])
    plate = find(driver, "#worklist-plate")
    assert len(plate.find_elements(By.CSS_SELECTOR, "td.ok")) == 96 * 3 and "Рабочий лист" in find(driver, "main").text
    shot(driver, "03-worklist")
    find(driver, "#print-labels").click()
    wait(driver).until(lambda d: find_all(d, ".label"))
    labels = find_all(driver, ".label")
    assert len(labels) == 96 and len(find_all(driver, ".label svg.barcode")) == 96
    assert {lab.get_attribute("data-specimen") for lab in labels} == {f"SYK-{i:04d}" for i in range(1, 97)}
    shot(driver, "04-labels")


def test_run_uploaded_reviewed_signed_and_released(server, driver, state, clinic):
    listener, receiver = clinic
    b1 = upload_worklist_run(driver, server, state, state["worklist1"], "run-1", positives=POSITIVES,
                             inconclusive={RETESTED})
    state["batch1"] = b1
    driver.get(f"{server}/batches/{b1}")
    wait(driver).until(lambda d: find(d, "#batch-qc"))
    assert LOT in find(driver, "#batch-qc").text and "Вестгард" in find(driver, "#batch-qc").text
    shot(driver, "05-batch-analysed")
    sign_in(driver, server, "reviewer")
    review_and_sign(driver, server, b1)
    shot(driver, "06-batch-signed")
    assert release(driver, server, b1) == ("Выдано: 95; отправлено на повторное исследование: 1; "
                                           "поставлено в очередь отправки: 96.")
    wait_for(lambda: len(listener.messages) == 95 and len(receiver.bundles) == 1, "deliveries of run 1")
    driver.get(server + "/release")
    wait(driver).until(lambda d: len(find_all(d, "#deliveries tr.delivery-delivered")) == 96)
    assert "MSA AA" in find(driver, "#deliveries").text and "HTTP 200" in find(driver, "#deliveries").text
    shot(driver, "07-released-delivery-log")


def test_the_inconclusive_specimen_is_retested_through_a_second_run(server, driver, state, clinic):
    listener, receiver = clinic
    sign_in(driver, server, "tech")
    driver.get(f"{server}/specimen?id={RETESTED}")
    orders = find(driver, "#orders").text
    assert "на повтор" in orders and "ожидает" in orders and "повтор № " in orders
    shot(driver, "08-specimen-retest")
    driver.get(server + "/worklists")
    find(driver, "#w-lot").send_keys(LOT)
    find(driver, "#make-worklist").click()
    wait(driver).until(lambda d: re.search(r"/worklists/\d+$", d.current_url))
    worklist2 = int(driver.current_url.rsplit("/", 1)[1])
    assert RETESTED in find(driver, "#worklist-plate").text
    b2 = upload_worklist_run(driver, server, state, worklist2, "run-2", positives={RETESTED})
    state["batch2"] = b2
    sign_in(driver, server, "reviewer")
    review_and_sign(driver, server, b2)
    assert release(driver, server, b2).startswith("Выдано: 1; отправлено на повторное исследование: 0")
    wait_for(lambda: len(listener.messages) == 96 and len(receiver.bundles) == 2, "deliveries of run 2")


def test_admin_enters_the_lots_control_limits(server, driver, state):
    """The lot certificate's limits for the positive control N1 (the run sits inside them) and the lab's limits
    for the internal control, between which the second run (a single specimen) falls beyond 2 SD: a 1-2s
    warning on that run."""
    import statistics

    sign_in(driver, server, "admin")
    runs = [json.loads(fetch(driver, f"{server}/api/batches/{state[k]}")) for k in ("batch1", "batch2")]
    pc_n1 = next(c for c in runs[0]["result"]["controls"] if c["role"] == "pc")["N1_cq"]
    ic = [statistics.median(s["RP_cq"] for s in r["result"]["samples"] if s["RP_cq"] is not None) for r in runs]
    assert abs(ic[1] - ic[0]) > 0.05, ic
    driver.get(server + "/settings")
    for control, target, mean, sd, source in (("pc", "N1", pc_n1 + 0.3, 0.5, "паспорт серии"),
                                              ("ic", "RP", ic[0], abs(ic[1] - ic[0]) / 2.5, "валидация")):
        Select(find(driver, "#l-control")).select_by_value(control)
        for css, value in (("#l-target", target), ("#l-lot", LOT), ("#l-mean", f"{mean:.3f}".replace(".", ",")),
                           ("#l-sd", f"{sd:.3f}"), ("#l-source", source)):
            find(driver, css).clear()
            find(driver, css).send_keys(value)
        find(driver, "#add-limit").click()
        wait(driver).until(lambda d: source in find(d, "#limits").text)
    shot(driver, "11-control-limits")


def test_the_clinic_received_valid_hl7_and_fhir(clinic, state):
    listener, receiver = clinic
    from fhir.resources.R4B.bundle import Bundle

    by_specimen = {}
    for msg in listener.messages:                   # every one parsed and validated strictly by the listener
        order = msg.ORU_R01_PATIENT_RESULT.ORU_R01_ORDER_OBSERVATION
        by_specimen[order.OBR.obr_3.to_er7()] = order
    assert set(by_specimen) == {f"SYK-{i:04d}" for i in range(1, 97)}
    values = {s: o.ORU_R01_OBSERVATION.OBX.obx_5.to_er7().split("^")[0] for s, o in by_specimen.items()}
    assert {s for s, v in values.items() if v == "260373001"} == POSITIVES | {RETESTED}
    assert {v for s, v in values.items() if s not in POSITIVES | {RETESTED}} == {"260415000"}
    retest = by_specimen[RETESTED].ORU_R01_OBSERVATION
    notes = " ".join(n.nte_3.to_er7() for n in retest.children if n.name == "NTE")
    assert f"batch {state['batch2']}" in notes and "retest of order" in notes
    pid = listener.messages[0].ORU_R01_PATIENT_RESULT.ORU_R01_PATIENT.PID
    assert pid.pid_5.to_er7() == "Иванов^Алексей"
    for bundle in receiver.bundles:
        Bundle.model_validate(bundle)
    kinds = [e["resource"]["resourceType"] for e in receiver.bundles[0]["entry"]]
    assert kinds.count("Observation") == kinds.count("DiagnosticReport") == kinds.count("Specimen") == 95
    obs = [e["resource"] for e in receiver.bundles[1]["entry"] if e["resource"]["resourceType"] == "Observation"]
    assert obs[0]["valueCodeableConcept"]["coding"][0]["code"] == "260373001"


def test_per_patient_printout_in_russian(server, driver, state):
    driver.get(f"{server}/specimens?q={RETESTED}")
    find(driver, "#specimens tbody tr a[href^='/patients/']").click()
    wait(driver).until(lambda d: find_all(d, "#results"))
    text = find(driver, "body").text
    assert "Результат лабораторного исследования" in text and "г. Сыктывкар" in text
    assert "РНК 2019-nCoV (SARS-CoV-2) обнаружена" in text
    assert f"постановка {state['batch2']}, версия" in text and "повтор исследования №" in text
    assert "(UTC+03:00)" in text and "reviewer" in text
    shot(driver, "09-patient-printout")


def test_levey_jennings_chart_and_westgard_on_the_qc_page(server, driver, state):
    driver.get(server + "/qc")
    wait(driver, 30).until(lambda d: find_all(d, ".lj-chart .main-svg"))
    charts = find_all(driver, ".lj-chart")
    series = [c.get_attribute("data-series") for c in charts]
    assert any("положительный контроль N1" in s and LOT in s for s in series), series
    assert any("внутренний контроль" in s for s in series)
    assert len(find_all(driver, ".lj-chart .scatterlayer .trace")) >= len(charts)
    assert "Контрольные карты Леви-Дженнингса" in find(driver, "main").text
    assert find_all(driver, "#ntc tbody tr")
    flags = [tr.text for tr in find_all(driver, "#westgard tbody tr")]
    assert any(t.startswith(f"{state['batch2']} 1-2s") and "внутренний контроль" in t for t in flags), flags
    assert not any("1-2s" in t and "положительный контроль N1" in t for t in flags), flags
    shot(driver, "10-levey-jennings")
    driver.get(f"{server}/batches/{state['batch2']}")
    wait(driver).until(lambda d: find(d, "#batch-qc"))
    assert "предупреждение" in find(driver, "#westgard-status").text
    find(driver, "#batch-qc").location_once_scrolled_into_view
    shot(driver, "12-batch-westgard")


def test_screenshots_were_saved():
    for name in ("01-settings", "02-accessioned", "03-worklist", "04-labels", "05-batch-analysed",
                 "06-batch-signed", "07-released-delivery-log", "08-specimen-retest", "09-patient-printout",
                 "10-levey-jennings", "11-control-limits", "12-batch-westgard"):
        path = ARTIFACTS / f"{name}.png"
        assert path.is_file() and path.stat().st_size > 0, path
