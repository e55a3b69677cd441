"""Off-targets of siRNA candidates: near-perfect matches of guide and passenger in an off-target transcript set
(the project's seed-index engine), seed matches in 3' UTRs, and mismatches in ortholog transcripts.

A candidate is its 19-nt site (mRNA sense). A *guide* off-target is a transcript holding the site (the guide
pairs with it); a *passenger* off-target holds the site's reverse complement. The seed is guide positions 2-8,
whose target is site positions 12-18.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numba as nb
import numpy as np
import pandas as pd

from ..engine import PatternSet, SeedEngine, pack_batch, search
from ..sequences import encode, kmer_code, reverse_complement
from .transcripts import Transcript, longest_orf_codes, read_transcripts, species_of

BATCH_NT = 8_000_000  #: nt of off-target transcripts searched per engine call
ORTHOLOG_MAX_MM = 4  #: mismatches reported for ortholog sites ('>4' beyond)


@nb.njit(cache=True, nogil=True)
def count_kmers_per_region(codes: np.ndarray, starts: np.ndarray, ends: np.ndarray, k: int, counts: np.ndarray,
                           last: np.ndarray, base_tag: int) -> None:
    """For each region [starts[r], ends[r]) count every k-mer once (``last`` remembers the region, tagged
    ``base_tag + r + 1``, that last counted a k-mer); k-mers holding a non-ACGT code are skipped."""
    mask = (1 << (2 * k)) - 1
    for r in range(starts.shape[0]):
        v = 0
        valid = 0
        tag = base_tag + r + 1
        for i in range(starts[r], ends[r]):
            c = codes[i]
            if c > 3:
                valid = 0
                v = 0
                continue
            v = ((v << 2) | c) & mask
            valid += 1
            if valid >= k and last[v] != tag:
                last[v] = tag
                counts[v] += 1


def site_patterns(positions: np.ndarray, sites: list[str]) -> PatternSet:
    """The candidates as engine patterns (oligo i = site i; pattern 2i = +, 2i+1 = -)."""
    return PatternSet.from_oligos([f"s{p + 1}" for p in positions], sites)


@dataclass
class OfftargetSearch:
    """Near-perfect matches and 3' UTR 7-mer counts of one pass over the off-target transcripts."""

    n_candidates: int
    max_mismatches: int
    guide_mm: np.ndarray = field(init=False)  #: (candidates, k + 1) off-target transcripts by mismatches
    pass_mm: np.ndarray = field(init=False)
    utr_counts: np.ndarray = field(init=False)  #: transcripts whose 3' UTR holds each 7-mer
    hit_rows: list[tuple] = field(default_factory=list)
    examined: int = 0
    guessed: int = 0  #: transcripts without a CDS annotation (3' UTR after the longest ORF)

    def __post_init__(self) -> None:
        self.guide_mm = np.zeros((self.n_candidates, self.max_mismatches + 1), dtype=np.int64)
        self.pass_mm = np.zeros((self.n_candidates, self.max_mismatches + 1), dtype=np.int64)
        self.utr_counts = np.zeros(4 ** 7, dtype=np.int64)
        self._utr_last = np.zeros(4 ** 7, dtype=np.int64)

    def add_batch(self, engine: SeedEngine, batch: list[Transcript]) -> None:
        """Search one batch of transcripts and count the 7-mers of their 3' UTRs."""
        encoded = [encode(t.seq) for t in batch]
        codes, ends = pack_batch(encoded)
        starts = np.concatenate([[0], ends[:-1] + 1])
        utr_lo = np.empty(len(batch), dtype=np.int64)
        for i, (t, c) in enumerate(zip(batch, encoded)):
            cds_end = t.cds[1] if t.cds else int(longest_orf_codes(c)[1])
            utr_lo[i] = starts[i] + max(cds_end, 0)
        count_kmers_per_region(codes, utr_lo, ends, 7, self.utr_counts, self._utr_last, self.examined)
        base = engine.n_genomes
        hits = engine.search_codes(codes, ends)
        s = engine.sites
        for g, p, sid in zip(hits.genome.tolist(), hits.pos.tolist(), hits.site.tolist()):
            t = batch[g - base]
            pat = int(s.pattern[sid])
            ci, strand = pat // 2, pat % 2
            mm = int(s.mismatches[sid] + s.unknown[sid])
            self.hit_rows.append((ci, "guide" if strand == 0 else "passenger", t.id, t.description, p + 1, mm))
        self.examined += len(batch)

    def count_hits(self) -> None:
        """Off-target transcripts per candidate, strand and mismatch count (a transcript counted once)."""
        seen = set()
        for ci, strand, tid, _, _, mm in self.hit_rows:
            key = (ci, strand, tid, mm)
            if key in seen:
                continue
            seen.add(key)
            (self.guide_mm if strand == "guide" else self.pass_mm)[ci, mm] += 1

    def hits_frame(self, positions: np.ndarray) -> pd.DataFrame:
        """One row per near-perfect match, sorted by candidate site, strand, mismatches, transcript."""
        df = pd.DataFrame(self.hit_rows, columns=["candidate", "strand", "transcript", "description", "position",
                                                  "mismatches"])
        if len(df):
            df["site_position"] = positions[df["candidate"].to_numpy()] + 1
            df = df.sort_values(["site_position", "strand", "mismatches", "transcript"], kind="stable")
        return df

    def utr_note(self) -> str:
        return (f"{self.guessed} of {self.examined} off-target transcripts had no CDS annotation: their 3' UTR is "
                "taken after the longest ORF" if self.guessed else "")


def search_offtargets(ps: PatternSet, paths: list[str | Path], excluded: Callable[[Transcript], bool],
                      max_mismatches: int, threads: int | None,
                      say: Callable[[str], None]) -> OfftargetSearch:
    """One pass over the off-target transcript files (streamed in batches of about ``BATCH_NT``)."""
    result = OfftargetSearch(ps.n_patterns // 2, max_mismatches)
    if paths:
        say("searching near-perfect off-targets and 3' UTR seed matches")
        engine = SeedEngine(ps, max_mismatches, threads=threads)
        try:
            for path in paths:
                batch: list[Transcript] = []
                size = 0
                for t in read_transcripts(path, find_cds=False):
                    if excluded(t):
                        continue
                    batch.append(t)
                    result.guessed += t.cds is None
                    size += len(t.seq)
                    if size > BATCH_NT:
                        result.add_batch(engine, batch)
                        batch = []
                        size = 0
                if batch:
                    result.add_batch(engine, batch)
        finally:
            engine.close()
    result.count_hits()
    return result


def seed_match_counts(sites: list[str], utr_counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Off-target transcripts whose 3' UTR holds the target of the guide seed (site nt 12-18) and of the
    passenger seed (the reverse complement of site nt 2-8)."""
    guide = np.array([utr_counts[kmer_code(s[11:18])] for s in sites], dtype=np.int64)
    passenger = np.array([utr_counts[kmer_code(reverse_complement(s[1:8]))] for s in sites], dtype=np.int64)
    return guide, passenger


def ortholog_mismatches(ps: PatternSet, paths: list[str | Path], n_sites: int) -> dict[str, np.ndarray]:
    """Fewest mismatches of each site (sense) in each ortholog transcript, '>4' when none within 4; columns
    named ``mm_<species>_<id>``."""
    cols: dict[str, np.ndarray] = {}
    for path in paths:
        for t in read_transcripts(path, find_cds=False):
            hits, st = search(ps, [encode(t.seq)], ORTHOLOG_MAX_MM, 0, threads=1)
            best = np.full(n_sites, 99, dtype=np.int64)
            if len(hits):
                cand = st.pattern[hits.site] // 2
                mm = (st.mismatches + st.unknown)[hits.site]
                strand = st.pattern[hits.site] % 2
                sel = strand == 0  # the ortholog mRNA must hold the site in sense
                np.minimum.at(best, cand[sel], mm[sel])
            label = f"mm_{species_of(t.description) or 'ortholog'}_{t.id}"
            cols[label] = np.where(best <= ORTHOLOG_MAX_MM, best.astype(str), ">4").astype(object)
    return cols
