"""Benchmark `oligolab design` against ADAPT (issue 19 must-show 4), each run as a user would run it, in one run.

1. **The same 500 genomes** (every 7th Pango lineage consensus genome, 500 of the 3,585, aligned as shipped):
   ADAPT 1.6.0 ``design.py complete-targets fasta`` (Cas13a guides -gl 28 -gm 1 -gp 0.98, RPA-length primers
   -pl 30 -pm 3 -pp 0.98, minimize-guides, best 5 targets; how it runs here is in /work/shared/PEERS.md: installed
   with ``pip install --no-deps adapt-diagnostics numpy scipy`` into its own virtual environment, with a stand-in
   ``tensorflow`` module that only satisfies its import, so no activity model) beside ``oligolab design``
   LwaCas13a + RPA, 5 assays, on the same file. Both single-threaded (ADAPT is single-threaded).
2. **All 3,585 genomes**: ``oligolab design`` LbCas12a + RT-LAMP and LwaCas13a + RPA (3 assays each, with the
   six shipped human coronaviruses as off-targets, every output and the HTML report), all cores; ADAPT's figure
   on the same 3,585 genomes from PEERS.md (3,554 s, 312 MB, single core) unless ``--adapt-all`` re-runs it
   (about an hour).

Every process runs under ``/usr/bin/time -v``: wall time, CPU time (user + system; less disturbed than wall
time when the machine is shared) and peak resident memory. The load average is printed before and after.
Run: ``python benchmarks/bench_design.py [--skip-adapt] [--adapt-all]``; the figures go into
benchmarks/RESULTS.md (section "design") by hand with the machine they ran on.
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
PANGO = SARS / "pango-consensus-genomes.fasta.zst"
NEIGHBOURS = ROOT / "data" / "coronavirus-neighbours" / "human-coronavirus-references.fasta"
ADAPT_VENV = ROOT / "benchmarks" / "_work" / "adapt-venv"
ADAPT_STUB = ROOT / "benchmarks" / "_work" / "adapt-stub"
ADAPT_ALL = {"wall_s": 3554.0, "cpu_s": float("nan"), "rss_mb": 312.0}  #: PEERS.md, 3,585 genomes, one core
ADAPT_ARGS = ["--obj", "minimize-guides", "-gl", "28", "-gm", "1", "-gp", "0.98", "-pl", "30", "-pm", "3", "-pp",
              "0.98", "--best-n-targets", "5"]


def timed(cmd: list[str], env: dict[str, str] | None = None) -> dict[str, float]:
    """Run under /usr/bin/time -v: wall s, CPU s (user + system), peak RSS MiB."""
    t0 = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1)) / 1024
    cpu = sum(float(re.search(rf"{k} time \(seconds\): ([\d.]+)", proc.stderr).group(1)) for k in ("User", "System"))
    return {"wall_s": wall, "cpu_s": cpu, "rss_mb": rss}


def subset(n: int = 500, every: int = 7) -> Path:
    """Every ``every``-th aligned Pango genome, ``n`` of them, as plain FASTA with the alignment kept."""
    import zstandard

    out = WORK / f"pango-{n}.fasta"
    if out.exists():
        return out
    WORK.mkdir(parents=True, exist_ok=True)
    text = zstandard.ZstdDecompressor().stream_reader(open(PANGO, "rb")).read().decode()
    records = [r for r in text.split(">")[1:]]
    picked = records[::every][:n]
    out.write_text("".join(">" + r for r in picked))
    return out


def oligolab(genomes: Path, enzyme: str, chemistry: str, n: int, tag: str, threads: int | None,
             off_target: bool) -> dict[str, float]:
    out = WORK / f"oligolab-{tag}"
    cmd = [sys.executable, "-m", "oligolab.cli", "design", "--genomes", str(genomes), "--enzyme", enzyme,
           "--amplification", chemistry, "--n-assays", str(n), "--reference", str(SARS / "NC_045512.2.fasta"),
           "--out", str(out)]
    if off_target:
        cmd += ["--annotation", str(SARS / "reference-annotation.gb"), "--alias-key",
                str(SARS / "pango-alias-key.json"), "--off-target", str(NEIGHBOURS)]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "COLUMNS": "160"}
    if threads:
        cmd += ["--threads", str(threads)]
        env["NUMBA_NUM_THREADS"] = str(threads)
    return timed(cmd, env)


def adapt(genomes: Path, tag: str) -> dict[str, float]:
    if not (ADAPT_VENV / "bin" / "design.py").exists():
        raise SystemExit(f"ADAPT is not installed: python3 -m venv {ADAPT_VENV} && {ADAPT_VENV}/bin/pip install "
                         "--no-deps adapt-diagnostics numpy scipy  (see /work/shared/PEERS.md)")
    (ADAPT_STUB / "tensorflow").mkdir(parents=True, exist_ok=True)
    (ADAPT_STUB / "tensorflow" / "__init__.py").write_text(
        '"""Stand-in that only satisfies ADAPT\'s import of tensorflow (no activity model is used)."""\n'
        "from types import SimpleNamespace\n\n"
        "compat = SimpleNamespace(v1=SimpleNamespace(logging=SimpleNamespace(ERROR=40, "
        "set_verbosity=lambda level: None)))\n")
    env = {**os.environ, "PYTHONPATH": str(ADAPT_STUB)}
    cmd = [str(ADAPT_VENV / "bin" / "python"), str(ADAPT_VENV / "bin" / "design.py"), "complete-targets", "fasta",
           str(genomes), "-o", str(WORK / f"adapt-{tag}"), *ADAPT_ARGS]
    return timed(cmd, env)


def _row(name: str, r: dict[str, float], ref: dict[str, float] | None = None) -> str:
    ratio = f"{ref['wall_s'] / r['wall_s']:.0f}x / {ref['cpu_s'] / r['cpu_s']:.0f}x" if ref and ref["cpu_s"] == \
        ref["cpu_s"] else (f"{ref['wall_s'] / r['wall_s']:.0f}x (wall)" if ref else "")
    return (f"| {name} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | {r['rss_mb']:.0f} | {ratio} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--skip-adapt", action="store_true", help="leave out ADAPT on the 500 genomes")
    ap.add_argument("--adapt-all", action="store_true", help="also run ADAPT on all 3,585 genomes (about an hour)")
    args = ap.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; load average before: {os.getloadavg()}", flush=True)
    g500 = subset()
    rows = ["| run | wall (s) | CPU (s) | peak RSS (MiB) | ADAPT / oligolab (wall / CPU) |", "|---|---|---|---|---|"]
    ours = oligolab(g500, "LwaCas13a", "rpa", 5, "500", 1, False)
    ref = None if args.skip_adapt else adapt(g500, "500")
    if ref:
        rows.append(_row("ADAPT 1.6.0, 500 genomes (1 core)", ref))
    rows.append(_row("oligolab design LwaCas13a + RPA, 500 genomes (1 thread)", ours, ref))
    all_ref = adapt(PANGO, "all") if args.adapt_all else ADAPT_ALL
    for enzyme, chem in (("LbCas12a", "lamp"), ("LwaCas13a", "rpa")):
        r = oligolab(PANGO, enzyme, chem, 3, f"all-{enzyme}-{chem}", None, True)
        rows.append(_row(f"oligolab design {enzyme} + {chem.upper()}, 3,585 genomes (all cores, off-targets)",
                         r, all_ref))
    src = "this run" if args.adapt_all else "PEERS.md, CPU not recorded"
    rows.append(f"| ADAPT 1.6.0, 3,585 genomes (1 core; {src}) | {all_ref['wall_s']:.0f} | | "
                f"{all_ref['rss_mb']:.0f} | |")
    print("\n".join(rows))
    print(f"load average after: {os.getloadavg()} (the machine is shared: compare CPU times)")


if __name__ == "__main__":
    main()
