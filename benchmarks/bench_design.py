"""Benchmark `oligolab design` on all 3,585 Pango lineage genomes (issue 4, must-show 4).

For each configuration the command runs end to end as a user would run it (reading the .zst collection,
projection, candidate guides, guide sets, primers, the off-target screen against the six shipped human
coronaviruses, the check over every genome, every output and the HTML report) under /usr/bin/time, which
gives the wall time and the peak resident memory of the whole process:

* LbCas12a + RT-LAMP (DETECTR-style), 3 assays;
* LwaCas13a + RPA (SHERLOCK-style), 3 assays; also with --threads 1, the setting of the ADAPT figure.

The ADAPT figure is the peer measurement on this machine (/work/shared/PEERS.md): ADAPT 1.6.0 `design.py
complete-targets` (Cas13a guides -gl 28, RPA-length primers -pl 30, minimize-guides, best 5 targets) on the
same 3,585 aligned genomes: 3,554 s and 312 MB, single core, without its activity model.

Run: ``python benchmarks/bench_design.py``. Prints a table; figures go into benchmarks/RESULTS.md (section
"design") by hand with the machine they ran on.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / "_work" / "design"
SARS = ROOT / "data" / "sars-cov-2"
NEIGHBOURS = ROOT / "data" / "coronavirus-neighbours" / "human-coronavirus-references.fasta"
ADAPT_SECONDS = 3554.0
ADAPT_MB = 312.0
CONFIGS = [("LbCas12a", "lamp", None), ("LwaCas13a", "rpa", None), ("LwaCas13a", "rpa", 1)]


def run(enzyme: str, chemistry: str, threads: int | None) -> dict:
    out = WORK / f"{enzyme}-{chemistry}{'-t1' if threads else ''}"
    cmd = [sys.executable, "-m", "oligolab.cli", "design", "--genomes", str(SARS / "pango-consensus-genomes.fasta.zst"),
           "--enzyme", enzyme, "--amplification", chemistry, "--n-assays", "3",
           "--reference", str(SARS / "NC_045512.2.fasta"), "--annotation", str(SARS / "reference-annotation.gb"),
           "--alias-key", str(SARS / "pango-alias-key.json"), "--off-target", str(NEIGHBOURS), "--out", str(out)]
    if threads:
        cmd += ["--threads", str(threads)]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "COLUMNS": "160"}
    if threads:
        env["NUMBA_NUM_THREADS"] = str(threads)
    t0 = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"design failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1)) / 1024
    cpu = sum(float(re.search(rf"{k} time \(seconds\): ([\d.]+)", proc.stderr).group(1)) for k in ("User", "System"))
    import pandas as pd

    summary = pd.read_csv(out / "design_summary.tsv", sep="\t")
    return {"config": f"{enzyme} + {chemistry.upper()}" + (" (1 thread)" if threads else ""), "wall_s": wall,
            "cpu_s": cpu, "rss_mb": rss, "assays": len(summary),
            "detected": "; ".join(f"{r.detected}/{r.genomes}" for r in summary.itertuples()),
            "specific": bool(summary["specific"].all())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--skip-single-thread", action="store_true", help="leave out the --threads 1 run")
    args = ap.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    rows = []
    for enzyme, chem, threads in CONFIGS:
        if threads and args.skip_single_thread:
            continue
        r = run(enzyme, chem, threads)
        rows.append(r)
        print(f"{r['config']}: {r['wall_s']:.1f} s wall, {r['cpu_s']:.1f} s CPU, {r['rss_mb']:.0f} MiB peak RSS; "
              f"detected {r['detected']}; specific {r['specific']}", flush=True)
    print()
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}")
    print("| configuration | wall (s) | CPU (s) | peak RSS (MiB) | vs ADAPT time | vs ADAPT memory "
          "| detected (all 3,585) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['config']} | {r['wall_s']:.0f} | {r['cpu_s']:.0f} | {r['rss_mb']:.0f} | "
              f"{ADAPT_SECONDS / r['wall_s']:.0f}x faster | {r['rss_mb'] / ADAPT_MB:.1f}x | {r['detected']} |")
    print(f"| ADAPT 1.6.0 (PEERS.md, 1 core, no activity model) | {ADAPT_SECONDS:.0f} | | {ADAPT_MB:.0f} | 1x | 1x | |")
    print("target: under 300 s and under 4096 MiB per configuration")


if __name__ == "__main__":
    main()
