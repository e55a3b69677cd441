"""SYNTHETIC genome collections for scale tests of `oligolab check` (labelled: ids start with 'SYNTHETIC-').

Each genome is a shipped Pango lineage consensus (data/sars-cov-2/pango-consensus-genomes.fasta.zst, aligned to
the reference) with variation at rates taken from the shipped data or from how surveillance genomes look:

* point mutations: a Poisson number per genome (mean 3, the private mutations a sequenced genome carries beyond
  its lineage's consensus), half at positions where the shipped lineages themselves differ from the reference
  (recurrent sites), half anywhere; the new base drawn from the substitution spectrum observed between the shipped
  lineages and the reference (C>T dominates, as in SARS-CoV-2 generally);
* runs of N: 40 % of genomes have 1-4 runs of 150-450 nt (amplicon drop-outs of tiled-amplicon sequencing), and
  every genome loses 0-80 nt at its 5' end and 0-120 nt at its 3' end (untrimmed primer/adapter ends);
* indels: 3 % of genomes carry a deletion of 1-12 nt (in-frame 3, 6, 9 nt twice as often), 1 % an insertion of
  1-6 nt.

The same seed gives the same collection. Writes NAME.fasta.zst and NAME.metadata.tsv (id, lineage, date).

Run: python benchmarks/synthetic_genomes.py --genomes 1000000 --out benchmarks/_work/synthetic-1m
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
PANGO = ROOT / "data" / "sars-cov-2" / "pango-consensus-genomes.fasta.zst"
REFERENCE = ROOT / "data" / "sars-cov-2" / "NC_045512.2.fasta"
SEED = 20261205
BASES = b"ACGT"


def observed_variation(aligned: list[bytes], reference: bytes) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """(columns where some lineage differs from the reference by a base, per reference base the probabilities of
    each new base) from the shipped lineages."""
    ref = np.frombuffer(reference, dtype=np.uint8)
    variable = np.zeros(len(ref), dtype=bool)
    spectrum: Counter[tuple[int, int]] = Counter()
    for seq in aligned:
        s = np.frombuffer(seq, dtype=np.uint8)[: len(ref)]
        diff = (s != ref[: len(s)]) & np.isin(s, np.frombuffer(BASES, np.uint8))
        variable[: len(s)] |= diff
        for r, a in zip(ref[: len(s)][diff], s[diff]):
            spectrum[(int(r), int(a))] += 1
    probs = {}
    for r in BASES:
        counts = np.array([spectrum[(r, a)] if a != r else 0 for a in BASES], dtype=float) + 1.0
        counts[BASES.index(r)] = 0.0
        probs[r] = counts / counts.sum()
    return np.flatnonzero(variable), probs


def one_genome(base: bytes, rng: np.random.Generator, variable: np.ndarray, probs: dict[int, np.ndarray]) -> bytes:
    """A lineage consensus (aligned, '-' for deletions) with private variation, gaps removed."""
    seq = bytearray(base)
    n = len(seq)
    for _ in range(rng.poisson(3.0)):
        pos = int(rng.choice(variable)) if rng.random() < 0.5 and len(variable) else int(rng.integers(n))
        ref = seq[pos]
        if ref in BASES:
            seq[pos] = BASES[rng.choice(4, p=probs[ref])]
    if rng.random() < 0.40:
        for _ in range(int(rng.integers(1, 5))):
            start = int(rng.integers(0, n - 450))
            length = int(rng.integers(150, 451))
            seq[start:start + length] = b"N" * length
    u = rng.random()
    if u < 0.03:
        length = int(rng.choice([3, 6, 9])) if rng.random() < 0.5 else int(rng.integers(1, 13))
        start = int(rng.integers(200, n - 200))
        del seq[start:start + length]
    elif u < 0.04:
        start = int(rng.integers(200, n - 200))
        seq[start:start] = bytes(BASES[i] for i in rng.integers(0, 4, int(rng.integers(1, 7))))
    text = bytes(seq).replace(b"-", b"")
    return text[int(rng.integers(0, 81)): len(text) - int(rng.integers(0, 121))]


def write_collection(n_genomes: int, out: Path, seed: int = SEED) -> tuple[Path, Path]:
    """Write ``n_genomes`` SYNTHETIC genomes (zstd FASTA) and their metadata; returns both paths."""
    import zstandard

    from oligolab.sequences import read_fasta

    lineages = [(r.id, bytes(r.seq)) for r in read_fasta(PANGO, keep_gaps=True)]
    reference = bytes(next(iter(read_fasta(REFERENCE))).seq)
    variable, probs = observed_variation([s for _, s in lineages], reference)
    rng = np.random.default_rng(seed)
    fasta, meta = out.with_suffix(".fasta.zst"), out.with_suffix(".metadata.tsv")
    out.parent.mkdir(parents=True, exist_ok=True)
    first_day = dt.date(2023, 1, 1).toordinal()
    with open(fasta, "wb") as raw, zstandard.ZstdCompressor(level=3, threads=-1).stream_writer(raw) as fh, \
            open(meta, "w") as mh:
        mh.write("id\tlineage\tdate\n")
        for i in range(n_genomes):
            name, base = lineages[int(rng.integers(len(lineages)))]
            gid = f"SYNTHETIC-{i + 1:07d}"
            day = dt.date.fromordinal(first_day + int(rng.integers(0, 900))).isoformat()
            fh.write(b">" + gid.encode() + b"\n" + one_genome(base, rng, variable, probs) + b"\n")
            mh.write(f"{gid}\t{name}\t{day}\n")
    return fasta, meta


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--genomes", type=int, required=True)
    ap.add_argument("--out", type=Path, required=True, help="path stem (NAME): writes NAME.fasta.zst, NAME.metadata.tsv")
    ap.add_argument("--seed", type=int, default=SEED)
    args = ap.parse_args()
    fasta, meta = write_collection(args.genomes, args.out, args.seed)
    print(f"{args.genomes:,} SYNTHETIC genomes: {fasta} ({fasta.stat().st_size / 1e6:.0f} MB), {meta}")


if __name__ == "__main__":
    main()
