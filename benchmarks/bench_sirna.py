"""Benchmark `oligolab sirna` against a 100 MB+ transcriptome, and the design path against siRNAforge, in one run.

Off-target transcriptome (about 105 MB): the REAL transcripts shipped in data/ (1,092 human transcripts with their
GTF from IsoformSwitchAnalyzeR, the 22 RefSeq mRNAs of data/rnai-targets/) plus SYNTHETIC transcripts (seeded
random, log-normal lengths around 2 kb, 50 % GC, CDS written in each header, ids SYN*, labelled "SYNTHETIC" in
every header) up to ``--mb``. Steps, each a separate process measured for wall time, CPU time (user + sys) and
peak RSS:

1. ``oligolab sirna index`` of the transcriptome (once);
2. ``oligolab sirna --index`` for TTR (NM_000371.4), then for TTR + HAO1 + ALAS1 in one run (per-transcript
   time after the index);
3. the design without off-targets of TTR + HAO1 + ALAS1 (4,748 nt): oligolab and siRNAforge 0.4.1
   (``sirnaforge design``, PyPI) on the same FASTA. siRNAforge's off-target step needs BWA-MEM2 and Nextflow and
   does not run here (PEERS.md), so it is compared on the design only.

Run: ``python benchmarks/bench_sirna.py [--mb 100] [--sirnaforge PATH]`` (siRNAforge: ``python3 -m venv
benchmarks/_work/venv-sirnaforge && benchmarks/_work/venv-sirnaforge/bin/pip install sirnaforge==0.4.1``).
Prints a markdown table and writes benchmarks/_work/bench_sirna.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / "_work"
TARGETS = ROOT / "data" / "rnai-targets" / "human-rnai-target-mrnas.fasta"
REAL_TX = ROOT / "data" / "sirna-transcriptome" / "isoformswitchanalyzer-example-isoforms.fasta.gz"
REAL_GTF = ROOT / "data" / "sirna-transcriptome" / "isoformswitchanalyzer-example.gtf.gz"
THREE = ("NM_000371.4", "NM_017545.3", "NM_000688.6")  # TTR, HAO1, ALAS1 variant 1
OLIGOLAB = [sys.executable, "-m", "oligolab.cli"]


def synthetic_transcripts(path: Path, mb: int, seed: int = 20261123) -> Path:
    """SYNTHETIC transcripts (labelled) up to ``mb`` million nt, written once and reused."""
    if path.exists():
        return path
    rng = np.random.default_rng(seed)
    letters = np.frombuffer(b"ACGT", dtype=np.uint8)
    total, i = 0, 0
    tmp = path.with_suffix(".part")
    with open(tmp, "w") as fh:
        while total < mb * 1_000_000:
            n = int(np.clip(rng.lognormal(np.log(2000), 0.6), 300, 20000))
            seq = letters[rng.integers(0, 4, size=n)].tobytes().decode()
            cds0 = int(n * 0.1) + 1
            cds1 = cds0 + (int(n * 0.6) // 3) * 3 - 1
            fh.write(f">SYN{i:06d} SYNTHETIC random transcript CDS={cds0}-{cds1}\n{seq}\n")
            total += n
            i += 1
    tmp.rename(path)
    return path


def measured(cmd: list[str], env: dict[str, str]) -> dict[str, float]:
    """Wall, CPU (user + sys) and peak RSS of one command (GNU time)."""
    t0 = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-v", *cmd], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    field = lambda name: float(re.search(rf"{name}: ([\d.]+)", proc.stderr).group(1))
    return {"wall_s": round(wall, 2), "cpu_s": round(field(r"User time \(seconds\)") +
                                                     field(r"System time \(seconds\)"), 2),
            "rss_mib": round(field(r"Maximum resident set size \(kbytes\)") / 1024, 1)}


def three_fasta(path: Path) -> Path:
    """TTR, HAO1 and ALAS1 variant 1 from the shipped RefSeq set, for the design-only comparison."""
    sys.path.insert(0, str(ROOT / "src"))
    from oligolab.sirna import read_transcripts

    recs = [t for t in read_transcripts(TARGETS) if t.id in THREE]
    path.write_text("".join(f">{t.id} {t.description}\n{t.seq}\n" for t in recs))
    return path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=100, help="million nt of SYNTHETIC transcripts")
    ap.add_argument("--sirnaforge", default=str(WORK / "venv-sirnaforge" / "bin" / "sirnaforge"))
    args = ap.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    syn = synthetic_transcripts(WORK / f"synthetic-transcripts-{args.mb}mb.fa", args.mb)
    three = three_fasta(WORK / "ttr-hao1-alas1.fa")
    size = sum(p.stat().st_size for p in (syn, TARGETS)) / 1e6 + 3.0  # + the real set (3.0 Mnt, gzipped here)
    subprocess.run([*OLIGOLAB, "sirna", "--help"], env=env, capture_output=True)  # warm the import caches
    idx = WORK / "sirna-index"
    results = {"machine": f"{os.cpu_count()} cores, shared", "transcriptome_mb": round(size, 1)}
    results["index"] = measured([*OLIGOLAB, "sirna", "index", str(REAL_TX), str(TARGETS), str(syn),
                                 "--annotation", str(REAL_GTF), "--out", str(idx)], env)
    meta = json.loads((idx / "index.json").read_text())
    results["index"]["transcripts"] = meta["transcripts"]
    results["query_ttr"] = measured([*OLIGOLAB, "sirna", "--target", str(TARGETS), "--target-id", THREE[0],
                                     "--index", str(idx), "--out", str(WORK / "q-ttr")], env)
    results["query_three"] = measured([*OLIGOLAB, "sirna", "--target", str(TARGETS), "--target-id", ",".join(THREE),
                                       "--index", str(idx), "--out", str(WORK / "q-three")], env)
    results["design_oligolab"] = measured([*OLIGOLAB, "sirna", "--target", str(three), "--target-id",
                                           ",".join(THREE), "--out", str(WORK / "d-oligolab")], env)
    if shutil.which(args.sirnaforge) or Path(args.sirnaforge).exists():
        results["design_sirnaforge"] = measured([args.sirnaforge, "design", str(three), "-o",
                                                 str(WORK / "d-sirnaforge.csv")], env)
    (WORK / "bench_sirna.json").write_text(json.dumps(results, indent=1))
    report(results)


def report(r: dict) -> None:
    print(f"machine: {r['machine']}; off-target transcriptome {r['transcriptome_mb']} Mnt "
          f"({r['index']['transcripts']:,} transcripts: 1,114 real + SYNTHETIC)")
    print("| step | wall (s) | CPU (s) | peak RSS (MiB) |\n|---|---:|---:|---:|")
    labels = {"index": "oligolab sirna index (once)", "query_ttr": "design TTR vs the index",
              "query_three": "design TTR + HAO1 + ALAS1 vs the index", "design_oligolab":
              "design only, TTR + HAO1 + ALAS1 (oligolab)", "design_sirnaforge":
              "design only, TTR + HAO1 + ALAS1 (siRNAforge 0.4.1)"}
    for key, label in labels.items():
        if key in r:
            print(f"| {label} | {r[key]['wall_s']} | {r[key]['cpu_s']} | {r[key]['rss_mib']} |")
    per_tx = r["query_three"]["wall_s"] / 3
    print(f"per transcript after the index: {per_tx:.1f} s wall (target < 60 s: "
          f"{'met' if per_tx < 60 else 'NOT met'})")
    if "design_sirnaforge" in r:
        ratio = r["design_oligolab"]["cpu_s"] / r["design_sirnaforge"]["cpu_s"]
        print(f"design CPU oligolab / siRNAforge: {ratio:.2f} (target <= 1: {'met' if ratio <= 1 else 'NOT met'})")


if __name__ == "__main__":
    main()
