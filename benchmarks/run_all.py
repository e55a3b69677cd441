#!/usr/bin/env python3
"""Run every benchmark (benchmarks/bench_*.py) one after the other, bounded, and print their figures (`make bench`).

Each benchmark runs as its own process with arguments that keep it to minutes (the quick form below); its own
output (tables, ratios against the named peer, wall and CPU time) is printed as it comes, then one summary line
per benchmark: exit status, wall and CPU time of the benchmark process and its children, and the machine's load
average before and after (the machine may be shared: say so with any figure taken from here). Benchmarks whose
optional tools are missing (locust for the service load runs, a peer's virtual environment) print why and are
counted as skipped, not failed. Nothing here asserts a time: the figures go into benchmarks/RESULTS.md by hand.

Usage: python benchmarks/run_all.py [--only check,lab] [--full] [--timeout 1800]
  --full     each benchmark with its own defaults (the runs recorded in RESULTS.md: up to hours, with the peers)
  --only     a comma-separated subset of: check, design, lab, sirna, serve, day
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent

#: benchmark -> arguments of its quick form (the one `make bench` runs)
QUICK: dict[str, list[str]] = {
    "check": ["--skip-peers", "--skip-scale"],          # the shipped work (247 oligos x 3,585 genomes), no peers
    "design": ["--skip-adapt"],                          # 500 and 3,585 genomes; ADAPT's figures from PEERS.md
    "lab": ["--runs", "50", "--repeat", "3"],            # 384-well run x3, 50 runs back to back, rdmlpython if found
    "sirna": ["--mb", "10"],                             # a 10 Mnt off-target transcriptome (100 in RESULTS.md)
    "serve": ["--quick"],                                # 10 users, 15 s, SQLite
    "day": ["--quick"],                                  # 10 users, 250 specimens, SQLite
}
#: benchmark -> Python modules it needs beyond the project's own dependencies
NEEDS = {"serve": ["locust"], "day": ["locust"]}


def children_cpu() -> float:
    """CPU seconds (user + system) used so far by this process's finished children."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def run_one(name: str, args: list[str], timeout: float) -> tuple[str, float, float, str]:
    """Run bench_<name>.py with ``args``; (status, wall s, CPU s, load before -> after)."""
    missing = [m for m in NEEDS.get(name, []) if importlib.util.find_spec(m) is None]
    if missing:
        print(f"skipped: needs {', '.join(missing)} (pip install -e '.[bench]')", flush=True)
        return "skipped", 0.0, 0.0, load()
    before, cpu0, t0 = load(), children_cpu(), time.perf_counter()
    try:
        rc = subprocess.run([sys.executable, str(BENCH / f"bench_{name}.py"), *args], timeout=timeout).returncode
        status = "ok" if rc == 0 else f"exit {rc}"
    except subprocess.TimeoutExpired:
        status = f"stopped after {timeout:.0f} s"
    return status, time.perf_counter() - t0, children_cpu() - cpu0, f"{before} -> {load()}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="", help="comma-separated benchmarks (default: all)")
    ap.add_argument("--full", action="store_true", help="each benchmark with its own defaults (long)")
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds each benchmark may run")
    opts = ap.parse_args()
    names = [n for n in opts.only.split(",") if n] or list(QUICK)
    unknown = sorted(set(names) - set(QUICK))
    if unknown:
        ap.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(QUICK)}")
    rows = []
    for name in names:
        args = [] if opts.full else QUICK[name]
        print(f"\n=== bench_{name}.py {' '.join(args)}  (load average {load()})", flush=True)
        rows.append((name, args, *run_one(name, args, opts.timeout)))
    print(f"\n=== summary ({os.cpu_count()} cores; wall and CPU of each benchmark process and its children)")
    print("| benchmark | arguments | status | wall (s) | CPU (s) | load average before -> after |")
    print("|---|---|---|---:|---:|---|")
    for name, args, status, wall, cpu, loads in rows:
        print(f"| {name} | {' '.join(args)} | {status} | {wall:.1f} | {cpu:.1f} | {loads} |")
    return 0 if all(r[2] in ("ok", "skipped") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
