"""Benchmark `oligolab check`: the shipped work against bowtie and BLAST in one run, and its scaling on SYNTHETIC
collections of 100,000 and 1,000,000 genomes.

1. All shipped oligos (55 published RT-qPCR oligos + ARTIC v5.3.2, 247) against the 3,585 Pango lineage genomes,
   up to 3 mismatches, both strands, each tool as a user runs it:
   - bowtie 1: `bowtie-build --threads 2` on the genomes (gaps removed), then `bowtie -p 2 -f -v 3 -a`;
   - BLAST+: `makeblastdb`, then `blastn -task blastn-short -word_size 7 -evalue 1000 -num_threads 2`;
   - `oligolab check` end to end (reading the .zst, search, calls, every output and the HTML report) on all cores.
   Wall and CPU time (user + system, the workers' included); target for oligolab: under 3 s on this 2-core machine.
2. SYNTHETIC collections (benchmarks/synthetic_genomes.py, seed 20261205: lineage consensus genomes with point
   mutations at the spectrum of the shipped lineages, runs of N, indels): 100,000 genomes with 1 and 2 workers, and
   1,000,000 genomes with 2 workers (and 1 with --million-one-worker): wall, CPU, peak memory of the driver and of
   the largest worker, genomes per second. Target: 1M genomes under 10 minutes with under 2 GiB per worker.

Run: `python benchmarks/bench_check.py [--skip-peers] [--skip-million]`. Prints tables and ratios; the figures go into
benchmarks/RESULTS.md with the machine they ran on and how busy it was.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
WORK = ROOT / "benchmarks" / "_work"
SARS = ROOT / "data" / "sars-cov-2"
PANGO = SARS / "pango-consensus-genomes.fasta.zst"
ASSAYS = [SARS / "assays" / "diagnostic-rt-pcr-assays.csv", SARS / "assays" / "artic-v5.3.2.primer.bed"]


def timed(cmd: list[str], stdout: object = None) -> dict[str, float]:
    """Run a command under /usr/bin/time: wall and CPU seconds (children included), peak RSS (MiB)."""
    t0 = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-v", *cmd], stdout=stdout or subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"command failed: {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    err = proc.stderr

    def field(name: str) -> float:
        return float(re.search(rf"{name}: ([\d.]+)", err).group(1))

    return {"wall_s": wall, "cpu_s": field(r"User time \(seconds\)") + field(r"System time \(seconds\)"),
            "peak_mib": field(r"Maximum resident set size \(kbytes\)") / 1024, "stdout": proc.stdout or ""}


def check_spec(genomes: Path, out: Path, metadata: Path | None = None, **options: object) -> str:
    inputs = {"assays": [str(a) for a in ASSAYS], "genomes": [str(genomes)], "metadata": str(metadata) if metadata else None,
              "reference": str(SARS / "NC_045512.2.fasta"), "annotation": str(SARS / "reference-annotation.gb"),
              "alias_key": str(SARS / "pango-alias-key.json")}
    return json.dumps({"inputs": inputs, "out": str(out), "options": options})


def run_check(genomes: Path, out: Path, metadata: Path | None = None, **options: object) -> dict:
    """`oligolab check` in a fresh process (imports and start-up included in the wall time); the run's own figures
    (workers' CPU and peak memory) come from benchmarks/run_check_once.py."""
    shutil.rmtree(out, ignore_errors=True)
    res = timed([sys.executable, str(ROOT / "benchmarks" / "run_check_once.py"),
                 check_spec(genomes, out, metadata, **options)])
    inner = json.loads(res.pop("stdout").strip().splitlines()[-1])
    res["cpu_s"] += inner["worker_cpu_s"]  # 0 when every chunk was checked in the driver
    return {**inner, **{f"process_{k}": v for k, v in res.items()}}


def prepare() -> tuple[Path, Path]:
    from oligolab.assays import read_assays
    from oligolab.sequences import read_fasta

    WORK.mkdir(parents=True, exist_ok=True)
    genomes, reads = WORK / "pango-nogaps.fa", WORK / "oligos.fa"
    if not genomes.exists():
        with open(genomes, "w") as fh:
            for rec in read_fasta(PANGO):
                fh.write(f">{rec.id}\n{rec.text()}\n")
    with open(reads, "w") as fh:
        for o in read_assays(ASSAYS).oligos:
            fh.write(f">{o.name}\n{o.sequence}\n")
    return genomes, reads


#: bowtie's figures on the idle machine (../shared/PEERS.md, re-measured 2026-12-05), for runs that leave bowtie out
BOWTIE_IDLE = {"wall_s": 333.0, "cpu_s": 548.0, "peak_mib": 331.0}


def peers(genomes: Path, reads: Path, skip_bowtie: bool = False) -> list[tuple[str, dict, str]]:
    rows = []
    if skip_bowtie:
        rows.append(("bowtie-build + bowtie -v 3 -a (NOT run here: idle-machine figure from PEERS.md)", BOWTIE_IDLE,
                     "878,775 hits"))
    elif shutil.which("bowtie-build"):
        build = timed(["bowtie-build", "--threads", "2", str(genomes), str(WORK / "idx")])
        with open(WORK / "bowtie.hits", "w") as fh:
            search = timed(["bowtie", "-p", "2", "-f", "-v", "3", "-a", "--suppress", "6,7,8", str(WORK / "idx"),
                            str(reads)], stdout=fh)
        hits = sum(1 for _ in open(WORK / "bowtie.hits"))
        rows.append(("bowtie-build + bowtie -v 3 -a", {k: build[k] + search[k] for k in ("wall_s", "cpu_s")}
                     | {"peak_mib": max(build["peak_mib"], search["peak_mib"])}, f"{hits:,} hits"))
    if shutil.which("makeblastdb"):
        db = timed(["makeblastdb", "-in", str(genomes), "-dbtype", "nucl", "-out", str(WORK / "blastdb")])
        blast = timed(["blastn", "-task", "blastn-short", "-word_size", "7", "-evalue", "1000", "-max_target_seqs",
                       "100000", "-num_threads", "2", "-outfmt", "6", "-query", str(reads), "-db", str(WORK / "blastdb"),
                       "-out", str(WORK / "blast.tsv")])
        hits = sum(1 for _ in open(WORK / "blast.tsv"))
        rows.append(("makeblastdb + blastn-short", {k: db[k] + blast[k] for k in ("wall_s", "cpu_s")}
                     | {"peak_mib": max(db["peak_mib"], blast["peak_mib"])}, f"{hits:,} alignments"))
    return rows


def shipped(skip_peers: bool, skip_bowtie: bool) -> None:
    genomes, reads = prepare()
    run_check(SARS / "NC_045512.2.fasta", WORK / "warmup", workers=1)  # numba cache, once
    rows = [] if skip_peers else peers(genomes, reads, skip_bowtie)
    ours = run_check(PANGO, WORK / "check-shipped")
    rows.append(("oligolab check (default), end to end", {"wall_s": ours["process_wall_s"],
                 "cpu_s": ours["process_cpu_s"], "peak_mib": max(ours["process_peak_mib"], ours["worker_peak_mib"])},
                 f"in-process {ours['wall_s']:.1f} s, {ours['where']}, {ours['workers']} worker(s)"))
    one = run_check(PANGO, WORK / "check-shipped-1", workers=1)
    rows.append(("oligolab check (one process), end to end", {"wall_s": one["process_wall_s"],
                 "cpu_s": one["process_cpu_s"], "peak_mib": one["process_peak_mib"]},
                 f"in-process {one['wall_s']:.1f} s"))
    print("\n| run (247 oligos x 3,585 Pango genomes, <= 3 mismatches) | wall (s) | CPU (s) | peak RSS (MiB) | note |")
    print("|---|---:|---:|---:|---|")
    for name, r, note in rows:
        print(f"| {name} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | {r['peak_mib']:.0f} | {note} |")
    best = rows[-2][1]
    for name, r, _ in rows[:-2]:
        print(f"{name}: oligolab is {r['wall_s'] / best['wall_s']:.0f}x faster by wall clock, "
              f"{r['cpu_s'] / best['cpu_s']:.0f}x by CPU time")
    print(f"target under 3 s: {'met' if best['wall_s'] < 3 else 'NOT met'} ({best['wall_s']:.1f} s)")


def scale(skip_million: bool, million_one_worker: bool) -> None:
    from synthetic_genomes import write_collection

    runs = [(100_000, 1), (100_000, 2)] + ([] if skip_million else [(1_000_000, 2)] +
                                            ([(1_000_000, 1)] if million_one_worker else []))
    print("\n| SYNTHETIC genomes | workers | wall (s) | CPU (s) | genomes/s | driver peak (MiB) | "
          "worker peak (MiB) | distinct genomes |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n, workers in runs:
        stem = WORK / f"synthetic-{n // 1000}k"
        fasta, meta = stem.with_suffix(".fasta.zst"), stem.with_suffix(".metadata.tsv")
        if not (fasta.exists() and meta.exists()):
            t0 = time.perf_counter()
            write_collection(n, stem)
            print(f"(generated {n:,} SYNTHETIC genomes in {time.perf_counter() - t0:.0f} s: "
                  f"{fasta.stat().st_size / 1e6:.0f} MB zstd)")
        r = run_check(fasta, WORK / f"check-synthetic-{n // 1000}k-{workers}", meta, workers=workers)
        shutil.rmtree(WORK / f"check-synthetic-{n // 1000}k-{workers}", ignore_errors=True)
        peak_worker = r["worker_peak_mib"] if workers > 1 else r["process_peak_mib"]
        print(f"| {n:,} | {workers} | {r['process_wall_s']:.0f} | {r['process_cpu_s']:.0f} | "
              f"{n / r['process_wall_s']:,.0f} | {r['process_peak_mib']:.0f} | {peak_worker:.0f} | "
              f"{r['distinct_genomes']:,} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--skip-peers", action="store_true", help="leave out bowtie and BLAST (about 7 minutes)")
    ap.add_argument("--skip-bowtie", action="store_true",
                    help="leave out bowtie (bowtie-build takes 5.5 minutes idle, 40 on a busy machine) and print its "
                         "idle-machine figure from PEERS.md instead")
    ap.add_argument("--skip-shipped", action="store_true")
    ap.add_argument("--skip-scale", action="store_true")
    ap.add_argument("--skip-million", action="store_true")
    ap.add_argument("--million-one-worker", action="store_true")
    args = ap.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} (the machine is shared: CPU times are the steadier figure)")
    if not args.skip_shipped:
        shipped(args.skip_peers, args.skip_bowtie)
    if not args.skip_scale:
        sys.path.insert(0, str(ROOT / "benchmarks"))
        scale(args.skip_million, args.million_one_worker)


if __name__ == "__main__":
    main()
