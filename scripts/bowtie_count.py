#!/usr/bin/env python3
"""An independent count of the genomes an assay detects, by bowtie 1 instead of oligolab's engine and rules.

Every oligo of an assay table (tails stripped, FIP/BIP split into their halves, degenerate oligos expanded into
every concrete sequence) is aligned with ``bowtie -v K -a`` to the genomes; a genome counts as detected when
every required primer role (not LF/LB) has a site with at most ``--primer-mm`` mismatches anywhere and, for
CRISPR assays, some guide has a site with at most ``--guide-mm`` mismatches, all within ``--max-amplicon`` nt
(forward and reverse primers on opposite strands). This is the criterion of ADAPT's held-out evaluation
(guide <= 1 mismatch, primers <= 3): sequence only, no 3'-end rule, no PAM/PFS, no thermodynamics, so it is more
lenient than `oligolab check`.

Collections of near-identical genomes (the Pango consensus genomes) can be indexed by the assays' regions only
(:func:`build_region_index`, :func:`count_regions`): each region cut from every genome, identical slices once.

Used by scripts/evaluate_design_holdout.py; run alone with
``python scripts/bowtie_count.py ASSAYS.tsv GENOMES.fasta[.zst] --index-dir DIR``.
"""

from __future__ import annotations

import argparse
import itertools
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import pandas as pd  # noqa: E402

from oligolab.knowledge import strip_known_tail  # noqa: E402
from oligolab.sequences import IUPAC_MASK, read_fasta  # noqa: E402

OPTIONAL = ("LF", "LB")
MAX_VARIANTS = 64  #: concrete sequences a degenerate oligo may expand to


def build_index(genomes: Path, index_dir: Path, threads: int = 2) -> tuple[Path, list[str]]:
    """A bowtie index of the genomes (gaps removed), built once and reused: (index prefix, genome ids)."""
    index_dir.mkdir(parents=True, exist_ok=True)
    fasta, prefix, ids_file = index_dir / "genomes.fa", index_dir / "genomes", index_dir / "ids.txt"
    if ids_file.exists() and (index_dir / "genomes.1.ebwt").exists():
        return prefix, ids_file.read_text().split()
    ids = []
    with open(fasta, "w") as fh:
        for rec in read_fasta(genomes):
            ids.append(rec.id)
            fh.write(f">{rec.id}\n{rec.text().replace('-', '')}\n")
    subprocess.run(["bowtie-build", "-q", "--threads", str(threads), str(fasta), str(prefix)], check=True)
    ids_file.write_text("\n".join(ids) + "\n")
    return prefix, ids


def expand(seq: str) -> list[str]:
    """Every concrete sequence of an IUPAC oligo (bowtie counts a code as a mismatch)."""
    choices = [[b for b in "ACGT" if IUPAC_MASK[ch] & IUPAC_MASK[b]] for ch in seq.upper()]
    n = 1
    for c in choices:
        n *= len(c)
    if n > MAX_VARIANTS:
        raise SystemExit(f"oligo {seq} expands to {n} sequences (limit {MAX_VARIANTS})")
    return ["".join(p) for p in itertools.product(*choices)]


def searched(table: pd.DataFrame) -> list[tuple[str, str, str, str]]:
    """(assay, role, read name, sequence) for every concrete sequence to align."""
    out = []
    for r in table.itertuples(index=False):
        seq = str(r.sequence).replace(" ", "")
        parts = [("", seq)]
        if "|" in seq:
            a, b = seq.split("|")
            names = ("F1c", "F2") if r.role == "FIP" else ("B1c", "B2")
            parts = list(zip(names, (a.upper(), b.upper())))
        for part, s in parts:
            _, core = strip_known_tail(s.upper()) if r.role != "crRNA" else ("", s.upper())
            role = part or r.role
            for k, v in enumerate(expand(core)):
                out.append((r.assay, role, f"{r.assay}\t{role}\t{r.oligo}\t{k}", v))
    return out


def align(prefix: Path, reads: list[tuple[str, str, str, str]], k: int, workdir: Path, threads: int = 2
          ) -> dict[tuple[str, str], list[tuple[int, int, str]]]:
    """bowtie -v k -a hits: (assay, role) -> [(genome index, position, strand)]."""
    fa = workdir / f"reads-v{k}.fa"
    names = {}
    with open(fa, "w") as fh:
        for i, (assay, role, _, seq) in enumerate(reads):
            names[f"r{i}"] = (assay, role)
            fh.write(f">r{i}\n{seq}\n")
    proc = subprocess.run(["bowtie", "-p", str(threads), "-f", "-v", str(k), "-a", "--suppress", "6,7,8",
                           str(prefix), str(fa)], check=True, capture_output=True, text=True)
    hits: dict[tuple[str, str], list[tuple[int, int, str]]] = defaultdict(list)
    for line in proc.stdout.splitlines():
        name, strand, ref, pos = line.split("\t")[:4]
        hits[names[name]].append((ref, int(pos), strand))
    return hits


def detected(table: pd.DataFrame, primer_hits, guide_hits, genome_ids: list[str], max_amplicon: int,
             per_genome: bool = False) -> dict:
    """Genomes detected per assay under the lenient criterion of the module docstring (their count, or with
    ``per_genome`` the ids of the sequences where the assay forms)."""
    out = {}
    for assay, sub in table.groupby("assay", sort=False):
        roles = set()
        for r in sub.itertuples(index=False):
            if "|" in str(r.sequence):
                roles |= {"F1c", "F2"} if r.role == "FIP" else {"B1c", "B2"}
            elif r.role not in OPTIONAL:
                roles.add(r.role)
        primer_roles = sorted(roles - {"crRNA"})
        sites: dict[str, dict[str, list[tuple[int, str]]]] = defaultdict(lambda: defaultdict(list))
        for role in primer_roles:
            for g, pos, strand in primer_hits.get((assay, role), []):
                sites[g][role].append((pos, strand))
        if "crRNA" in roles:
            for g, pos, strand in guide_hits.get((assay, "crRNA"), []):
                sites[g]["crRNA"].append((pos, strand))
        found = [g for g in genome_ids if _forms(sites.get(g, {}), sorted(roles), max_amplicon)]
        out[assay] = found if per_genome else len(found)
    return out


def _forms(sites: dict[str, list[tuple[int, str]]], roles: list[str], max_amplicon: int) -> bool:
    """Some site of every role lies within one window of ``max_amplicon`` nt (forward and reverse opposite)."""
    if any(not sites.get(r) for r in roles):
        return False
    anchor = roles[0]
    for pos, strand in sites[anchor]:
        lo, hi = pos - max_amplicon, pos + max_amplicon
        ok = all(any(lo <= p <= hi for p, _ in sites[r]) for r in roles)
        if ok and {"forward", "reverse"} <= set(roles):
            ok = any(s1 != s2 for _, s1 in sites["forward"] for _, s2 in sites["reverse"])
        if ok:
            return True
    return False


def assay_hits(assays_tsv: Path, prefix: Path, workdir: Path, primer_mm: int, guide_mm: int
               ) -> tuple[pd.DataFrame, dict, dict]:
    """The assay table and bowtie's hits of its primers (<= primer_mm) and guides (<= guide_mm) on ``prefix``."""
    table = pd.read_csv(assays_tsv, sep="\t", dtype=str).fillna("")
    reads = searched(table)
    workdir.mkdir(parents=True, exist_ok=True)
    primers = [r for r in reads if r[1] != "crRNA"]
    guides = [r for r in reads if r[1] == "crRNA"]
    primer_hits = align(prefix, primers, primer_mm, workdir) if primers else {}
    guide_hits = align(prefix, guides, guide_mm, workdir) if guides else {}
    return table, primer_hits, guide_hits


def count(assays_tsv: Path, prefix: Path, genome_ids: list[str], workdir: Path, *, primer_mm: int = 3,
          guide_mm: int = 1, max_amplicon: int = 500) -> dict[str, int]:
    """Genomes detected per assay of ``assays_tsv`` (the project's assay table)."""
    table, primer_hits, guide_hits = assay_hits(assays_tsv, prefix, workdir, primer_mm, guide_mm)
    return detected(table, primer_hits, guide_hits, genome_ids, max_amplicon)


def build_region_index(genomes: Path, tables: list[Path], reference: Path, index_dir: Path, flank: int = 1000,
                       threads: int = 2) -> tuple[Path, dict[str, list[str]]]:
    """A small bowtie index for collections of near-identical genomes: only the regions where the assays sit.

    The assays' oligos are aligned to the reference (``-v 3``); each cluster of sites (within 2 x ``flank`` nt) plus
    ``flank`` nt on each side is cut from every genome at the same coordinates (the genomes are within a few dozen
    nt of the reference's length, so the flank absorbs their indels), identical slices are indexed once. Returns
    (index prefix, slice name -> genome ids holding it). An assay with no oligo site in the reference has no
    region and counts 0. Sequence only, like :func:`build_index`; the count per genome is the same whenever the
    genome's sites lie within ``flank`` nt of the reference's (all amplicons here are under 500 nt)."""
    index_dir.mkdir(parents=True, exist_ok=True)
    ref = next(iter(read_fasta(reference))).text().replace("-", "")
    ref_dir = index_dir / "reference"
    ref_prefix, _ = build_index(reference, ref_dir, threads)
    loci: list[int] = []
    for k, tsv in enumerate(tables):
        table = pd.read_csv(tsv, sep="\t", dtype=str).fillna("")
        for hits in align(ref_prefix, searched(table), 3, ref_dir, threads).values():
            loci += [pos for _, pos, _ in hits]
    regions: list[list[int]] = []
    for pos in sorted(set(loci)):
        if regions and pos - regions[-1][1] <= 2 * flank:
            regions[-1][1] = pos
        else:
            regions.append([pos, pos])
    spans = [(max(0, a - flank), min(len(ref), b + 100 + flank)) for a, b in regions]
    slices: dict[str, list[str]] = {}
    names: dict[str, str] = {}
    for rec in read_fasta(genomes):
        seq = rec.text().replace("-", "")
        for r, (a, b) in enumerate(spans):
            piece = seq[a:b]
            name = names.setdefault(f"{r}:{piece}", f"s{len(names)}")
            slices.setdefault(name, []).append(rec.id)
    fasta, prefix = index_dir / "slices.fa", index_dir / "slices"
    with open(fasta, "w") as fh:
        for key, name in names.items():
            fh.write(f">{name}\n{key.split(':', 1)[1]}\n")
    subprocess.run(["bowtie-build", "-q", "--threads", str(threads), str(fasta), str(prefix)], check=True)
    return prefix, slices


def count_regions(assays_tsv: Path, prefix: Path, slices: dict[str, list[str]], genome_ids: list[str],
                  workdir: Path, *, primer_mm: int = 3, guide_mm: int = 1, max_amplicon: int = 500
                  ) -> dict[str, int]:
    """Genomes detected per assay on a region index (:func:`build_region_index`): a genome counts when one of
    its slices holds every role as :func:`detected` requires."""
    table, primer_hits, guide_hits = assay_hits(assays_tsv, prefix, workdir, primer_mm, guide_mm)
    wanted = set(genome_ids)
    per_slice = detected(table, primer_hits, guide_hits, list(slices), max_amplicon, per_genome=True)
    return {assay: len({g for sl in found for g in slices[sl]} & wanted) for assay, found in per_slice.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("assays", type=Path)
    ap.add_argument("genomes", type=Path)
    ap.add_argument("--index-dir", type=Path, default=ROOT / "out" / "bowtie-index")
    ap.add_argument("--primer-mm", type=int, default=3)
    ap.add_argument("--guide-mm", type=int, default=1)
    args = ap.parse_args()
    prefix, ids = build_index(args.genomes, args.index_dir)
    res = count(args.assays, prefix, ids, args.index_dir / "work", primer_mm=args.primer_mm, guide_mm=args.guide_mm)
    for assay, n in res.items():
        print(f"{assay}\t{n}\t{len(ids)}")


if __name__ == "__main__":
    main()
