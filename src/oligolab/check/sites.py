"""Facts about the distinct sites the engine found (mismatch positions from the oligo's 3' end, seed and PAM,
the genome bases opposite the oligo) and their calls by the shared site-call rule (:mod:`oligolab.sitecall`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..engine import SiteTable
from ..knowledge import RuleSet
from ..sequences import decode, reverse_complement
from ..sitecall import SiteDifferences, call_site, site_thermo
from .oligos import SearchOligo


def pattern_columns(m: int, gap1_pos: int, gap1_len: int, gap2_pos: int, gap2_len: int) -> np.ndarray:
    """Target offset of each pattern position in an alignment (-1 for pattern bases opposite a deletion)."""
    cols = np.empty(m, dtype=np.int64)
    t = 0
    events = {}
    if gap1_pos >= 0:
        events[gap1_pos] = gap1_len
    if gap2_pos >= 0:
        events[gap2_pos] = events.get(gap2_pos, 0) + gap2_len
    skip = 0
    for i in range(m):
        if i in events:
            length = events[i]
            if length > 0:
                t += length
            else:
                skip = -length
        if skip > 0:
            cols[i] = -1
            skip -= 1
            continue
        cols[i] = t
        t += 1
    return cols


@dataclass
class SiteFacts:
    """Everything about one distinct site, in oligo orientation (5'->3' of the searched sequence)."""

    oligo: int  #: search-oligo index
    strand: str  #: '+' when the genome's top strand reads like the oligo
    span: int
    mismatches: int
    unknown: int
    gaps: int
    cost: int
    mm_idx: np.ndarray  #: core indices (0-based, oligo orientation) of mismatches and unknowns
    mm_from_3p: tuple[int, ...]
    target: str  #: genome bases of the site read in the oligo's sense (core plus context)
    columns: np.ndarray  #: per pattern position (oligo orientation): target offset, -1 if deleted
    gap_core_idx: tuple[int, ...]  #: core positions where a gap event sits
    motif_bases: str
    motif_ok: bool
    motif_unknown: bool
    seed_mm: int


class SiteBook:
    """Lazily computed facts, thermodynamics and calls of sites (by engine site id)."""

    def __init__(self, oligos: list[SearchOligo], sites: SiteTable, rules: RuleSet):
        self.oligos = oligos
        self.sites = sites
        self.rules = rules
        self._facts: dict[int, SiteFacts] = {}
        self._calls: dict[tuple[int, str, str], tuple[int, str, float, float, float]] = {}

    def facts(self, sid: int) -> SiteFacts:
        f = self._facts.get(sid)
        if f is not None:
            return f
        s = self.sites
        pattern = int(s.pattern[sid])
        oi, strand = pattern // 2, pattern % 2
        so = self.oligos[oi]
        m = len(so.pattern)
        span = int(s.span[sid])
        codes = s.target[sid, :span]
        top = decode(codes)
        # pattern-orientation bit masks -> oligo orientation
        bits = np.array(
            [(int(s.mm_mask[sid]) >> i) & 1 or (int(s.unk_mask[sid]) >> i) & 1 for i in range(m)], dtype=bool
        )
        cols = pattern_columns(
            m, int(s.gap1_pos[sid]), int(s.gap1_len[sid]), int(s.gap2_pos[sid]), int(s.gap2_len[sid])
        )
        gap_pattern_pos = [p for p in (int(s.gap1_pos[sid]), int(s.gap2_pos[sid])) if p >= 0]
        if strand == 1:
            bits = bits[::-1]
            target = reverse_complement(top)
            # column of pattern position i maps to oligo position m-1-i, offset from the other end
            cols = np.where(cols[::-1] >= 0, span - 1 - cols[::-1], -1)
            gap_pattern_pos = [m - p for p in gap_pattern_pos]
        else:
            target = top
        core_lo, core_hi = so.context5, m - so.context3
        mm_idx = np.flatnonzero(bits[core_lo:core_hi])
        core_len = core_hi - core_lo
        gap_core = tuple(sorted(p - core_lo for p in gap_pattern_pos if core_lo <= p <= core_hi))
        motif_cols = list(range(0, core_lo)) + list(range(core_hi, m))
        motif_bases = "".join(target[cols[i]] if cols[i] >= 0 else "-" for i in motif_cols)
        motif_ok, motif_unknown = True, False
        if so.enzyme is not None and so.motif:
            ok = so.enzyme.motif_matches(motif_bases)
            motif_unknown = ok is None
            motif_ok = bool(ok) if ok is not None else False
        seed_lo, seed_hi = so.seed
        seed_mm = int(sum(1 for i in mm_idx if seed_lo - 1 <= i <= seed_hi - 1)) + int(
            sum(1 for g in gap_core if seed_lo - 1 <= g <= seed_hi)
        )
        f = SiteFacts(
            oi,
            "+-"[strand],
            span,
            int(s.mismatches[sid]),
            int(s.unknown[sid]),
            int(s.gaps[sid]),
            int(s.cost[sid]),
            mm_idx,
            tuple(int(core_len - i) for i in mm_idx),
            target,
            cols,
            gap_core,
            motif_bases,
            motif_ok,
            motif_unknown,
            seed_mm,
        )
        self._facts[sid] = f
        return f

    def core_span(self, f: SiteFacts) -> tuple[int, int]:
        """Offsets in ``f.target`` of the first and one past the last base opposite the oligo's core."""
        so = self.oligos[f.oligo]
        m = len(so.pattern)
        lo = so.context5
        hi = m - so.context3
        first = next((f.columns[i] for i in range(lo, hi) if f.columns[i] >= 0), 0)
        last = next((f.columns[i] for i in range(hi - 1, lo - 1, -1) if f.columns[i] >= 0), 0)
        return int(first), int(last) + 1

    def core_target(self, f: SiteFacts) -> str:
        """The genome bases opposite the oligo's core, in oligo sense (gaps collapsed)."""
        a, b = self.core_span(f)
        return f.target[a:b]

    def call(self, sid: int, flank5: str = "", flank3: str = "") -> tuple[int, str, float, float, float]:
        """(call code, reason, Tm on target °C, ΔG kcal/mol, Tm drop °C) of a site under the rules; ``flank5`` and
        ``flank3`` are the genome bases beside the site in the oligo's sense (the template the oligo sits on)."""
        key = (sid, flank5, flank3)
        c = self._calls.get(key)
        if c is not None:
            return c
        f = self.facts(sid)
        so = self.oligos[f.oligo]
        core_len = len(so.core)
        a, b = self.core_span(f)
        n = self.rules.conditions.flank_nt
        five = (flank5 + f.target[:a])[-n:] if n else ""
        three = (f.target[b:] + flank3)[:n] if n else ""
        thermo = site_thermo(so.core, f.target[a:b], self.rules.conditions, five, three)
        diffs = SiteDifferences(
            core_len,
            f.mismatches,
            f.unknown,
            f.gaps,
            f.mm_from_3p,
            tuple(core_len - g for g in f.gap_core_idx),
            f.seed_mm,
            f.motif_ok,
            f.motif_unknown,
        )
        code, why = call_site(self.rules, so.group, diffs, thermo, so.enzyme)
        c = (code, why, thermo.tm_C, thermo.dg_kcal, thermo.tm_drop_C)
        self._calls[key] = c
        return c
