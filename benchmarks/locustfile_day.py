"""Locust users of the lab's-day benchmark (run by benchmarks/bench_day.py, not on its own).

Three kinds of users, each signed in with its own account (bearer token, so page forms need no CSRF token):

- Receptionist (accessioning): imports the next list of the day's specimens (a CSV of BENCH_DAY_LIST specimens,
  POST /specimens/import) until the day's BENCH_DAY_SPECIMENS are in, looks one up (search page) and opens the
  labels of the waiting specimens; afterwards searches specimens and patients.
- Technician (plates): when a full 384-well plate's worth of specimens waits (or the day's list is complete and
  any wait), makes a worklist (POST /worklists), opens it, downloads its plate map, uploads the instrument run
  laid out by it (REAL curves of the shipped LightCycler 480 run, relabelled by the plate map) and follows the
  analysis; otherwise looks at the worklists, specimens and QC pages.
- Reviewer: takes an analysed worklist batch no other reviewer has, opens its page and two specimens, accepts the
  samples held for review, signs, releases it to the clinic (POST /release/{id}) and looks at the release page
  (delivery log), the QC page and a patient's printed result; with nothing to review it browses.

Think time 1-3 s. Every request is timed by a listener and written, named "page: ..." (HTML GET) or "api: ..."
(everything else), split into the ramp-up (until the last user has signed in) and the steady state, with the
day's counts, to BENCH_DAY_OUT when locust quits. Configuration from the environment: BENCH_DAY_ACCOUNTS (JSON
{"receptionist": [[user, password], ...], "technician": [...], "reviewer": [...]}), BENCH_DAY_ASSAY,
BENCH_DAY_SPECIMENS, BENCH_DAY_LIST, BENCH_DAY_OUT, BENCH_DAY_USERS.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import re
import sys
import time
from pathlib import Path
from urllib.parse import quote

from locust import HttpUser, between, task

sys.path.insert(0, str(Path(__file__).resolve().parent))
from locust_recording import record  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from day_support import day_csv, day_run_csv  # noqa: E402

ACCOUNTS = json.loads(Path(os.environ["BENCH_DAY_ACCOUNTS"]).read_text())
ASSAY_ID = int(os.environ.get("BENCH_DAY_ASSAY", "1"))
DAY_SPECIMENS = int(os.environ.get("BENCH_DAY_SPECIMENS", "800"))
LIST_SIZE = int(os.environ.get("BENCH_DAY_LIST", "50"))
OUT = Path(os.environ["BENCH_DAY_OUT"])
N_USERS = int(os.environ["BENCH_DAY_USERS"])
FULL_PLATE = 125          # specimens on a 384-well CDC plate (3 wells each, 3 controls)
POLL_S, POLL_LIMIT_S = 1.0, 600.0

_accounts = {role: itertools.cycle(ACCOUNTS[role]) for role in ACCOUNTS}
_lists = itertools.count()
_retry: list[int] = []            # lists whose import was refused (a conflict): imported again
_claimed: set[int] = set()
_making = {"worklist": False}
_counts = {"started": 0, "signed_in": 0, "lists": 0, "specimens_sent": 0, "worklists": 0, "runs": 0,
           "plates_done": 0, "signed": 0, "released_batches": 0, "released": 0, "retests": 0,
           "refused": 0, "reviewer_idle": 0}
_window = record(OUT, _counts)


class DayUser(HttpUser):
    abstract = True
    role = ""
    wait_time = between(1, 3)

    def on_start(self):
        user, password = next(_accounts[self.role])
        self.username = user
        try:
            r = self.client.post("/api/login", json={"username": user, "password": password}, name="api: POST login")
            if r.ok:
                self.client.headers["Authorization"] = "Bearer " + r.json()["token"]
                _counts["signed_in"] += 1
            else:
                self.stop()
        finally:
            _counts["started"] += 1
            if _counts["started"] == N_USERS:
                _window["steady"] = time.time()

    def page(self, url: str, name: str):
        return self.client.get(url, name="page: " + name)

    def form(self, url: str, name: str, **kw) -> str | None:
        """POST a page form; the redirect target, or None (a failure) when it came back with an error."""
        with self.client.post(url, name=f"api: POST {name}", allow_redirects=False, catch_response=True,
                              **kw) as r:
            where = r.headers.get("location", "")
            if r.status_code != 303 or "error=" in where:
                _counts["refused"] += 1
                r.failure(f"{name}: {r.status_code} {where[:200]}")
                return None
            return where

    def waiting(self) -> int:
        r = self.page("/worklists", "/worklists")
        m = re.findall(r"(\d+) (?:waiting|ожида)", r.text) if r.ok else []
        return int(m[0]) if m else 0


class Receptionist(DayUser):
    weight = 1
    role = "receptionist"

    @task
    def receive(self):
        k = _retry.pop() if _retry else next(_lists)
        n = min(LIST_SIZE, DAY_SPECIMENS - k * LIST_SIZE)
        if n <= 0:
            self.page(f"/specimens?q=P1000{random.randint(0, 49):02d}", "/specimens?q= (search)")
            return
        data = day_csv(n, prefix=f"D{k:03d}")
        if not self.form("/specimens/import", "specimens/import (list)", data={"assay_id": str(ASSAY_ID)},
                         files={"file": (f"list-{k}.csv", data, "text/csv")}):
            _retry.append(k)              # the receptionist imports the list again
            return
        _counts["lists"] += 1
        _counts["specimens_sent"] += n
        self.wait()
        self.page(f"/specimens?q=D{k:03d}-0001", "/specimens?q= (search)")
        self.wait()
        self.page("/labels", "/labels (waiting)")


class Technician(DayUser):
    weight = 2
    role = "technician"

    @task
    def plate(self):
        n = self.waiting()
        day_in = _counts["specimens_sent"] >= DAY_SPECIMENS
        if _making["worklist"] or not (n >= FULL_PLATE or (day_in and n > 0)):
            self.wait()
            random.choice([lambda: self.page("/specimens", "/specimens"), lambda: self.page("/qc", "/qc")])()
            return
        _making["worklist"] = True
        try:
            where = self.form("/worklists", "worklists (384-well)", data={"assay_id": str(ASSAY_ID), "plate": "384",
                                                                         "reagent_lot": "LOT-2211"})
        finally:
            _making["worklist"] = False
        if not where:
            return
        _counts["worklists"] += 1
        wl = int(where.rsplit("/", 1)[1])
        self.page(f"/worklists/{wl}", "/worklists/{id}")
        plate_map = self.client.get(f"/worklists/{wl}/platemap.csv", name="api: GET platemap.csv").text
        run = day_run_csv(plate_map, name=f"worklist {wl}", positives={f"D{wl:03d}-0003"})
        where = self.form(f"/worklists/{wl}/run", "worklists/{id}/run (upload)",
                          files={"run_file": (f"worklist-{wl}.rdml", run, "application/octet-stream")})
        if not where:
            return
        _counts["runs"] += 1
        batch = int(where.rsplit("/", 1)[1])
        self.page(f"/batches/{batch}", "/batches/{id}")
        t0 = time.time()
        while time.time() - t0 < POLL_LIMIT_S:
            time.sleep(POLL_S)
            s = self.client.get(f"/batches/{batch}/status", name="api: GET /batches/{id}/status (poll)")
            if s.ok and s.json()["status"] not in ("queued", "running"):
                _counts["plates_done"] += 1
                break
        self.page(f"/batches/{batch}", "/batches/{id}")


class Reviewer(DayUser):
    weight = 2
    role = "reviewer"

    @task
    def review_release(self):
        listing = self.client.get("/api/batches?limit=100", name="api: GET /api/batches")
        self.page("/release", "/release")
        todo = [b["id"] for b in (listing.json() if listing.ok else [])
                if b["status"] == "analysed" and b["id"] not in _claimed]
        if not todo:
            _counts["reviewer_idle"] += 1
            self.wait()
            random.choice([lambda: self.page("/qc", "/qc"), lambda: self.page("/summary", "/summary"),
                           lambda: self.patient()])()
            return
        batch = min(todo)
        _claimed.add(batch)
        self.page(f"/batches/{batch}", "/batches/{id}")
        d = self.client.get(f"/api/batches/{batch}", name="api: GET /api/batches/{id}").json()
        samples = d["result"]["samples"]
        for s in random.sample(samples, min(2, len(samples))):
            self.wait()
            self.page(f"/batches/{batch}/sample?id={quote(str(s['sample']))}", "/batches/{id}/sample")
        version = d["version"]
        held = [s["sample"] for s in samples if s.get("status") == "review"]
        if held:
            r = self.client.post(f"/api/batches/{batch}/corrections", name="api: POST corrections (accept)",
                                 json={"changes": [{"sample": s, "accept": True} for s in held],
                                       "reason": "curves checked"})
            if not r.ok:
                return
            version = r.json()["version"]
        r = self.client.post(f"/api/batches/{batch}/sign", name="api: POST sign", json={"version": version})
        if not r.ok:
            return
        _counts["signed"] += 1
        where = self.form(f"/release/{batch}", "release/{id}")
        if where:
            released, retests, _deliveries = (int(x) for x in where.rsplit("=", 1)[1].split("-"))
            _counts["released_batches"] += 1
            _counts["released"] += released
            _counts["retests"] += retests
        self.page("/release", "/release")

    def patient(self):
        found = self.page("/specimens?q=D000", "/specimens?q= (search)")
        m = re.search(r'href="/patients/(\d+)/report"', found.text) if found.ok else None
        if m:
            self.page(f"/patients/{m.group(1)}/report", "/patients/{id}/report")
