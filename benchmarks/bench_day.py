#!/usr/bin/env python3
"""Load benchmark of the lab's whole day in `oligolab serve`: 800 specimens end to end (accessioning, worklists,
uploads, review, release, delivery to the clinic) by 50 users, on SQLite and PostgreSQL.

For each database the real service runs as its own process on loopback (`oligolab serve --demo --no-watch`), the
clinic's systems as a real MLLP listener and a real FHIR HTTP receiver in this process (each message parsed and
validated: hl7apy, fhir.resources), configured as the lab's endpoints; 50 users get their own accounts
(receptionists, technicians and reviewers 1:2:2) and locust drives them headless (benchmarks/locustfile_day.py):
receptionists import the day's lists of specimens (CSV), technicians make a 384-well worklist whenever a plate's
worth waits and upload the run laid out by its plate map (real curves of the shipped LightCycler 480 run),
reviewers accept, sign and release; the service pushes every released result as HL7 v2 and FHIR. The run ends
when the day's specimens are all released (or at --run-time); the deliveries left are then given a bounded time.

Printed per database: page and API latency (p50/p99, steady state, every request timed), per endpoint; the day's
counts (accessioned, on worklists, measured, released, retests, HL7 messages and FHIR bundles received and
valid); the time from the first list to the last release and the implied specimens a day against the 800 a
day of a regional laboratory; CPU of the service and of the load generator and the machine's load (shared).

Usage: python benchmarks/bench_day.py [--users 50] [--specimens 800] [--run-time 600] [--backends sqlite,postgresql]
       python benchmarks/bench_day.py --quick        # 10 users, 250 specimens, SQLite (smoke run)
Needs locust: pip install -e '.[bench]'. The helpers (server start, CPU from /proc, PostgreSQL set-up) are
benchmarks/bench_serve.py's.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))

from bench_serve import (PG_URL, Sampler, call, children_cpu, code_version, cpu_seconds, drop_postgres,  # noqa: E402
                         free_port, fresh_postgres, oligolab_command, pct)
from day_support import FhirReceiver, MllpListener  # noqa: E402

WORK = ROOT / "benchmarks" / "_work"
LOCUSTFILE = ROOT / "benchmarks" / "locustfile_day.py"
PASSWORD = "bench-day-password-2211"
TARGET_PER_DAY = 800
PAGE_P99_TARGET_MS = 1000.0


def form(base: str, path: str, token: str, fields: dict) -> str:
    """POST a page form (bearer token: no CSRF token needed); the redirect target."""
    data = urllib.parse.urlencode(fields).encode()
    req = urllib.request.Request(base + path, data=data, method="POST",
                                 headers={"Authorization": "Bearer " + token,
                                          "Content-Type": "application/x-www-form-urlencoded"})

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a, **kw):
            return None

    try:
        urllib.request.build_opener(NoRedirect).open(req, timeout=60)
    except urllib.error.HTTPError as exc:
        where = exc.headers.get("location", "")
        assert exc.code == 303 and "error=" not in where, (path, exc.code, where)
        return where
    raise AssertionError(f"{path}: no redirect")


def start(backend: str, db_url: str, tmp: Path, args) -> tuple[subprocess.Popen, str, object]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(WORK / f"day_{backend}_server.log", "w")
    server = subprocess.Popen(oligolab_command() + ["serve", "--db", db_url, "--demo", "--no-watch", "--host",
                                                    "127.0.0.1", "--port", str(port), "--web-processes",
                                                    str(args.web_processes)],
                              stdout=log, stderr=subprocess.STDOUT, cwd=tmp)
    t0 = time.time()
    while True:
        if server.poll() is not None:
            raise SystemExit(f"{backend}: the service exited; see {log.name}")
        try:
            if call(base, "GET", "/api/health", timeout=2)[0] == 200:
                return server, base, log
        except OSError:
            pass
        if time.time() - t0 > 120:
            raise SystemExit(f"{backend}: the service did not answer within 120 s")
        time.sleep(0.3)


def set_up(base: str, args, listener: MllpListener, receiver: FhirReceiver) -> tuple[dict, int, str]:
    """Accounts for the users, the lab's zone and endpoints; returns (accounts, assay id, admin token)."""
    status, got = call(base, "POST", "/api/login", body={"username": "admin", "password": "oligolab-demo"})
    assert status == 200, got
    admin = got["token"]
    assay = next(a for a in call(base, "GET", "/api/assays", admin)[1] if a["ruleset"] == "cdc-2019-ncov")
    form(base, "/settings/lab", admin, {"timezone": "Europe/Moscow", "language": "en", "header": "bench"})
    for kind, url in (("mllp", listener.url), ("fhir", receiver.url)):
        form(base, "/settings/endpoints", admin, {"name": f"clinic {kind}", "kind": kind, "url": url})
    n_rec = max(1, args.users // 5)
    n_tech = max(1, (args.users - n_rec) // 2)
    n_rev = max(1, args.users - n_rec - n_tech)
    accounts: dict[str, list] = {"receptionist": [], "technician": [], "reviewer": []}
    for role, n, service_role in (("receptionist", n_rec, "technician"), ("technician", n_tech, "technician"),
                                  ("reviewer", n_rev, "reviewer")):
        for i in range(1, n + 1):
            name = f"day-{role[:3]}{i:02d}"
            status, got = call(base, "POST", "/api/users", admin, {"username": name, "password": PASSWORD,
                                                                   "role": service_role, "full_name": name})
            assert status == 201, got
            accounts[role].append([name, PASSWORD])
    return accounts, assay["id"], admin


def bench_backend(backend: str, args) -> dict | None:
    tmp = Path(tempfile.mkdtemp(prefix=f"oligolab-bench-day-{backend}-"))
    db_url = f"sqlite:///{tmp / 'lab.db'}" if backend == "sqlite" else args.pg_url
    if backend == "postgresql" and (why := fresh_postgres(db_url)):
        print(f"\n== {backend}: skipped ({why})")
        return None
    listener, receiver = MllpListener(), FhirReceiver()
    server, base, log = start(backend, db_url, tmp, args)
    try:
        return drive(backend, db_url, base, server, listener, receiver, tmp, args)
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
        listener.close()
        receiver.close()
        shutil.rmtree(tmp, ignore_errors=True)
        if backend == "postgresql":
            try:
                drop_postgres(db_url)
            except Exception as exc:
                print(f"  (could not drop the benchmark database: {exc})")


def drive(backend, db_url, base, server, listener, receiver, tmp, args) -> dict:
    accounts, assay_id, admin = set_up(base, args, listener, receiver)
    acc_path, out_path = tmp / "accounts.json", tmp / "locust_out.json"
    acc_path.write_text(json.dumps(accounts))
    env = dict(os.environ, BENCH_DAY_ACCOUNTS=str(acc_path), BENCH_DAY_ASSAY=str(assay_id),
               BENCH_DAY_SPECIMENS=str(args.specimens), BENCH_DAY_LIST=str(args.list_size),
               BENCH_DAY_OUT=str(out_path), BENCH_DAY_USERS=str(args.users))
    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "-u", str(args.users), "-r",
           str(args.spawn_rate), "--run-time", f"{args.run_time}s", "--host", base, "--only-summary",
           "--loglevel", "WARNING", "--exit-code-on-error", "0", "--stop-timeout", "30"]
    print(f"\n== {backend} ({db_url.split('@')[-1]}, code {code_version()}): {args.users} users "
          f"({', '.join(f'{len(v)} {k}s' for k, v in accounts.items())}), {args.specimens} specimens in lists of "
          f"{args.list_size}, at most {args.run_time} s, service --web-processes {args.web_processes}", flush=True)
    sampler = Sampler()
    cpu0, locust0 = cpu_seconds(server.pid), children_cpu()
    sampler.start()
    t_start = time.time()
    with open(WORK / f"day_{backend}_locust.log", "w") as llog:
        proc = subprocess.Popen(cmd, env=env, stdout=llog, stderr=subprocess.STDOUT, cwd=ROOT)
        t_done = None
        while proc.poll() is None:       # stop the users once the day's results have all reached the clinic
            time.sleep(1)
            if len(listener.messages) >= args.specimens and len(receiver.bundles) >= 1:
                t_done = time.time()
                proc.terminate()         # SIGTERM: locust stops the users and writes its figures
                break
        proc.wait(timeout=args.run_time + 120)
    t_users = time.time()
    sampler.stop()
    cpu1, locust_cpu = cpu_seconds(server.pid), children_cpu() - locust0
    deadline = time.time() + args.drain_timeout          # deliveries still in the queue
    while len(listener.messages) < args.specimens and time.time() < deadline:
        time.sleep(1)
    if t_done is None and len(listener.messages) >= args.specimens:
        t_done = time.time()
    res = json.loads(out_path.read_text())
    return report(backend, res, listener, receiver, t_start, t_done, t_users, cpu1 - cpu0, locust_cpu, sampler,
                  args)


def report(backend, res, listener, receiver, t_start, t_done, t_users, server_cpu, locust_cpu, sampler,
           args) -> dict:
    window, c = res["window"], res["counts"]
    times = {k: np.asarray(v) for k, v in res["times_ms"]["steady"].items()}
    failures = res["failures"]["steady"]

    def group(prefix: str) -> np.ndarray:
        return np.concatenate([v for k, v in times.items() if k.startswith(prefix)] or [np.zeros(0)])

    pages, apis = group("page: "), group("api: ")
    steady_s = window.get("stop", t_users) - window.get("steady", window["start"])
    hl7, fhir = len(listener.messages), len(receiver.bundles)
    day_s = (t_done or time.time()) - t_start          # first list to the last result received by the clinic
    per_day = hl7 / day_s * 86400 if day_s > 0 else float("nan")
    out = {"backend": backend, "page_p50": pct(pages, 50), "page_p99": pct(pages, 99), "api_p50": pct(apis, 50),
           "api_p99": pct(apis, 99), "pages": len(pages), "apis": len(apis), "fails": sum(failures.values()),
           "released": c["released"], "retests": c["retests"], "hl7": hl7, "fhir": fhir, "day_s": day_s,
           "per_day": per_day, "ratio": per_day / TARGET_PER_DAY, "server_cpu": server_cpu,
           "locust_cpu": locust_cpu, "load_mean": float(np.mean(sampler.loads)), "load_max": max(sampler.loads)}
    print(f"steady state {steady_s:.0f} s: {len(pages):,} page and {len(apis):,} API requests, {out['fails']} failed")
    print(f"  {'endpoint':<46} {'n':>6} {'fail':>5} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name in sorted(set(times) | set(failures)):
        v = times.get(name, np.zeros(0))
        print(f"  {name:<46} {len(v):>6} {failures.get(name, 0):>5} {pct(v, 50):>8.0f} {pct(v, 99):>8.0f} "
              f"{(v.max() if len(v) else float('nan')):>8.0f}")
    print(f"pages (HTML GET): p50 {out['page_p50']:.0f} ms, p99 {out['page_p99']:.0f} ms -> p99 under 1 s: "
          f"{'yes' if out['page_p99'] < PAGE_P99_TARGET_MS else 'NO'}; API p50 {out['api_p50']:.0f} ms, p99 "
          f"{out['api_p99']:.0f} ms")
    print(f"the day: {c['specimens_sent']} specimens sent in {c['lists']} lists, {c['worklists']} worklists, "
          f"{c['runs']} runs uploaded ({c['plates_done']} seen analysed), {c['signed']} signed, "
          f"{c['released_batches']} released: {c['released']} results released, {c['retests']} sent back for a "
          f"retest; refused forms {c['refused']}")
    print(f"the clinic received {hl7} HL7 v2 ORU^R01 messages (each parsed and validated by hl7apy) and {fhir} FHIR "
          f"transaction bundles (validated by fhir.resources); {'all' if hl7 >= args.specimens else 'NOT all'} "
          f"{args.specimens} results delivered {day_s:.0f} s after the first list")
    print(f"implied: {per_day:,.0f} specimens a day end to end (24 h at this rate) vs {TARGET_PER_DAY} -> "
          f"{out['ratio']:.0f}x")
    print(f"CPU: service {server_cpu:.0f} s ({server_cpu / max(t_users - t_start, 1):.2f} cores, parent process and "
          f"its analysis processes), load generator {locust_cpu:.0f} s; load average mean {out['load_mean']:.1f}, max "
          f"{out['load_max']:.1f} on {os.cpu_count()} cores (shared machine)", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, default=50)
    ap.add_argument("--specimens", type=int, default=800, help="the day's specimens")
    ap.add_argument("--list-size", type=int, default=50, help="specimens per accessioning list")
    ap.add_argument("--run-time", type=int, default=900, help="at most this many seconds of users per database")
    ap.add_argument("--spawn-rate", type=float, default=10.0)
    ap.add_argument("--web-processes", type=int, default=2)
    ap.add_argument("--drain-timeout", type=float, default=120.0, help="seconds for deliveries after the users stop")
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--pg-url", default=PG_URL.replace("oligolab_bench", "oligolab_bench_day"))
    ap.add_argument("--quick", action="store_true", help="smoke run: 10 users, 250 specimens, SQLite")
    args = ap.parse_args()
    if args.quick:
        args.users, args.specimens, args.spawn_rate, args.backends = 10, 250, 5.0, "sqlite"
    if importlib.util.find_spec("locust") is None:
        sys.exit("bench_day needs locust: pip install -e '.[bench]'")
    WORK.mkdir(parents=True, exist_ok=True)
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.machine())
    print(f"machine: {cpu}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} (shared with other "
          f"engineers' work: figures move with their load); code {code_version()}")
    results = [r for b in args.backends.split(",") if (r := bench_backend(b.strip(), args))]
    print(f"\nsummary ({args.users} users, {args.specimens} specimens):")
    print(f"  {'database':<11} {'page p50':>9} {'page p99':>9} {'API p99':>8} {'released':>9} {'HL7':>5} "
          f"{'FHIR':>5} {'day s':>6} {'per day':>8} {'vs 800':>7} {'p99<1s':>7} {'load':>5}")
    for r in results:
        print(f"  {r['backend']:<11} {r['page_p50']:>7.0f}ms {r['page_p99']:>7.0f}ms {r['api_p99']:>6.0f}ms "
              f"{r['released']:>9} {r['hl7']:>5} {r['fhir']:>5} {r['day_s']:>6.0f} {r['per_day']:>8,.0f} "
              f"{r['ratio']:>6.0f}x {'yes' if r['page_p99'] < PAGE_P99_TARGET_MS else 'NO':>7} {r['load_mean']:>5.1f}")


if __name__ == "__main__":
    main()
