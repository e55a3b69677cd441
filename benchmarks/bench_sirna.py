"""Benchmark `oligolab sirna`: all candidates of a ~3-kb transcript against a 100 MB transcriptome.

The target is the real PCSK9 mRNA (NM_174936.4, 3,637 nt: the inclisiran target). The 100 MB transcriptome is
SYNTHETIC (seeded random transcripts with a log-normal length distribution around 2 kb, 50 % GC, CDS written in
each header) with the 22 real shipped transcripts added, so that real near-perfect hits exist. Prints wall time
and peak RSS; the target is under 1 minute on this machine. The peer (siRNAforge) needs BWA-MEM2/Nextflow for
off-targets and does not run here; its design step alone took 3.4 s for 5.1 kb of transcripts (PEERS.md).

Run: `python benchmarks/bench_sirna.py [--mb 100]`
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / "_work"
TARGETS = ROOT / "data" / "rnai-targets" / "human-rnai-target-mrnas.fasta"


def synthetic_transcriptome(mb: int, seed: int = 20261123) -> Path:
    path = WORK / f"synthetic-transcriptome-{mb}mb-seed{seed}.fa"
    if path.exists():
        return path
    WORK.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    total = 0
    i = 0
    with open(path, "w") as fh:
        fh.write(TARGETS.read_text())
        total += TARGETS.stat().st_size
        while total < mb * 1_000_000:
            n = int(np.clip(rng.lognormal(np.log(2000), 0.6), 300, 20000))
            seq = "".join(np.array(list("ACGT"))[rng.integers(0, 4, size=n)])
            cds0 = int(n * 0.1) + 1
            cds1 = cds0 + (int(n * 0.6) // 3) * 3 - 1
            fh.write(f">SYN{i:06d} synthetic transcript CDS={cds0}-{cds1}\n{seq}\n")
            total += n
            i += 1
    return path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=100)
    args = ap.parse_args()
    tx = synthetic_transcriptome(args.mb)
    cmd = [sys.executable, "-m", "oligolab.cli", "sirna", "--target", str(TARGETS), "--target-id", "NM_174936.4",
           "--off-target", str(tx), "--out", str(WORK / "sirna-bench"), "--known",
           str(ROOT / "data" / "sirna-drugs" / "approved-sirnas.tsv")]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    subprocess.run([*cmd[:3], "--help"], env=env, capture_output=True)  # import warm-up
    t0 = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-v", *cmd], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(proc.stdout[-3000:] + proc.stderr[-3000:])
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1)) / 1024
    size = tx.stat().st_size / 1e6
    print(f"machine: {os.cpu_count()} cores; target NM_174936.4 (3,637 nt, all candidates); off-target set "
          f"{size:.0f} MB (synthetic + 22 real transcripts)")
    print(f"| run | wall (s) | peak RSS (MiB) |\n|---|---:|---:|\n| oligolab sirna | {wall:.1f} | {rss:.0f} |")
    print(f"target under 60 s: {'met' if wall < 60 else 'NOT met'}")


if __name__ == "__main__":
    main()
