"""Guide sets: the few guides that together detect the most genomes, within a window small enough to sit
inside one amplicon (guide multiplexing, as in ADAPT's minimize-guides objective).

Per window the canonical greedy set cover is used: repeatedly take the guide that detects the most genomes not
yet detected (ties: more genomes where it binds or is degraded, then the more conserved site, then the
earlier one), until every genome is detected or the guide budget is spent. Bitsets of genomes (one bit per
genome) make each step a handful of vectorised byte operations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .candidates import POPCOUNT8, GuideCandidates


@dataclass
class GuideSet:
    """Guides chosen for one window."""

    members: list[int]  #: candidate indices, in the order chosen
    covered: np.ndarray  #: packed bitset of genomes where at least one member binds
    n_covered: int
    n_risk: int  #: genomes where the best member binds or is degraded (a tie-break)
    start: int  #: first reference column of the members' sites
    end: int  #: end (exclusive) of the members' sites
    strand: int  #: strand shared by the members (-1 when mixed)
    variable_columns: int  #: columns under the members' sites where some genome differs from the consensus

    @property
    def key(self) -> tuple:
        return tuple(sorted(self.members))


def popcount(bits: np.ndarray) -> np.ndarray:
    """Set bits per row of a packed bitset array (or of one bitset)."""
    return POPCOUNT8[bits].sum(axis=-1)


def site_variability(cands: GuideCandidates, differ: np.ndarray) -> np.ndarray:
    """Variable columns (some genome differs from the consensus) under each candidate's site."""
    flag = (differ > 0).astype(np.int64)
    ps = np.concatenate([[0], np.cumsum(flag)])
    return ps[cands.column + cands.footprint] - ps[cands.column]


def greedy_cover(cands: GuideCandidates, idx: np.ndarray, max_guides: int, tiebreak: np.ndarray,
                 n_genomes: int) -> tuple[list[int], np.ndarray]:
    """Greedy set cover among candidates ``idx``: (chosen, bitset of genomes bound by one of them)."""
    covered = np.zeros(cands.binds.shape[1], dtype=np.uint8)
    chosen: list[int] = []
    sub_b = cands.binds[idx]
    n_risk = cands.n_risk[idx].astype(np.float64)
    avail = np.ones(len(idx), dtype=bool)
    n_cov = 0
    for _ in range(max_guides):
        gain = POPCOUNT8[sub_b & ~covered].sum(axis=1)
        gain = np.where(avail, gain, -1)
        if gain.max() <= 0:
            if chosen:
                break
        # lexicographic: gain, then genomes bound-or-degraded, then the tie-break score (higher better)
        score = gain.astype(np.float64) * 1e6 + n_risk + tiebreak[idx] * 1e-3
        score = np.where(avail, score, -np.inf)
        best = int(np.argmax(score))
        if gain[best] <= 0 and chosen:
            break
        chosen.append(int(idx[best]))
        avail[best] = False
        covered |= sub_b[best]
        n_cov = int(POPCOUNT8[covered].sum())
        if n_cov >= n_genomes:
            break
    return chosen, covered


def window_guide_sets(cands: GuideCandidates, window: int, step: int, max_guides: int, tiebreak: np.ndarray,
                      variability: np.ndarray, *, same_strand: bool = False, top: int = 48,
                      columns: tuple[int, int] | None = None, exclude: np.ndarray | None = None) -> list[GuideSet]:
    """Guide sets for windows of ``window`` reference columns every ``step`` columns.

    Only the ``top`` candidates of a window (by genomes bound, then tie-break) enter the greedy cover, which
    keeps each window to a few vectorised operations. ``same_strand`` makes every set single-stranded (Cas13a:
    all guides must pair with the one T7 transcript); ``exclude`` masks candidates out (off-target guides)."""
    if not len(cands):
        return []
    n = cands.n_genomes
    start_col = cands.column
    end_col = cands.column + cands.footprint
    lo = int(start_col.min()) if columns is None else columns[0]
    hi = int(end_col.max()) if columns is None else columns[1]
    order = np.argsort(start_col, kind="stable")
    sorted_start = start_col[order]
    out: list[GuideSet] = []
    seen: set[tuple] = set()
    strands = (0, 1) if same_strand else (None,)
    rank_score = cands.n_binds.astype(np.float64) * 1e3 + tiebreak
    if exclude is not None and exclude.all():
        return []
    for s in range(lo, max(lo + 1, hi - window + 1), step):
        a = np.searchsorted(sorted_start, s, side="left")
        b = np.searchsorted(sorted_start, s + window, side="left")
        if b <= a:
            continue
        idx_all = order[a:b]
        idx_all = idx_all[end_col[idx_all] <= s + window]
        if exclude is not None:
            idx_all = idx_all[~exclude[idx_all]]
        for strand in strands:
            idx = idx_all if strand is None else idx_all[cands.strand[idx_all] == strand]
            if not len(idx):
                continue
            if len(idx) > top:
                keep = np.argpartition(-rank_score[idx], top - 1)[:top]
                idx = idx[keep]
            chosen, covered = greedy_cover(cands, idx, max_guides, tiebreak, n)
            if not chosen:
                continue
            key = tuple(sorted(chosen))
            if key in seen:
                continue
            seen.add(key)
            st = {int(cands.strand[c]) for c in chosen}
            out.append(GuideSet(chosen, covered, int(POPCOUNT8[covered].sum()),
                                int(max(cands.n_risk[c] for c in chosen)),
                                int(min(start_col[c] for c in chosen)), int(max(end_col[c] for c in chosen)),
                                st.pop() if len(st) == 1 else -1, int(sum(variability[c] for c in chosen))))
    return out


def rank_guide_sets(sets: list[GuideSet]) -> list[GuideSet]:
    """Most genomes detected first, then fewer guides, fewer variable columns, compact span."""
    return sorted(sets, key=lambda g: (-g.n_covered, len(g.members), g.variable_columns, -g.n_risk,
                                       g.end - g.start, g.start))
