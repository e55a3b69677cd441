#!/usr/bin/env python3
"""Load benchmark of `oligolab serve`: 50 lab users uploading and reviewing 384-well plates, SQLite and PostgreSQL.

For each database the real service is started as its own process on loopback (`oligolab serve --demo --no-watch
--workers 1` on 127.0.0.1 and a free port), 50 users get their own accounts (technicians and reviewers, 3:2,
created through POST /api/users), and locust drives them headless for a bounded time
(benchmarks/locustfile_serve.py): technicians upload the 384-well CDC plate of bench_lab.py (real curves, layout
inside the RDML, so no plate map), follow it until it is analysed and look at its pages; reviewers list batches,
open batch and sample pages, accept the samples held for review (a new analysed version) and sign. Think time
1-3 s between steps. By default a technician uploads the next plate as soon as the last one is analysed, which
keeps the analysis queue full (the capacity); --plates-per-hour paces the uploads instead (technicians browse in
between), and --preload starts from a database holding earlier plates (uploaded, analysed, signed), as a lab's
batch list does after its first days. Afterwards the queue is left to drain for a bounded time and the batches
are counted through the API.

Printed per database: the ramp-up apart (until the last of the users has signed in: sign-ins are Argon2 hashes),
then for the steady state the requests, p50/p99 of HTML pages and of API calls (exact, from every request) and
per-endpoint figures; uploads accepted, plates analysed and signed, the analysis rate while the users worked
(plates per hour, from the service's own upload and result times) and the implied plates a day against the
1,000 a day target, whether page p99 is under 1 s, each request's latency alone after the run (the service
time), the service's CPU use and the machine's load average (the load generator runs on the same machine).

Usage: python benchmarks/bench_serve.py [--users 50] [--run-time 60] [--backends sqlite,postgresql]
                                        [--plates-per-hour R] [--preload N]
       python benchmarks/bench_serve.py --quick          # 10 users, 15 s, SQLite only (smoke run)
Needs locust: pip install -e '.[bench]'. PostgreSQL: a server on --pg-url (trust auth); the database named in
the URL is dropped and created afresh, and dropped again at the end unless --keep-db.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib.util
import json
import os
import platform
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(BENCH))

from bench_lab import WORK, build_384_run  # noqa: E402

LC480_RUN = ROOT / "data" / "qpcr" / "Edward_qPCR_Nrd1_calibration_2019-02-02_amplification.txt"


def serve_plate_384() -> tuple[Path, str]:
    """The benchmark's 384-well CDC-style plate: bench_lab's (real curves of eva_green_a/b), or, when that
    builder fails (it picks its negative wells by the amplification call), the same layout (NTC, nCoVPC, HSC,
    125 samples x N1/N2/RP) over the 384 real curves of the shipped LightCycler 480 run, controls placed by its
    own calls. Returns the path and which plate it is."""
    try:
        return build_384_run(), "bench_lab 384-well plate (eva_green_a/b curves)"
    except AssertionError:
        pass
    import pandas as pd

    from oligolab.lab.analysis import load_runs
    from oligolab.lab.curves import analyze_curves, prepare
    from oligolab.lab.formats.rdml import write_rdml
    from oligolab.lab.run import make_run, well_from_position

    src = load_runs(LC480_RUN)[0]
    amplified = analyze_curves(prepare(src)).table["amplified"].to_numpy().astype(bool)
    neg, pos = list(np.flatnonzero(~amplified)), list(np.flatnonzero(amplified))
    controls = [(neg[0], "NTC", "ntc", "N1"), (neg[1], "NTC", "ntc", "N2"), (neg[2], "NTC", "ntc", "RP"),
                (pos[0], "nCoVPC", "pc", "N1"), (pos[1], "nCoVPC", "pc", "N2"), (pos[2], "nCoVPC", "pc", "RP"),
                (neg[3], "HSC", "ec", "N1"), (neg[4], "HSC", "ec", "N2"), (pos[3], "HSC", "ec", "RP")]
    used = {r[0] for r in controls}
    rest = [i for i in range(len(src.layout)) if i not in used][:384 - len(controls)]
    rows = controls + [(i, f"S-{k // 3 + 1:03d}", "sample", ("N1", "N2", "RP")[k % 3]) for k, i in enumerate(rest)]
    layout = pd.DataFrame({"well": [well_from_position(i + 1, 24) for i in range(len(rows))],
                           "sample": [r[1] for r in rows], "role": [r[2] for r in rows],
                           "target": [r[3] for r in rows], "dye": "FAM"})
    run = make_run("CDC plate 384 (real LC480 curves)", "bench", src.fluor[[r[0] for r in rows]], src.cycles, layout,
                   instrument="LightCycler 480 (curves of the shipped demo run)", plate_rows=16, plate_columns=24)
    WORK.mkdir(parents=True, exist_ok=True)
    return write_rdml(run, WORK / "cdc_plate_384_lc480.rdml"), "384-well plate over the LC480 demo run's curves"

LOCUSTFILE = BENCH / "locustfile_serve.py"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/oligolab_bench"
PASSWORD = "bench-serve-password"
TARGET_PER_DAY = 1000
PAGE_P99_TARGET_MS = 1000.0
TICK = os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------------------------------------ helpers

def call(base: str, method: str, path: str, token: str | None = None, body: dict | None = None,
         timeout: float = 60.0):
    """One JSON request to the service (stdlib only); returns (status, parsed body)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (all its threads) and its live descendants (the service's
    analysis processes), from /proc."""
    stats = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(d.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK)
    if pid not in stats:
        return float("nan")
    tree, total = {pid}, 0.0
    changed = True
    while changed:
        more = {p for p, (ppid, _) in stats.items() if ppid in tree and p not in tree}
        tree |= more
        changed = bool(more)
    for p in tree:
        total += stats[p][1]
    return total


def children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def when(iso: str) -> float:
    t = _dt.datetime.fromisoformat(iso)
    return (t if t.tzinfo else t.replace(tzinfo=_dt.timezone.utc)).timestamp()


def pct(values, q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


def fresh_postgres(url: str) -> str | None:
    """Drop and create the database named in ``url``; None when done, else why not."""
    try:
        import psycopg
        from sqlalchemy.engine import make_url
    except ImportError as exc:
        return f"missing {exc.name}"
    u = make_url(url)
    name = u.database
    admin = u.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return None


def drop_postgres(url: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    u = make_url(url)
    admin = u.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{u.database}" WITH (FORCE)')


def oligolab_command() -> list[str]:
    exe = Path(sys.executable).parent / "oligolab"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("oligolab")
    return [found] if found else [sys.executable, "-c", "from oligolab.cli import main; main()"]


SOLO_REPEAT = 5
RUN_BYTES: list[bytes] = []     # the plate, for the one-request timings


def solo_timings(base: str, token: str, batches: list[dict]) -> dict[str, float]:
    """Latency of each kind of request with no other load (same database as the run): the service time."""
    b = next((b for b in batches if b["version"]), None)
    if b is None:
        return {}
    sample = call(base, "GET", f"/api/batches/{b['id']}", token)[1]["result"]["samples"][0]["sample"]
    urls = {"page /": "/", "page /batches/{id}": f"/batches/{b['id']}",
            "page sample": f"/batches/{b['id']}/sample?id={urllib.parse.quote(str(sample))}",
            "api batches": "/api/batches?limit=100", "api batch": f"/api/batches/{b['id']}",
            "status poll": f"/batches/{b['id']}/status"}
    out = {}
    for name, url in urls.items():
        ms = []
        for _ in range(SOLO_REPEAT):
            req = urllib.request.Request(base + url, headers={"Authorization": "Bearer " + token})
            t = time.perf_counter()
            with urllib.request.urlopen(req, timeout=120) as r:
                r.read()
            ms.append((time.perf_counter() - t) * 1000)
        out[name] = float(np.median(ms))

    def timed(*a, **kw) -> float:
        t = time.perf_counter()
        status, _ = call(*a, **kw)
        assert status in (200, 201), (a, status)
        return (time.perf_counter() - t) * 1000

    out["api login"] = float(np.median([timed(base, "POST", "/api/login", body={"username": "bench-tech01",
                                                                              "password": PASSWORD})
                                        for _ in range(SOLO_REPEAT)]))
    todo = next((b for b in batches if b["status"] == "analysed"), None)
    if todo is not None:
        d = call(base, "GET", f"/api/batches/{todo['id']}", token)[1]
        held = [s["sample"] for s in d["result"]["samples"] if s.get("status") == "review"]
        if held:
            out["api correction (1x)"] = timed(base, "POST", f"/api/batches/{todo['id']}/corrections", token,
                                               {"changes": [{"sample": s, "accept": True} for s in held],
                                                "reason": "solo timing"})
    # an upload last: it queues one more plate, after everything was counted
    t = time.perf_counter()
    upload(base, token, batches[0]["assay_id"], "solo timing")
    out["api upload (1x)"] = (time.perf_counter() - t) * 1000
    return out


def upload(base: str, token: str, assay_id: int, name: str) -> int:
    """POST /api/batches with the 384-well plate (multipart, stdlib only); returns the batch id."""
    boundary = "benchserveboundary"
    fields = "".join(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
                     for k, v in (("assay_id", assay_id), ("name", name)))
    body = (fields + f"--{boundary}\r\nContent-Disposition: form-data; name=\"run_file\"; "
            "filename=\"plate.rdml\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode() \
        + RUN_BYTES[0] + f"\r\n--{boundary}--\r\n".encode()
    req = urllib.request.Request(base + "/api/batches", data=body, method="POST",
                                 headers={"Authorization": "Bearer " + token,
                                          "Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.loads(r.read())["id"]


def wait_queue(base: str, limit_s: float) -> tuple[int, float]:
    """Wait (at most ``limit_s``) until no batch is queued or running; (batches left, seconds waited)."""
    t0 = time.time()
    queue = call(base, "GET", "/api/health")[1]["queue"]
    while queue and time.time() - t0 < limit_s:
        time.sleep(1.0)
        queue = call(base, "GET", "/api/health")[1]["queue"]
    return queue, time.time() - t0


def code_version() -> str:
    """The commit the service runs from, and whether src/ has uncommitted changes (the tree is shared)."""
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "src"], capture_output=True,
                               text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (head or "unknown") + (" + uncommitted changes in src/" if dirty else "")


class Sampler(threading.Thread):
    """Load average every few seconds while the users run (the machine is shared)."""

    def __init__(self, every: float = 2.0):
        super().__init__(daemon=True)
        self.every, self.loads, self._halt = every, [], threading.Event()

    def run(self):
        while not self._halt.is_set():
            self.loads.append(os.getloadavg()[0])
            self._halt.wait(self.every)

    def stop(self):
        self._halt.set()
        self.join()
        self.loads.append(os.getloadavg()[0])


# ------------------------------------------------------------------------------------------- one backend

def bench_backend(backend: str, db_url: str, run_path: Path, args) -> dict | None:
    tmp = Path(tempfile.mkdtemp(prefix=f"oligolab-bench-serve-{backend}-"))
    if backend == "sqlite":
        db_url = f"sqlite:///{tmp / 'lab.db'}"
    else:
        why = fresh_postgres(db_url)
        if why:
            print(f"\n== {backend}: skipped, cannot create the database on {db_url.split('@')[-1]} ({why})")
            return None
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = WORK / f"serve_{backend}_server.log"
    server_log = open(log_path, "w")
    extra = ["--analysis-processes", str(args.analysis_processes)] if args.analysis_processes is not None else []
    extra += ["--web-processes", str(args.web_processes)]
    server = subprocess.Popen(oligolab_command() + ["serve", "--db", db_url, "--demo", "--no-watch",
                                                    "--host", "127.0.0.1", "--port", str(port),
                                                    "--workers", str(args.workers)] + extra,
                              stdout=server_log, stderr=subprocess.STDOUT, cwd=tmp)
    try:
        return _drive(backend, db_url, base, server, run_path, tmp, args)
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        server_log.close()
        shutil.rmtree(tmp, ignore_errors=True)
        if backend == "postgresql" and not args.keep_db:
            try:
                drop_postgres(db_url)
            except Exception as exc:
                print(f"  (could not drop the benchmark database: {exc})")


def _drive(backend: str, db_url: str, base: str, server: subprocess.Popen, run_path: Path, tmp: Path, args):
    log_path = WORK / f"serve_{backend}_server.log"
    t0 = time.time()
    while True:
        if server.poll() is not None:
            raise SystemExit(f"{backend}: the service exited ({server.returncode}); see {log_path}:\n"
                             + log_path.read_text()[-2000:])
        try:
            if call(base, "GET", "/api/health", timeout=2)[0] == 200:
                break
        except OSError:
            pass
        if time.time() - t0 > 120:
            raise SystemExit(f"{backend}: the service did not answer within 120 s; see {log_path}")
        time.sleep(0.3)
    status, got = call(base, "POST", "/api/login", body={"username": "admin", "password": "oligolab-demo"})
    assert status == 200, (status, got)
    admin = got["token"]
    assays = call(base, "GET", "/api/assays", admin)[1]
    assay = next(a for a in assays if a["ruleset"] == "cdc-2019-ncov")

    # one account per locust user: technicians and reviewers in locust's 3:2 weights (with spares)
    n_tech = -(-args.users * 3 // 5)
    n_rev = args.users - n_tech
    accounts = {"technician": [], "reviewer": []}
    for role, n, stem in (("technician", n_tech, "tech"), ("reviewer", max(n_rev, 1), "rev")):
        for i in range(1, n + 1):
            name = f"bench-{stem}{i:02d}"
            status, got = call(base, "POST", "/api/users", admin,
                               {"username": name, "password": PASSWORD, "role": role, "full_name": name})
            assert status == 201, (status, got)
            accounts[role].append([name, PASSWORD])
    if args.preload:       # a lab with earlier plates: uploaded, analysed, reviewed and signed before the run
        t = time.time()
        ids = [upload(base, admin, assay["id"], f"earlier plate {i + 1}") for i in range(args.preload)]
        left, _ = wait_queue(base, args.drain_timeout)
        signed = 0
        for batch_id in ids:
            d = call(base, "GET", f"/api/batches/{batch_id}", admin)[1]
            if d["status"] != "analysed":
                continue
            held = [s["sample"] for s in d["result"]["samples"] if s.get("status") == "review"]
            version = d["version"]
            if held:
                version = call(base, "POST", f"/api/batches/{batch_id}/corrections", admin,
                               {"changes": [{"sample": s, "accept": True} for s in held],
                                "reason": "earlier plate"})[1]["version"]
            signed += call(base, "POST", f"/api/batches/{batch_id}/sign", admin, {"version": version})[0] == 200
        print(f"preloaded {args.preload} earlier plates (uploaded, analysed, accepted and signed: {signed}) in "
              f"{time.time() - t:.0f} s{f'; {left} still queued' if left else ''}", flush=True)
    per_tech_s = n_tech * 3600.0 / args.plates_per_hour if args.plates_per_hour else 0.0
    acc_path = tmp / "accounts.json"
    acc_path.write_text(json.dumps(accounts))
    out_path = tmp / "locust_out.json"

    env = dict(os.environ, BENCH_SERVE_ACCOUNTS=str(acc_path), BENCH_SERVE_RUN=str(run_path),
               BENCH_SERVE_ASSAY=str(assay["id"]), BENCH_SERVE_OUT=str(out_path),
               BENCH_SERVE_UPLOAD_INTERVAL=str(per_tech_s), BENCH_SERVE_USERS=str(args.users))
    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "-u", str(args.users),
           "-r", str(args.spawn_rate), "--run-time", f"{args.run_time}s", "--host", base,
           "--csv", str(WORK / f"serve_{backend}"), "--only-summary", "--loglevel", "WARNING",
           "--exit-code-on-error", "0"]
    pace = (f"uploads paced at {args.plates_per_hour:g} plates/hour (one per technician every {per_tech_s:.0f} s)"
            if args.plates_per_hour else "each technician uploads again as soon as the last plate is analysed")
    print(f"\n== {backend} ({db_url.split('@')[-1]}, code {code_version()}): {args.users} users "
          f"({n_tech} technicians, {n_rev} reviewers), "
          f"{args.run_time} s, service --web-processes {args.web_processes} --workers {args.workers}"
          f"{f' --analysis-processes {args.analysis_processes}' if args.analysis_processes is not None else ''} "
          f"on {base}; {pace}", flush=True)
    load_before = os.getloadavg()
    sampler = Sampler()
    server_cpu0, locust_cpu0 = cpu_seconds(server.pid), children_cpu()
    sampler.start()
    with open(WORK / f"serve_{backend}_locust.log", "w") as llog:
        rc = subprocess.run(cmd, env=env, stdout=llog, stderr=subprocess.STDOUT, cwd=ROOT,
                            timeout=args.run_time + 180).returncode
    sampler.stop()
    server_cpu1, locust_cpu = cpu_seconds(server.pid), children_cpu() - locust_cpu0
    if rc != 0 or not out_path.exists():
        raise SystemExit(f"{backend}: locust failed ({rc}); see {WORK / f'serve_{backend}_locust.log'}")
    res = json.loads(out_path.read_text())
    window = res["window"]
    run_s = window["stop"] - window["start"]

    # let the queue drain (bounded), then count through the API
    queue, drain_s = wait_queue(base, args.drain_timeout)
    server_cpu2 = cpu_seconds(server.pid)
    batches = call(base, "GET", "/api/batches?limit=1000", admin)[1]
    by_status: dict[str, int] = {}
    for b in batches:
        by_status[b["status"]] = by_status.get(b["status"], 0) + 1
    done = []           # (uploaded, first result) epoch seconds of every plate uploaded during the run
    preloaded = 0
    for b in batches:
        if b["name"].startswith("earlier plate "):
            preloaded += 1
        elif b["version"]:
            v1 = call(base, "GET", f"/api/batches/{b['id']}/versions", admin)[1][0]
            done.append((when(b["created_at"]), when(v1["created_at"])))
    done.sort(key=lambda x: x[1])

    # worker busy time: from max(upload, previous result) to each result; the rate while the users worked
    busy, prev = 0.0, None
    for up, fin in done:
        start = up if prev is None else max(up, prev)
        busy += max(fin - start, 0.0)
        prev = fin
    first_upload = max(min((up for up, _ in done), default=window["start"]), window["start"] - 1)
    in_run = [fin for _, fin in done if fin <= window["stop"]]
    load_span = window["stop"] - first_upload
    rate_run = len(in_run) / load_span * 3600 if load_span > 0 and in_run else float("nan")
    rate_busy = len(done) / busy * 3600 if busy > 0 else float("nan")
    waits = [fin - up for up, fin in done]

    solo = solo_timings(base, admin, batches)

    # latency figures: the steady state (all users started); the ramp-up (50 sign-ins at once, Argon2) apart
    if "steady" not in window:     # some user never got through on_start: count the whole run
        print("  (not every user got past signing in: the figures below cover the whole run)")
        merged_t: dict[str, list] = {}
        merged_f: dict[str, int] = {}
        for phase in ("ramp", "steady"):
            for k, v in res["times_ms"][phase].items():
                merged_t.setdefault(k, []).extend(v)
            for k, v in res["failures"][phase].items():
                merged_f[k] = merged_f.get(k, 0) + v
        res["times_ms"], res["failures"] = {"ramp": {}, "steady": merged_t}, {"ramp": {}, "steady": merged_f}
    times = {k: np.asarray(v) for k, v in res["times_ms"]["steady"].items()}
    failures = res["failures"]["steady"]

    def group(t: dict, prefix: str) -> np.ndarray:
        return np.concatenate([np.asarray(v) for k, v in t.items() if k.startswith(prefix)] or [np.zeros(0)])

    pages, apis = group(times, "page: "), group(times, "api: ")
    fails = sum(failures.values())
    n_req = len(pages) + len(apis) + fails
    steady_s = window["stop"] - window.get("steady", window["start"])
    ramp = res["times_ms"]["ramp"]
    ramp_s = window.get("steady", window["stop"]) - window["start"]
    ramp_pages, ramp_login = group(ramp, "page: "), np.asarray(ramp.get("api: POST login", []))
    n_ramp = sum(len(v) for v in ramp.values()) + sum(res["failures"]["ramp"].values())
    c = res["counts"]
    page_ok = bool(len(pages)) and pct(pages, 99) < PAGE_P99_TARGET_MS
    # the capacity: saturated, the rate while the users worked; paced, the rate while the worker was busy
    capacity = rate_busy if args.plates_per_hour else rate_run
    per_day = capacity * 24
    out = {"backend": backend, "requests": n_req, "failures": fails, "rps": n_req / steady_s, "run_s": run_s,
           "page_n": len(pages), "page_p50": pct(pages, 50), "page_p99": pct(pages, 99),
           "api_n": len(apis), "api_p50": pct(apis, 50), "api_p99": pct(apis, 99),
           "uploads": c["uploads_accepted"], "stored": len(batches) - preloaded, "status": by_status,
           "analysed": len(done), "signed": c["signed"], "corrections": c["corrections"],
           "rate_run": rate_run, "rate_busy": rate_busy, "capacity": capacity, "per_day": per_day,
           "ratio": per_day / TARGET_PER_DAY,
           "page_ok": page_ok, "queue_left": queue, "drain_s": drain_s,
           "server_cpu_run": server_cpu1 - server_cpu0, "server_cpu_drain": server_cpu2 - server_cpu1,
           "locust_cpu": locust_cpu, "load_before": load_before[0], "load_max": max(sampler.loads),
           "load_mean": float(np.mean(sampler.loads)), "solo": solo}

    print(f"ramp-up ({ramp_s:.0f} s, until the last user signed in): {n_ramp} requests; sign-ins p50 "
          f"{pct(ramp_login, 50):.0f} ms, max {max(ramp_login, default=float('nan')):.0f} ms; pages p99 "
          f"{pct(ramp_pages, 99):.0f} ms (not counted below); {c['signed_in']} of {args.users} users signed in"
          + (f" ({retries} failed sign-ins retried)" if (retries := c["sign_in_retries"]) else ""))
    print(f"steady state ({steady_s:.0f} s, all {args.users} users): {n_req:,} requests ({out['rps']:.1f}/s), "
          f"{fails} failed")
    print(f"  {'endpoint':<44} {'n':>6} {'fail':>5} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name in sorted(set(times) | set(failures)):
        v = times.get(name, np.zeros(0))
        print(f"  {name:<44} {len(v):>6} {failures.get(name, 0):>5} {pct(v, 50):>8.0f} {pct(v, 99):>8.0f} "
              f"{(v.max() if len(v) else float('nan')):>8.0f}")
    print(f"pages (HTML GET, steady state): {len(pages):,} requests, p50 {out['page_p50']:.0f} ms, "
          f"p99 {out['page_p99']:.0f} ms "
          f"-> p99 under 1 s: {'yes' if page_ok else 'NO'}")
    print(f"API (steady state): {len(apis):,} requests, p50 {out['api_p50']:.0f} ms, p99 {out['api_p99']:.0f} ms")
    in_flight = out["stored"] - c["uploads_accepted"] - c["uploads_refused"]
    print(f"uploads accepted: {c['uploads_accepted']} (refused {c['uploads_refused']}); batches stored {out['stored']}"
          f"{f' (+{preloaded} preloaded)' if preloaded else ''}"
          f"{f' ({in_flight} uploads in flight when locust stopped)' if in_flight > 0 else ''}; "
          f"at the end: {', '.join(f'{k} {v}' for k, v in sorted(by_status.items()))}; "
          f"reviewer corrections {c['corrections']}, signatures {c['signed']}, conflicts {c['review_conflicts']}")
    print(f"plates analysed (uploaded in the run): {len(done)} ({len(in_run)} while the users worked); queue "
          f"{'drained' if not queue else f'NOT drained ({queue} left)'} {drain_s:.0f} s after the run; "
          f"upload to result p50 {pct(waits, 50):.1f} s, max {max(waits, default=float('nan')):.1f} s")
    print(f"analysis rate while the users worked: {rate_run:,.0f} plates/hour ({len(in_run)} in {load_span:.0f} s "
          f"from the first upload); worker busy {busy:.0f} s for {len(done)} plates = {rate_busy:,.0f} plates/hour "
          "(service timestamps: 1 s resolution)")
    if done:
        print(f"implied capacity ({'worker busy time: uploads were paced' if args.plates_per_hour else 'saturated'}):"
              f" {per_day:,.0f} plates/day (24 h), {capacity * 8:,.0f} in an 8-hour shift; target "
              f"{TARGET_PER_DAY:,}/day -> {out['ratio']:.0f}x ({'met' if out['ratio'] >= 1 else 'MISSED'})")
    else:
        print("implied capacity: n/a (no plate was uploaded and analysed in the run; pace faster or run longer)")
    print(f"one request at a time after the run ({len(batches)} batches in the database; median of "
          f"{SOLO_REPEAT}, corrections and uploads once): " + ", ".join(f"{k} {v:.0f} ms" for k, v in solo.items()))
    print(f"CPU: service (with its analysis processes) {out['server_cpu_run']:.0f} s in the {run_s:.0f} s run "
          f"({out['server_cpu_run'] / run_s:.2f} cores) + {out['server_cpu_drain']:.0f} s draining; load generator "
          f"(locust) {locust_cpu:.0f} s ({locust_cpu / run_s:.2f} cores); load average before {load_before[0]:.1f}, "
          f"during mean {out['load_mean']:.1f} / max {out['load_max']:.1f} on {os.cpu_count()} cores (this benchmark's "
          "own service, PostgreSQL and locust included)", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, default=50, help="concurrent users (3 technicians : 2 reviewers)")
    ap.add_argument("--spawn-rate", type=float, default=10.0, help="users started per second")
    ap.add_argument("--run-time", type=int, default=60, help="seconds of load per database")
    ap.add_argument("--backends", default=None,
                    help="comma-separated: sqlite, postgresql (default both; --quick: sqlite)")
    ap.add_argument("--pg-url", default=PG_URL, help="PostgreSQL database to (re)create for the run")
    ap.add_argument("--keep-db", action="store_true", help="keep the PostgreSQL database afterwards")
    ap.add_argument("--workers", type=int, default=1, help="the service's --workers (threads taking queued plates)")
    ap.add_argument("--web-processes", type=int, default=1,
                    help="the service's --web-processes (processes answering requests; the service CPU figure "
                         "then counts only the parent)")
    ap.add_argument("--analysis-processes", type=int, default=None,
                    help="the service's --analysis-processes (default: the service's own default)")
    ap.add_argument("--drain-timeout", type=float, default=300.0, help="seconds to wait for the queue after a run")
    ap.add_argument("--plates-per-hour", type=float, default=0.0,
                    help="pace the uploads at this total rate (0: each technician uploads again as soon as the last "
                         "plate is analysed, which saturates the worker); between uploads technicians browse")
    ap.add_argument("--preload", type=int, default=0,
                    help="plates uploaded and analysed before the users start (a lab part-way through its day)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 10 users, 15 s, SQLite unless --backends")
    args = ap.parse_args()
    if args.quick:
        args.users, args.spawn_rate, args.run_time = 10, 5.0, 15
    args.backends = args.backends or ("sqlite" if args.quick else "sqlite,postgresql")
    if importlib.util.find_spec("locust") is None:
        sys.exit("bench_serve needs locust: pip install -e '.[bench]'  (or pip install 'locust>=2.24')")

    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.machine())
    print(f"machine: {cpu}, {os.cpu_count()} cores, {platform.platform()}, python {platform.python_version()}; "
          f"load average {os.getloadavg()[0]:.1f} (shared machine; service and load generator share the cores)")
    print(f"code: {code_version()}")
    run_path, plate_kind = serve_plate_384()
    print(f"plate: {plate_kind}")
    RUN_BYTES.append(run_path.read_bytes())
    print(f"plate: {run_path.name} ({run_path.stat().st_size / 1024:.0f} KiB RDML, 384 wells, layout inside)")
    results = []
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        if backend not in ("sqlite", "postgresql"):
            sys.exit(f"unknown backend {backend!r}: use sqlite and/or postgresql")
        r = bench_backend(backend, args.pg_url, run_path, args)
        if r:
            results.append(r)
    if not results:
        sys.exit("no backend ran")
    print(f"\nsummary ({args.users} users, {args.run_time} s each, "
          f"{f'uploads paced at {args.plates_per_hour:g}/hour' if args.plates_per_hour else 'uploads saturating'}"
          f"{f', {args.preload} plates preloaded' if args.preload else ''}):")
    print(f"  {'database':<11} {'req/s':>6} {'page p50':>9} {'page p99':>9} {'API p50':>8} {'API p99':>8} "
          f"{'uploads':>8} {'analysed':>9} {'signed':>7} {'plates/h':>9} {'per day':>8} {'vs 1,000':>9} "
          f"{'p99<1s':>7} {'load':>5}")
    for r in results:
        print(f"  {r['backend']:<11} {r['rps']:>6.1f} {r['page_p50']:>7.0f}ms {r['page_p99']:>7.0f}ms "
              f"{r['api_p50']:>6.0f}ms {r['api_p99']:>6.0f}ms {r['uploads']:>8} {r['analysed']:>9} {r['signed']:>7} "
              f"{r['capacity']:>9,.0f} {r['per_day']:>8,.0f} {r['ratio']:>8.0f}x {'yes' if r['page_ok'] else 'NO':>7} "
              f"{r['load_mean']:>5.1f}")


if __name__ == "__main__":
    main()
