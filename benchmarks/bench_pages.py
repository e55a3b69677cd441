#!/usr/bin/env python3
"""Single-request latency of every page the load benchmarks use, on a lab with a realistic history.

The history is made through the service itself (in-process app, the same calls the users of
benchmarks/locustfile_day.py make): per day, the day's specimens imported as lists of 50 (SYNTHETIC patients of
tests/day_support.py: 50 patient ids per list, so a patient comes back every list, as in bench_day), 384-well
worklists, each run uploaded as the plate map lays it out (REAL curves of the shipped LightCycler 480 run,
relabelled), analysed, its held samples accepted, signed and released; then the day's batches, specimens and
orders are moved back one day, so the lab has ``--days`` days behind it; then the next morning's specimens are
received and wait for plates. The database is kept
(benchmarks/_work/pages-<backend>.db, or a PostgreSQL database), so the same history can be timed before and
after a change (``--reuse``).

Then each page is requested ``--repeat`` times one at a time (after one warm-up request) and the median and
maximum wall time and the median CPU time of this process (the app runs in it) are printed, slowest first; pages
above ``--budget-ms`` are marked. No load: this measures each request's own cost and how it grows with history.

Usage: python benchmarks/bench_pages.py [--days 5] [--specimens 800] [--repeat 10] [--backend sqlite|postgresql]
       python benchmarks/bench_pages.py --reuse          # time again on the history already built
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from day_support import day_csv, day_run_csv  # noqa: E402
from serve_support import PG_ADMIN, drain, make_app, token  # noqa: E402

WORK = ROOT / "benchmarks" / "_work"
LIST = 50
PG_NAME = "oligolab_bench_pages"


def _form(client, path: str, headers: dict, **kw) -> str:
    r = client.post(path, headers=headers, follow_redirects=False, **kw)
    where = r.headers.get("location", "")
    assert r.status_code == 303 and "error=" not in where, (path, r.status_code, where)
    return where


def _waiting(client, headers) -> int:
    m = re.search(r"(\d+) waiting|ожида\w* (\d+)", client.get("/worklists", headers=headers).text)
    return int(m.group(1) or m.group(2)) if m else 0


def one_day(client, app, day: int, specimens: int, h: dict) -> list[int]:
    """A day's work through the service; returns the batch ids."""
    for k in range(0, specimens, LIST):
        n = min(LIST, specimens - k)
        _form(client, "/specimens/import", h["tech"], data={"assay_id": "1"},
              files={"file": (f"d{day}-{k}.csv", day_csv(n, prefix=f"H{day:02d}{k // LIST:02d}"), "text/csv")})
    batches = []
    while _waiting(client, h["tech"]):
        wl = _form(client, "/worklists", h["tech"], data={"assay_id": "1", "plate": "384",
                                                           "reagent_lot": "LOT-2211"}).rsplit("/", 1)[1]
        plate_map = client.get(f"/worklists/{wl}/platemap.csv", headers=h["tech"]).text
        run = day_run_csv(plate_map, name=f"worklist {wl}", positives={f"H{day:02d}00-0003"})
        batch = int(_form(client, f"/worklists/{wl}/run", h["tech"],
                          files={"run_file": (f"wl-{wl}.rdml", run)}).rsplit("/", 1)[1])
        drain(app)
        d = client.get(f"/api/batches/{batch}", headers=h["rev"]).json()
        version = d["version"]
        held = [s["sample"] for s in d["result"]["samples"] if s.get("status") == "review"]
        if held:
            r = client.post(f"/api/batches/{batch}/corrections", headers=h["rev"], json={
                "changes": [{"sample": s, "accept": True} for s in held], "reason": "curves checked"})
            version = r.json()["version"]
        assert client.post(f"/api/batches/{batch}/sign", headers=h["rev"], json={"version": version}).status_code == 200
        _form(client, f"/release/{batch}", h["rev"], data={"qc_reason": "bench history"})
        batches.append(batch)
    return batches


def move_back(app, days: int) -> None:
    """Every batch, worklist, specimen, order and QC point made so far is moved ``days`` back in time (result
    versions and the audit trail are append-only and keep their times)."""
    from oligolab.service.db import Batch
    from oligolab.service.day_db import Order, QcPoints, Specimen, Worklist

    shift = dt.timedelta(days=days)
    with app.state.factory() as db:
        for model, cols in ((Batch, ("created_at",)), (Worklist, ("created_at",)),
                            (Specimen, ("received_at", "collected_at")), (Order, ("created_at", "released_at")),
                            (QcPoints, ("at",))):
            for row in db.query(model):
                for col in cols:
                    if getattr(row, col) is not None:
                        setattr(row, col, getattr(row, col) - shift)
        db.commit()


def build(client, app, args, h) -> dict:
    t0 = time.time()
    for day in range(args.days):
        if day:
            move_back(app, 1)
        ids = one_day(client, app, day, args.specimens, h)
        print(f"day {day + 1}/{args.days}: {len(ids)} plates ({time.time() - t0:.0f} s)", flush=True)
    return {}


def morning(client, specimens: int, h: dict) -> None:
    """The next morning's specimens received and waiting for plates (the labels and worklist pages show them)."""
    if _waiting(client, h["tech"]):
        return
    for k in range(0, specimens, LIST):
        _form(client, "/specimens/import", h["tech"], data={"assay_id": "1"},
              files={"file": (f"m-{k}.csv", day_csv(min(LIST, specimens - k), prefix=f"M{k // LIST:03d}"), "text/csv")})
    print(f"{_waiting(client, h['tech'])} specimens waiting for plates", flush=True)


def targets(client, h) -> dict[str, str]:
    """Page name -> URL, picked from the history (the newest batch, a patient with many results, ...)."""
    batches = client.get("/api/batches?limit=100", headers=h["rev"]).json()
    newest = max(b["id"] for b in batches)
    detail = client.get(f"/api/batches/{newest}", headers=h["rev"]).json()
    sample = detail["result"]["samples"][0]["sample"]
    found = client.get("/specimens?q=H0000-0001", headers=h["tech"]).text
    patient = re.search(r'/patients/(\d+)/report', found).group(1)
    wl = re.findall(r'href="/worklists/(\d+)"', client.get("/worklists", headers=h["tech"]).text)
    today = dt.date.today().isoformat()
    return {
        "/ (batch list)": "/", "/batches/{id}": f"/batches/{newest}",
        "/batches/{id}/sample": f"/batches/{newest}/sample?id={sample}",
        "/batches/{id}/status": f"/batches/{newest}/status", "/api/batches?limit=100": "/api/batches?limit=100",
        "/api/batches/{id}": f"/api/batches/{newest}", "/specimens": "/specimens",
        "/specimens?q= (search)": "/specimens?q=H0000-0001", "/specimens?q= (patient)": "/specimens?q=P100001",
        "/specimen?id=": "/specimen?id=H0000-0001", "/labels (waiting)": "/labels",
        "/worklists": "/worklists", "/worklists/{id}": f"/worklists/{wl[0]}" if wl else "/worklists",
        "/worklists/{id}/platemap.csv": f"/worklists/{wl[0]}/platemap.csv" if wl else "/worklists",
        "/release": "/release", "/qc": "/qc", "/summary": "/summary", f"/summary?day= (today)": f"/summary?day={today}",
        "/patients/{id}/report": f"/patients/{patient}/report", "/audit": "/audit",
    }


def time_pages(client, h, repeat: int, budget_ms: float) -> list[dict]:
    rows = []
    for name, url in targets(client, h).items():
        headers = h["rev"]
        r = client.get(url, headers=headers)
        assert r.status_code == 200, (url, r.status_code, r.text[:300])
        wall, cpu = [], []
        for _ in range(repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            r = client.get(url, headers=headers)
            wall.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)
            assert r.status_code == 200, (url, r.status_code)
        rows.append({"page": name, "url": url, "median_ms": statistics.median(wall), "max_ms": max(wall),
                     "cpu_ms": statistics.median(cpu), "bytes": len(r.content)})
    rows.sort(key=lambda r: -r["median_ms"])
    print(f"\n{'page':32} {'median ms':>10} {'max ms':>8} {'CPU ms':>8} {'KiB':>6}")
    for r in rows:
        mark = "  <-- over budget" if r["median_ms"] > budget_ms else ""
        print(f"{r['page']:32} {r['median_ms']:10.1f} {r['max_ms']:8.1f} {r['cpu_ms']:8.1f} "
              f"{r['bytes'] / 1024:6.0f}{mark}")
    return rows


def database(args) -> str:
    WORK.mkdir(parents=True, exist_ok=True)
    if args.backend == "sqlite":
        path = WORK / f"pages-sqlite-{args.days}d-{args.specimens}.db"
        if not args.reuse and path.exists():
            path.unlink()
        return f"sqlite:///{path}"
    import psycopg

    name = f"{PG_NAME}_{args.days}d_{args.specimens}"
    admin = PG_ADMIN.replace("+psycopg", "")
    if not args.reuse:
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            c.execute(f'CREATE DATABASE "{name}"')
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--days", type=int, default=5)
    ap.add_argument("--specimens", type=int, default=800, help="specimens a day")
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--budget-ms", type=float, default=50.0)
    ap.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    ap.add_argument("--reuse", action="store_true", help="time the history built by an earlier run")
    ap.add_argument("--json", type=Path, help="write the figures here too")
    args = ap.parse_args()

    from fastapi.testclient import TestClient

    url = database(args)
    app = make_app(url)
    with TestClient(app) as client:
        h = {"tech": token(client, "tech"), "rev": token(client, "reviewer"), "admin": token(client, "admin")}
        if not args.reuse:
            _form(client, "/settings/lab", h["admin"], data={"timezone": "Europe/Moscow", "language": "ru",
                                                             "header": "bench"})
            build(client, app, args, h)
        morning(client, args.specimens, h)
        rows = time_pages(client, h, args.repeat, args.budget_ms)
    if args.json:
        args.json.write_text(json.dumps({"days": args.days, "specimens": args.specimens, "backend": args.backend,
                                         "pages": rows}, indent=1))


if __name__ == "__main__":
    main()
