"""Off-targets of siRNA candidates against a transcriptome index (:mod:`.index`) and mismatches in orthologs.

Near-perfect matches: every candidate's 19-nt guide target (the reverse complement of guide nt 1-19) is searched
with up to ``k`` mismatches on both strands of every indexed transcript by the project's seed-index engine. A hit on
the transcript's own strand is a *guide* off-target (the guide pairs there); a hit on the other strand means the
transcript holds the guide's own sequence, a *passenger* off-target. Hits in the target's gene are not
off-targets. Seed matches: the guide seed (nt 2-8) and the passenger seed are looked up in the index's seed table
(8mer/7mer-m8/7mer-A1/6mer sites in 3' UTRs, predicted repression summed over genes), minus the target gene's own
contribution.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..engine import PatternSet, SeedEngine, search
from ..sequences import encode, kmer_code
from .chemistry import rc_rna
from .index import TranscriptIndex, seed_table
from .transcripts import SITE, Transcript, read_transcripts, region_of, species_of

ORTHOLOG_MAX_MM = 4  #: mismatches reported for ortholog sites ('>4' beyond)


@dataclass
class NearPerfect:
    """Near-perfect matches of all candidates (rows) in the index."""

    candidate: np.ndarray  #: index into the candidate list
    strand: np.ndarray  #: 0 guide off-target, 1 passenger off-target
    transcript: np.ndarray  #: row of the index table
    position: np.ndarray  #: 0-based start of the match on the transcript
    mismatches: np.ndarray

    def subset(self, lo: int, hi: int) -> NearPerfect:
        """The hits of candidates lo..hi-1, renumbered from 0."""
        m = (self.candidate >= lo) & (self.candidate < hi)
        return NearPerfect(
            self.candidate[m] - lo, self.strand[m], self.transcript[m], self.position[m], self.mismatches[m]
        )


def guide_targets(guides: list[str]) -> list[str]:
    """The 19-nt target (DNA, mRNA sense) of each guide's nt 1-19."""
    return [rc_rna(g[:SITE]).replace("U", "T") for g in guides]


def near_perfect(
    index: TranscriptIndex, guides: list[str], max_mismatches: int, threads: int | None, say: Callable[[str], None]
) -> NearPerfect:
    """Search the guide targets of all candidates in the index, chunk by chunk (memory stays bounded)."""
    targets = guide_targets(guides)
    ps = PatternSet.from_oligos([str(i) for i in range(len(targets))], targets)
    engine = SeedEngine(ps, max_mismatches, threads=threads)
    parts = []
    try:
        for t0, t1, c0, c1 in index.chunks():
            say(f"near-perfect off-targets: transcripts {t0:,}-{t1:,} of {len(index.ends):,}")
            hits = engine.search_codes(np.ascontiguousarray(index.codes[c0:c1]), index.ends[t0:t1] - c0)
            s = engine.sites
            pat = s.pattern[hits.site].astype(np.int64)
            parts.append(
                (
                    pat // 2,
                    pat % 2,
                    hits.genome.astype(np.int64),
                    hits.pos.astype(np.int64),
                    (s.mismatches + s.unknown)[hits.site].astype(np.int64),
                )
            )
    finally:
        engine.close()
    if not parts:
        return NearPerfect(*(np.zeros(0, np.int64) for _ in range(5)))
    return NearPerfect(*(np.concatenate([p[i] for p in parts]) for i in range(5)))


def gene_mask(index: TranscriptIndex, target: Transcript, gene: str | None) -> np.ndarray:
    """Index rows that belong to the target: its own id (with or without version) or its gene."""
    ids = index.table["id"].astype(str)
    mask = (ids == target.id) | (ids.str.split(".").str[0] == target.id.split(".")[0])
    if gene:
        mask |= (index.table["gene"] == gene) | (index.table["gene_id"] == gene)
        own_genes = set(index.table.loc[mask, "gene_id"]) - {""}
        mask |= index.table["gene_id"].isin(own_genes)
    return mask.to_numpy()


@dataclass
class SeedMatches:
    """Seed-match figures per candidate (guide and passenger seed)."""

    burden: np.ndarray  #: predicted repression summed over off-target genes (genes' worth of mRNA)
    relative: np.ndarray  #: burden / the mean burden of all 16,384 seeds in the index (1 = a typical seed)
    sites: np.ndarray  #: (n, 4) 3' UTR sites by type, SITE_TYPES order
    genes: np.ndarray  #: off-target genes with at least one site
    passenger_burden: np.ndarray
    seed_codes: np.ndarray  #: 7-mer code of each guide seed's target


def seed_code(guide: str) -> int:
    """Code of the target of guide nt 2-8 (the 7-mer the seed pairs with, mRNA sense)."""
    return kmer_code(rc_rna(guide[1:8]).replace("U", "T"))


def seed_matches(
    index: TranscriptIndex | None, guides: list[str], passengers: list[str], own_rows: np.ndarray | None
) -> SeedMatches:
    """Look up each seed in the index's seed table and take out the target gene's own 3' UTR sites."""
    n = len(guides)
    codes = np.array([seed_code(g) for g in guides], dtype=np.int64)
    if index is None:
        zero = np.zeros(n)
        return SeedMatches(zero, zero, np.zeros((n, 4), np.int64), np.zeros(n, np.int64), zero, codes)
    pcodes = np.array([seed_code(p) for p in passengers], dtype=np.int64)
    burden = index.seeds["burden"].copy()
    sites = index.seeds["sites"].copy()
    genes = index.seeds["genes_hit"].copy()
    if own_rows is not None and own_rows.any():
        own = own_seed_table(index, own_rows)
        burden -= own["burden"]
        sites -= own["sites"]
        genes -= own["genes_hit"]
    mean = float(index.meta.get("seed_model", {}).get("mean_burden") or 0.0)
    rel = burden[codes] / mean if mean > 0 else np.zeros(n)
    return SeedMatches(
        np.maximum(burden[codes], 0.0),
        np.maximum(rel, 0.0),
        np.maximum(sites[codes], 0),
        np.maximum(genes[codes], 0),
        np.maximum(burden[pcodes], 0.0),
        codes,
    )


def own_seed_table(index: TranscriptIndex, rows: np.ndarray) -> dict[str, np.ndarray]:
    """The seed table of the target gene's transcripts alone (to subtract from the index's)."""
    weights = index.meta["seed_model"]["log2_fold_change"]
    min_dist = int(index.meta["seed_model"]["min_distance_from_stop_nt"])
    sub = index.table[rows].copy()
    sub["gene_id"] = "target"
    return seed_table(index.codes, sub, index.starts[rows], weights, min_dist)


def seed_offtarget_rows(
    index: TranscriptIndex, seed_codes: list[int] | np.ndarray, own_rows: np.ndarray, candidates: list[int]
) -> list[tuple[int, str, str, float]]:
    """(candidate, transcript id, gene, predicted repression) of the genes most repressed by each listed
    candidate's guide seed, the target's own gene left out."""
    out = []
    top_tx, top_rep = index.seeds["top_tx"], index.seeds["top_rep"]
    for c in candidates:
        for t, rep in zip(top_tx[seed_codes[c]], top_rep[seed_codes[c]]):
            if t < 0 or own_rows[t]:
                continue
            row = index.table.iloc[int(t)]
            out.append((c, str(row["id"]), str(row["gene"] or row["gene_id"]), round(float(rep), 4)))
    return out


def hits_frame(
    index: TranscriptIndex, np_hits: NearPerfect, keep: np.ndarray, site_positions: np.ndarray
) -> pd.DataFrame:
    """Near-perfect matches as a table: candidate site, strand, transcript, gene, region of the match on the
    off-target transcript, 1-based position, mismatches."""
    cand, strand, tx = np_hits.candidate[keep], np_hits.strand[keep], np_hits.transcript[keep]
    pos, mm = np_hits.position[keep], np_hits.mismatches[keep]
    table = index.table
    regions = [
        region_of(Transcript("", "", "", (int(a), int(b)) if a >= 0 else None, ""), int(p))
        for a, b, p in zip(table["cds_start"].to_numpy()[tx], table["cds_end"].to_numpy()[tx], pos)
    ]
    df = pd.DataFrame(
        {
            "candidate": cand,
            "strand": np.where(strand == 0, "guide", "passenger"),
            "transcript": table["id"].to_numpy()[tx],
            "gene": table["gene"].to_numpy()[tx],
            "description": table["description"].to_numpy()[tx],
            "region": regions,
            "position": pos + 1,
            "mismatches": mm,
        }
    )
    df["site_position"] = site_positions[df["candidate"].to_numpy()] + 1 if len(df) else []
    return df.sort_values(
        ["site_position", "strand", "mismatches", "transcript", "position"], kind="stable"
    ).reset_index(drop=True)


def count_offtargets(df: pd.DataFrame, n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Off-target transcripts per candidate and mismatch count, guide and passenger (a transcript once)."""
    guide_mm = np.zeros((n, k + 1), dtype=np.int64)
    pass_mm = np.zeros((n, k + 1), dtype=np.int64)
    if len(df):
        uniq = df.drop_duplicates(["candidate", "strand", "transcript", "mismatches"])
        for strand, arr in (("guide", guide_mm), ("passenger", pass_mm)):
            sub = uniq[uniq["strand"] == strand]
            np.add.at(arr, (sub["candidate"].to_numpy(), sub["mismatches"].to_numpy()), 1)
    return guide_mm, pass_mm


def ortholog_mismatches(guides: list[str], paths: list[str | Path]) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Fewest mismatches of each guide target (sense) in each ortholog transcript, '>4' when none within 4;
    columns named ``mm_<species>_<id>``; and the species of each column."""
    cols: dict[str, np.ndarray] = {}
    species: dict[str, str] = {}
    if not paths:
        return cols, species
    targets = guide_targets(guides)
    ps = PatternSet.from_oligos([str(i) for i in range(len(targets))], targets)
    for path in paths:
        for t in read_transcripts(path, find_cds=False):
            hits, st = search(ps, [encode(t.seq)], ORTHOLOG_MAX_MM, 0, threads=1)
            best = np.full(len(targets), 99, dtype=np.int64)
            if len(hits):
                cand = st.pattern[hits.site] // 2
                mm = (st.mismatches + st.unknown)[hits.site]
                sel = st.pattern[hits.site] % 2 == 0  # the ortholog mRNA must hold the site in sense
                np.minimum.at(best, cand[sel], mm[sel])
            sp = species_of(t.description) or "ortholog"
            label = f"mm_{sp}_{t.id}"
            cols[label] = np.where(best <= ORTHOLOG_MAX_MM, best.astype(str), ">4").astype(object)
            species[label] = sp
    return cols, species
