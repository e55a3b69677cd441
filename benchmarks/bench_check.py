"""Benchmark `oligolab check` against bowtie 1 on the same input, and its scaling on a repeated collection.

1. All shipped oligos (55 published RT-qPCR oligos + ARTIC v5.3.2, 247) against the 3,585 Pango lineage
   genomes, <= 3 mismatches, both strands:
   - bowtie 1.3.1: `bowtie-build --threads 2` on the genomes (gaps removed), then `bowtie -p 2 -f -v 3 -a`;
   - `oligolab check` end to end (reading the .zst, search, calls, every output and the HTML report), once
     mismatch-only (--max-gaps 0, bowtie's task) and once with the default 2 gap nucleotides;
   - parity at scale: the engine's sites without unknown bases equal bowtie's hits (non-degenerate oligos).
2. The same collection repeated 10 times (SYNTHETIC: record ids suffixed _rep1.._rep10, sequences
   unchanged): wall time should grow at most linearly, peak RSS stay flat and under 1 GiB.

Run: `python benchmarks/bench_check.py` (add --skip-bowtie to leave out the 5-minute index build).
Prints a table and the ratios; numbers go into benchmarks/RESULTS.md by hand with the machine they ran on.
"""

from __future__ import annotations

import argparse
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
OLIGOLAB = [sys.executable, "-m", "oligolab.cli"]


def timed(cmd: list[str], stdout=None) -> tuple[float, float]:
    """Run a command under /usr/bin/time: (wall seconds, peak RSS in MiB)."""
    t0 = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-v", *cmd], stdout=stdout or subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"command failed: {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1)) / 1024
    return wall, rss


def check_cmd(genomes: Path, out: Path, gaps: int, metadata: Path | None = None) -> list[str]:
    args = [*OLIGOLAB, "check", "--out", str(out), "--max-mismatches", "3", "--max-gaps", str(gaps),
            "--genomes", str(genomes), "--reference", str(SARS / "NC_045512.2.fasta"),
            "--annotation", str(SARS / "reference-annotation.gb"), "--alias-key", str(SARS / "pango-alias-key.json")]
    for a in ASSAYS:
        args += ["--assays", str(a)]
    if metadata is not None:
        args += ["--metadata", str(metadata)]
    return args


def prepare() -> tuple[Path, Path, list]:
    from oligolab.assays import read_assays
    from oligolab.sequences import read_fasta

    WORK.mkdir(parents=True, exist_ok=True)
    genomes = WORK / "pango-nogaps.fa"
    if not genomes.exists():
        with open(genomes, "w") as fh:
            for rec in read_fasta(PANGO):
                fh.write(f">{rec.id}\n{rec.text()}\n")
    oligos = read_assays(ASSAYS).oligos
    reads = WORK / "oligos.fa"
    with open(reads, "w") as fh:
        for o in oligos:
            fh.write(f">{o.name}\n{o.sequence}\n")
    return genomes, reads, oligos


def repeated(times: int) -> tuple[Path, Path]:
    """SYNTHETIC scale input: the Pango collection repeated, ids made unique, lineages in a metadata table
    (as a large real collection would come)."""
    import zstandard

    from oligolab.sequences import read_fasta

    path = WORK / f"pango-x{times}.synthetic.fasta.zst"
    meta = WORK / f"pango-x{times}.synthetic.metadata.tsv"
    if path.exists() and meta.exists():
        return path, meta
    records = list(read_fasta(PANGO, keep_gaps=True))
    cctx = zstandard.ZstdCompressor(level=3)
    with open(path, "wb") as raw, cctx.stream_writer(raw) as fh, open(meta, "w") as mh:
        mh.write("id\tlineage\n")
        for rep in range(1, times + 1):
            for rec in records:
                fh.write(f">{rec.id}_rep{rep}\n{rec.text()}\n".encode())
                mh.write(f"{rec.id}_rep{rep}\t{rec.id}\n")
    return path, meta


def engine_parity(genomes: Path, oligos, bowtie_hits: Path) -> dict:
    """Engine-only pass (mismatch-only): hit count, time, and equality with bowtie's hits."""
    from oligolab.engine import Engine, PatternSet, pack_batch
    from oligolab.sequences import read_fasta

    ps = PatternSet.from_oligos([o.name for o in oligos], [o.sequence for o in oligos])
    degenerate = {i for i, o in enumerate(oligos) if o.is_degenerate}
    t0 = time.perf_counter()
    engine = Engine(ps, 3, 0)
    ids, ours = [], set()
    batch = []
    size = 0

    def flush():
        codes, ends = pack_batch([r.codes() for r in batch])
        hits = engine.search_codes(codes, ends)
        s = engine.sites
        for g, p, sid in zip(hits.genome.tolist(), hits.pos.tolist(), hits.site.tolist()):
            pat = int(s.pattern[sid])
            if pat // 2 not in degenerate and s.unknown[sid] == 0:
                ours.add((oligos[pat // 2].name, ids[g], p, "+-"[pat % 2]))

    for rec in read_fasta(PANGO):
        ids.append(rec.id)
        batch.append(rec)
        size += len(rec.seq)
        if size > 4_000_000:
            flush()
            batch, size = [], 0
    if batch:
        flush()
    seconds = time.perf_counter() - t0
    engine.close()
    theirs = set()
    names = {o.name for i, o in enumerate(oligos) if i not in degenerate}
    for line in open(bowtie_hits):
        name, strand, ref, pos = line.split("\t")[:4]
        if name in names:
            theirs.add((name, ref, int(pos), strand))
    return {"engine_s": seconds, "hits_all": engine.stats["hits"], "compared": len(theirs),
            "equal": ours == theirs, "only_ours": len(ours - theirs), "only_bowtie": len(theirs - ours)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--skip-bowtie", action="store_true")
    ap.add_argument("--repeat", type=int, default=10)
    args = ap.parse_args()
    genomes, reads, oligos = prepare()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"input: {len(oligos)} oligos x 3,585 genomes (107 Mb)")
    # warm the numba cache once (compilation is a one-off cost, reported separately)
    cold, _ = timed(check_cmd(SARS / "NC_045512.2.fasta", WORK / "warmup", 2))
    print(f"first run on a tiny input (numba compile/cache load): {cold:.1f} s")
    rows = []
    if not args.skip_bowtie and shutil.which("bowtie-build"):
        b_wall, b_rss = timed(["bowtie-build", "--threads", "2", str(genomes), str(WORK / "idx")])
        with open(WORK / "bowtie.hits", "w") as fh:
            s_wall, s_rss = timed(["bowtie", "-p", "2", "-f", "-v", "3", "-a", "--suppress", "6,7,8",
                                   str(WORK / "idx"), str(reads)], stdout=fh)
        n_bowtie = sum(1 for _ in open(WORK / "bowtie.hits"))
        rows.append(("bowtie-build + bowtie -v 3 -a", b_wall + s_wall, max(b_rss, s_rss), f"{n_bowtie:,} hits"))
    o_wall, o_rss = timed(check_cmd(PANGO, WORK / "check-g0", 0))
    rows.append(("oligolab check, mismatch-only (-k 3 --max-gaps 0)", o_wall, o_rss, "all outputs + report"))
    g_wall, g_rss = timed(check_cmd(PANGO, WORK / "check-g2", 2))
    rows.append(("oligolab check, default (-k 3, 2 gap nt)", g_wall, g_rss, "all outputs + report"))
    print(f"\n| run | wall (s) | peak RSS (MiB) | note |\n|---|---:|---:|---|")
    for name, wall, rss, note in rows:
        print(f"| {name} | {wall:.1f} | {rss:.0f} | {note} |")
    if len(rows) == 3:
        print(f"\nratio bowtie / oligolab (mismatch-only): {rows[0][1] / o_wall:.1f}x faster end to end")
        par = engine_parity(genomes, oligos, WORK / "bowtie.hits")
        print(f"engine only (mismatch-only): {par['engine_s']:.1f} s, {par['hits_all']:,} sites; parity with bowtie "
              f"on {par['compared']:,} hits of non-degenerate oligos: {'EQUAL' if par['equal'] else 'DIFFERENT'} "
              f"(only oligolab {par['only_ours']}, only bowtie {par['only_bowtie']})")
    # scaling
    one, one_meta = repeated(1)
    g_wall, g_rss = timed(check_cmd(one, WORK / "check-x1", 2, one_meta))
    big, meta = repeated(args.repeat)
    x_wall, x_rss = timed(check_cmd(big, WORK / "check-x", 2, meta))
    print(f"\n| collection | genomes | wall (s) | peak RSS (MiB) |\n|---|---:|---:|---:|")
    print(f"| Pango x1 (ids _rep1, lineages from metadata) | 3,585 | {g_wall:.1f} | {g_rss:.0f} |")
    print(f"| Pango x{args.repeat} (synthetic repeat) | {3585 * args.repeat:,} | {x_wall:.1f} | {x_rss:.0f} |")
    print(f"\ntime ratio x{args.repeat}/x1: {x_wall / g_wall:.2f} (linear = {args.repeat}); "
          f"RSS ratio: {x_rss / g_rss:.2f}; peak under 1 GiB: {x_rss < 1024}")


if __name__ == "__main__":
    main()
