"""Locust users of the lab service load benchmark (run by benchmarks/bench_serve.py, not on its own).

Two kinds of users, each signed in with its own account (bearer token):

- Technician: uploads the 384-well plate (POST /api/batches), lands on the batch page, polls the batch status
  once a second as the page's script does until the analysis is done, reloads the batch page, opens one sample
  page and the batch list; then, after a short pause, the next plate. A technician waits for a plate before
  uploading the next, so the queue holds at most one plate per technician and the analysis worker stays busy.
  With BENCH_SERVE_UPLOAD_INTERVAL (seconds) a technician uploads at most once per interval and browses the
  batch list, a recent batch and one of its samples in between.
- Reviewer: lists the batches (API and home page), takes an analysed batch no other reviewer has taken, opens
  its page, its detail (API) and two sample pages, accepts the samples held for review (POST corrections, which
  analyses the batch again) and signs the new version. With nothing to review it browses a recent batch.

Think time between steps: ``wait_time`` (1-3 s, a busy lab). Every request is timed exactly by a listener and
written, named "page: ..." (HTML GET) or "api: ...", split into the ramp-up (until the last user has signed in)
and the steady state, with the counts of uploads, corrections and signatures, to the JSON file named by
BENCH_SERVE_OUT when locust quits. Configuration comes from the environment:
BENCH_SERVE_ACCOUNTS (JSON file: {"technician": [[user, password], ...], "reviewer": [...]}),
BENCH_SERVE_RUN (the RDML file to upload), BENCH_SERVE_ASSAY (assay id), BENCH_SERVE_OUT, BENCH_SERVE_USERS,
BENCH_SERVE_UPLOAD_INTERVAL (optional).
"""

from __future__ import annotations

import itertools
import json
import os
import random
import sys
import time
from pathlib import Path
from urllib.parse import quote

from locust import HttpUser, between, task

sys.path.insert(0, str(Path(__file__).resolve().parent))
from locust_recording import record  # noqa: E402

ACCOUNTS = json.loads(Path(os.environ["BENCH_SERVE_ACCOUNTS"]).read_text())
RUN_PATH = Path(os.environ["BENCH_SERVE_RUN"])
RUN_BYTES = RUN_PATH.read_bytes()
ASSAY_ID = int(os.environ.get("BENCH_SERVE_ASSAY", "1"))
OUT = Path(os.environ["BENCH_SERVE_OUT"])
N_USERS = int(os.environ["BENCH_SERVE_USERS"])
POLL_S = 1.0             # the batch page's script polls once a second
POLL_LIMIT_S = 600.0     # give up waiting for one plate after this long (the run ends long before)
#: seconds between one technician's uploads (0: the next plate as soon as the last is analysed)
UPLOAD_INTERVAL_S = float(os.environ.get("BENCH_SERVE_UPLOAD_INTERVAL", "0") or 0)

_next_account = {role: itertools.cycle(ACCOUNTS[role]) for role in ("technician", "reviewer")}
_claimed: set[int] = set()          # batches a reviewer has taken (one locust process: a plain set)
_counts = {"started": 0, "signed_in": 0, "sign_in_retries": 0, "uploads_accepted": 0, "uploads_refused": 0,
           "plates_seen_done": 0, "corrections": 0, "signed": 0,
           "review_conflicts": 0, "reviewer_idle": 0}
_window = record(OUT, _counts)


class LabUser(HttpUser):
    abstract = True
    role = ""

    def on_start(self):
        user, password = next(_next_account[self.role])
        self.username = user
        try:
            for attempt in range(3):              # a person whose sign-in fails tries again
                r = self.client.post("/api/login", json={"username": user, "password": password},
                                     name="api: POST login")
                if r.ok:
                    self.client.headers["Authorization"] = "Bearer " + r.json()["token"]
                    _counts["signed_in"] += 1
                    return
                _counts["sign_in_retries"] += 1
                time.sleep(2.0)
            self.stop()                           # gave up: this user does nothing more
        finally:
            _counts["started"] += 1
            if _counts["started"] == N_USERS:     # every user has signed in (or given up): steady state
                _window["steady"] = time.time()

    def page(self, url: str, name: str):
        return self.client.get(url, name="page: " + name)

    def post(self, url: str, name: str, expect: int, done: str, refused: str, **kw):
        """POST and count the outcome; returns the parsed JSON answer, or None (counted as a failure) when the
        status is not ``expect``."""
        with self.client.post(url, name=f"api: POST {name}", catch_response=True, **kw) as r:
            if r.status_code != expect:
                _counts[refused] += 1
                r.failure(f"{name} refused: {r.status_code} {r.text[:200]}")
                return None
            _counts[done] += 1
            return r.json()

    def api(self, method: str, url: str, name: str, **kw):
        return self.client.request(method, url, name=f"api: {method} {name}", **kw)


class Technician(LabUser):
    weight = 3
    role = "technician"
    wait_time = between(1, 3)

    def on_start(self):
        super().on_start()
        # paced uploads: the first at a random point of the interval, so the technicians do not start together
        self.next_upload = time.time() + random.uniform(0, UPLOAD_INTERVAL_S)

    @task
    def upload_and_follow(self):
        if UPLOAD_INTERVAL_S and time.time() < self.next_upload:
            self.browse()
            return
        self.next_upload = time.time() + UPLOAD_INTERVAL_S
        name = f"{self.username} plate {int(time.time() * 1000)}"
        answer = self.post("/api/batches", "batches (384-well upload)", 201, "uploads_accepted", "uploads_refused",
                           data={"assay_id": str(ASSAY_ID), "name": name},
                           files={"run_file": (RUN_PATH.name, RUN_BYTES, "application/octet-stream")})
        if answer is None:
            return
        batch_id = answer["id"]
        self.page(f"/batches/{batch_id}", "/batches/{id}")
        t0 = time.time()
        while time.time() - t0 < POLL_LIMIT_S:
            time.sleep(POLL_S)        # gevent-patched: yields to the other users
            s = self.api("GET", f"/batches/{batch_id}/status", "/batches/{id}/status (poll)")
            if s.ok and s.json()["status"] not in ("queued", "running"):
                break
        else:
            return
        _counts["plates_seen_done"] += 1
        self.look_at(batch_id)
        self.wait()
        self.page("/", "/ (batch list)")

    def look_at(self, batch_id: int):
        """A batch's page, its detail, then one of its samples."""
        self.page(f"/batches/{batch_id}", "/batches/{id}")
        self.wait()
        detail = self.api("GET", f"/api/batches/{batch_id}", "/api/batches/{id}")
        samples = (detail.json().get("result") or {}).get("samples", []) if detail.ok else []
        if samples:
            self.wait()
            self.page(f"/batches/{batch_id}/sample?id={quote(str(random.choice(samples)['sample']))}",
                      "/batches/{id}/sample")

    def browse(self):
        """Between paced uploads: the batch list, then a recent batch and one of its samples."""
        self.page("/", "/ (batch list)")
        listing = self.api("GET", "/api/batches?limit=20", "/api/batches")
        done = [b["id"] for b in listing.json() if b["version"]] if listing.ok else []
        if done:
            self.wait()
            self.look_at(random.choice(done))


class Reviewer(LabUser):
    weight = 2
    role = "reviewer"
    wait_time = between(1, 3)

    @task
    def review_and_sign(self):
        listing = self.api("GET", "/api/batches?limit=100", "/api/batches")
        self.page("/", "/ (batch list)")
        if not listing.ok:
            return
        rows = listing.json()
        todo = [b["id"] for b in rows if b["status"] == "analysed" and b["id"] not in _claimed]
        if not todo:
            _counts["reviewer_idle"] += 1
            done = [b["id"] for b in rows if b["version"]]
            if done:
                self.wait()
                self.page(f"/batches/{random.choice(done)}", "/batches/{id}")
            return
        batch_id = min(todo)                 # oldest first
        _claimed.add(batch_id)
        self.wait()
        self.page(f"/batches/{batch_id}", "/batches/{id}")
        detail = self.api("GET", f"/api/batches/{batch_id}", "/api/batches/{id}")
        if not detail.ok:
            return
        d = detail.json()
        samples = d["result"]["samples"]
        for s in random.sample(samples, min(2, len(samples))):
            self.wait()
            self.page(f"/batches/{batch_id}/sample?id={quote(str(s['sample']))}", "/batches/{id}/sample")
        version = d["version"]
        held = [s["sample"] for s in samples if s.get("status") == "review"]
        self.wait()
        if held:
            answer = self.post(f"/api/batches/{batch_id}/corrections", "corrections (accept)", 200, "corrections",
                               "review_conflicts", json={"changes": [{"sample": s, "accept": True} for s in held],
                                                         "reason": "curves checked; flagged baselines acceptable"})
            if answer is None:
                return
            version = answer["version"]
        if self.post(f"/api/batches/{batch_id}/sign", "sign", 200, "signed", "review_conflicts",
                     json={"version": version}) is None:
            return
        self.page(f"/batches/{batch_id}", "/batches/{id}")
