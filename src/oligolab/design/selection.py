"""Guide sets: the few guides that together detect the most genomes, within a window small enough to sit
inside one amplicon (guide multiplexing, as in ADAPT's minimize-guides objective), and that keep detecting
genomes the input does not contain.

Per window a greedy set cover: repeatedly take the guide with the largest expected gain, the genomes it adds
times the probability that an unseen genome keeps it binding (its *survival*, :mod:`.conservation`; ties: more
genomes where it binds or is degraded, then the earlier one), until every genome is detected or the guide
budget is spent. Guides left in the budget then add redundancy: a guide on a site that does not overlap the
chosen ones is added while it raises the set's survival (at least one guide keeps binding) by at least
``MIN_REDUNDANCY_GAIN``, so ``--max-guides`` buys robustness where one guide is fragile. Bitsets of genomes
(one bit per genome) make each step a handful of vectorised byte operations.
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
    survival: float = 1.0  #: P(an unseen genome keeps at least one member binding), independent sites

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


MIN_REDUNDANCY_GAIN = 0.01  #: survival a redundant guide must add to enter a set


def set_survival(survival: np.ndarray, members: list[int], cands: GuideCandidates | None = None) -> float:
    """P(at least one member keeps binding an unseen genome): sites that overlap count as one (the best of them),
    disjoint sites as independent."""
    if not members:
        return 0.0
    groups: list[list[int]] = []
    if cands is None:
        groups = [[m] for m in members]
    else:
        L = cands.enzyme.spacer_length
        for m in sorted(members, key=lambda m: int(cands.core_offset[m])):
            if groups and int(cands.core_offset[m]) < int(cands.core_offset[groups[-1][-1]]) + L:
                groups[-1].append(m)
            else:
                groups.append([m])
    return 1.0 - float(np.prod([1.0 - max(survival[m] for m in g) for g in groups]))


def greedy_cover(
    cands: GuideCandidates, idx: np.ndarray, max_guides: int, survival: np.ndarray, n_genomes: int
) -> tuple[list[int], np.ndarray]:
    """Greedy set cover among candidates ``idx`` by expected gain, then redundancy (see the module docstring):
    (chosen, bitset of genomes bound by one of them)."""
    covered = np.zeros(cands.binds.shape[1], dtype=np.uint8)
    chosen: list[int] = []
    sub_b = cands.binds[idx]
    n_risk = cands.n_risk[idx].astype(np.float64)
    surv = survival[idx]
    avail = np.ones(len(idx), dtype=bool)
    while len(chosen) < max_guides:
        gain = POPCOUNT8[sub_b & ~covered].sum(axis=1)
        if not (gain[avail] > 0).any():
            break
        score = np.where(avail & (gain > 0), gain * surv + n_risk * 1e-9, -np.inf)
        best = int(np.argmax(score))
        chosen.append(int(idx[best]))
        avail[best] = False
        covered |= sub_b[best]
        if int(POPCOUNT8[covered].sum()) >= n_genomes:
            break
    while chosen and len(chosen) < max_guides:
        best, best_gain = _redundant(cands, idx, avail, chosen, survival)
        if best < 0 or best_gain < MIN_REDUNDANCY_GAIN:
            break
        chosen.append(int(idx[best]))
        avail[best] = False
        covered |= sub_b[best]
    return chosen, covered


def _redundant(
    cands: GuideCandidates, idx: np.ndarray, avail: np.ndarray, chosen: list[int], survival: np.ndarray
) -> tuple[int, float]:
    """The available candidate whose site overlaps no chosen site and that raises the set's survival most."""
    now = set_survival(survival, chosen, cands)
    lo = cands.core_offset[idx]
    hi = lo + cands.enzyme.spacer_length
    free = avail.copy()
    for c in chosen:
        a = int(cands.core_offset[c])
        free &= (hi <= a) | (lo >= a + cands.enzyme.spacer_length)
    if not free.any():
        return -1, 0.0
    gain = np.where(free, 1.0 - (1.0 - now) * (1.0 - survival[idx]) - now, -1.0)
    best = int(np.argmax(gain))
    return best, float(gain[best])


def window_guide_sets(
    cands: GuideCandidates,
    window: int,
    step: int,
    max_guides: int,
    survival: np.ndarray,
    variability: np.ndarray,
    *,
    same_strand: bool = False,
    top: int = 48,
    columns: tuple[int, int] | None = None,
    exclude: np.ndarray | None = None,
) -> list[GuideSet]:
    """Guide sets for windows of ``window`` reference columns every ``step`` columns.

    Only the ``top`` candidates of a window (by genomes bound times survival) enter the greedy cover, which
    keeps each window to a few vectorised operations. ``same_strand`` makes every set single-stranded (RNA
    targets: all guides must pair with the one T7 transcript); ``exclude`` masks candidates out (off-target
    guides)."""
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
    rank_score = cands.n_binds.astype(np.float64) * survival
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
            chosen, covered = greedy_cover(cands, idx, max_guides, survival, n)
            if not chosen:
                continue
            key = tuple(sorted(chosen))
            if key in seen:
                continue
            seen.add(key)
            st = {int(cands.strand[c]) for c in chosen}
            out.append(
                GuideSet(
                    chosen,
                    covered,
                    int(POPCOUNT8[covered].sum()),
                    int(max(cands.n_risk[c] for c in chosen)),
                    int(min(start_col[c] for c in chosen)),
                    int(max(end_col[c] for c in chosen)),
                    st.pop() if len(st) == 1 else -1,
                    int(sum(variability[c] for c in chosen)),
                    set_survival(survival, chosen, cands),
                )
            )
    return out


def rank_guide_sets(sets: list[GuideSet], n_genomes: int, environment: np.ndarray | None = None) -> list[GuideSet]:
    """Best first by the expected share of genomes, present and unseen, the set would detect: genomes covered
    times the set's survival times ``environment`` (per set: the survival of the best primer sites around it);
    then fewer guides, fewer variable columns, compact span."""
    env = np.ones(len(sets)) if environment is None else environment

    def key(k: int) -> tuple:
        g = sets[k]
        return (
            -round(g.n_covered / max(1, n_genomes) * g.survival * float(env[k]), 6),
            len(g.members),
            g.variable_columns,
            -g.n_risk,
            g.end - g.start,
            g.start,
        )

    return [sets[k] for k in sorted(range(len(sets)), key=key)]
