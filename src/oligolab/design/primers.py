"""Primer candidates shared by the three chemistries: composition and thermodynamic filters (primer3-py), and
coverage of each candidate over the collection decided by the check rule table's primer rules (3'-end
mismatches, Tm drop on the actual target, gaps), computed once per distinct genome variant of the site.

Coordinates are reference columns [start, end). ``strand`` 0: the primer reads like the top strand (a forward
primer, extended rightwards); 1: it reads like the bottom strand (a reverse primer, extended leftwards).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import primer3

from ..knowledge import RuleSet, amplification
from ..sequences import IUPAC_MASK, MASK_IUPAC, reverse_complement
from ..sitecall import BINDS, DEGRADED, FAILS, NO_DATA, SiteDifferences, SiteThermo, call_site, site_thermo
from ..thermo import Conditions, resolve_degenerate
from .candidates import POPCOUNT8, distinct_rows
from .collection import BASE_MASK, DELETED, INSERT_FLAG, Collection
from .conservation import Conservation, oligo_survival, site_columns
from .conservation import conservation as conservation_of

#: thermodynamic figures at their two extremes: a duplex is computed only when they disagree on 'binds' (the
#: pre-scores need binds exactly; degraded-or-fails only as a tie-break; the check computes every duplex)
BEST_THERMO = SiteThermo(float("inf"), float("-inf"), 0.0)
WORST_THERMO = SiteThermo(float("-inf"), float("inf"), 99.0)
MAX_GAPS = 2  #: gap nucleotides the engine searches (the check's default budget)
DEGENERATE_MIN_FRACTION = 0.01  #: a base enters a degenerate position when this share of design genomes carry it


@dataclass(frozen=True)
class PrimerRules:
    """Composition and thermodynamic limits of one primer kind (from ``amplification.toml``)."""

    length: tuple[int, int]
    tm: tuple[float, float] | None
    gc: tuple[float, float]
    max_homopolymer: int
    min_hairpin_dg: float | None  #: kcal/mol at 37 °C
    max_hairpin_tm: float | None  #: °C
    max_dimer_tm: float  #: °C
    conditions: Conditions
    max_degeneracy: int = 1  #: product of the bases allowed at degenerate positions (1: no degenerate bases)

    @classmethod
    def from_table(cls, table: dict, tm_key: str | None = "tm_C", length_key: str = "primer_length_nt") -> PrimerRules:
        cond = Conditions(**{k: float(v) for k, v in table["conditions"].items()})
        tm = tuple(table[tm_key]) if tm_key and tm_key in table else None
        return cls(
            tuple(table[length_key]),
            tm,
            tuple(table["gc_fraction"]),
            int(table["max_homopolymer_nt"]),
            table.get("min_hairpin_dg_kcal"),
            table.get("max_hairpin_tm_C"),
            float(table["max_dimer_tm_C"]),
            cond,
            int(table.get("max_degeneracy", 1)),
        )


def design_table(chemistry: str) -> dict:
    return amplification()[chemistry]["design"]


@lru_cache(maxsize=200_000)
def _thermo(seq: str, cond: Conditions) -> tuple[float, float, float, float]:
    """(Tm, hairpin Tm, hairpin ΔG kcal/mol at 37 °C, homodimer Tm) of a DNA oligo."""
    kw = dict(mv_conc=cond.monovalent_mM, dv_conc=cond.divalent_mM, dntp_conc=cond.dntp_mM, dna_conc=cond.oligo_nM)
    tm = primer3.calc_tm(seq, **kw)
    hp = primer3.calc_hairpin(seq[-60:], **kw)
    hd = primer3.calc_homodimer(seq[-60:], **kw)
    return (
        round(tm, 2),
        round(hp.tm, 2) if hp.structure_found else float("-inf"),
        round(hp.dg / 1000.0, 3) if hp.structure_found else 0.0,
        round(hd.tm, 2) if hd.structure_found else float("-inf"),
    )


@lru_cache(maxsize=200_000)
def dimer_tm(a: str, b: str, cond: Conditions) -> float:
    """Tm (°C) of the most stable heterodimer of two oligos (tails included), -inf when none forms."""
    kw = dict(mv_conc=cond.monovalent_mM, dv_conc=cond.divalent_mM, dntp_conc=cond.dntp_mM, dna_conc=cond.oligo_nM)
    r = primer3.calc_heterodimer(a[-60:], b[-60:], **kw)
    return round(r.tm, 2) if r.structure_found else float("-inf")


def longest_run(seq: str) -> int:
    best = run = 1
    for i in range(1, len(seq)):
        run = run + 1 if seq[i] == seq[i - 1] else 1
        best = max(best, run)
    return best


@dataclass
class Primer:
    """One primer site with its sequence (5'->3', binding part), thermodynamics and coverage."""

    start: int
    end: int
    strand: int
    sequence: str
    tm: float
    gc: float
    hairpin_tm: float
    hairpin_dg: float
    homodimer_tm: float
    binds: np.ndarray | None = field(
        repr=False, default=None
    )  #: packed bitset of genomes where it binds (set by the factory)
    n_binds: int = 0
    n_risk: int = 0
    variable_columns: int = 0  #: columns of the site where some genome differs from the consensus
    variable_3p: int = 0  #: of those, within 5 nt of the 3' end
    consensus: str = ""  #: the consensus sequence (``sequence`` may hold degenerate IUPAC bases)
    survival: float = 1.0  #: P(an unseen genome of the family leaves it binding), see :mod:`.conservation`
    degenerate: int = 0  #: degenerate (IUPAC) positions
    end_dg: float = float("nan")  #: ΔG (kcal/mol) of the 3'-terminal pentamer on its complement (3'-end stability)

    def coverage(self) -> np.ndarray:
        """``binds``, which every primer the factory gives with its coverage checked (the default) carries."""
        assert self.binds is not None
        return self.binds

    @property
    def length(self) -> int:
        return self.end - self.start

    @property
    def three_prime(self) -> int:
        """Reference column of the 3'-terminal base."""
        return self.end - 1 if self.strand == 0 else self.start


class PrimerFactory:
    """Makes primer candidates on the consensus of a collection and scores their coverage with the check's
    primer rules (cached per site)."""

    def __init__(
        self, collection: Collection, rules: RuleSet, max_mismatches: int = 3, conservation: Conservation | None = None
    ):
        self.collection = collection
        self.rules = rules
        self.k = max_mismatches
        self.profile = collection.profile()
        self.G = collection.n
        self.conservation = conservation or conservation_of(collection)
        counts = self.profile.counts[:, :4]
        seen = max(2, int(np.ceil(DEGENERATE_MIN_FRACTION * self.G)))
        self._alleles = (counts >= seen) | (np.arange(4)[None, :] == np.minimum(self.profile.consensus, 3)[:, None])
        self._outside = 1.0 - counts.sum(axis=1) / np.maximum(1, self.G)  # unknown/deleted/absent share
        self.nbytes = (self.G + 7) // 8
        self._all = np.packbits(np.ones(self.G, dtype=bool))
        diff = (self.profile.differ > 0).astype(np.int64)
        self._var_ps = np.concatenate([[0], np.cumsum(diff)])
        self._dif_ps = np.concatenate([[0], np.cumsum(self.profile.differ)])
        unk = (self.profile.unknown > 0).astype(np.int64)
        self._unk_ps = np.concatenate([[0], np.cumsum(unk)])
        cons = self.profile.consensus
        self._del_ps = np.concatenate([[0], np.cumsum(cons >= 4)])
        self._cache: dict[tuple, Primer | None] = {}
        self.banned: set[tuple[int, int, int]] = set()  #: (start, end, strand) of primers with off-target sites
        self._call_cache: dict[tuple, int] = {}
        self._target_cache: dict[tuple, int] = {}
        self._approx: dict[tuple[int, int], np.ndarray] = {}

    # -- sequence helpers
    def consensus_ok(self, start: int, end: int) -> bool:
        """The consensus has a base (no deletion) in every column of [start, end)."""
        return start >= 0 and end <= len(self.profile.consensus) and self._del_ps[end] - self._del_ps[start] == 0

    def sequence(self, start: int, end: int, strand: int) -> str:
        top = self.profile.sequence(start, end)
        return top if strand == 0 else reverse_complement(top)

    def variable(self, start: int, end: int) -> int:
        return int(self._var_ps[end] - self._var_ps[start])

    def genomes_differing(self, start: int, end: int, strand: int, n: int = 5) -> tuple[int, int]:
        """(genome-columns differing from the consensus within the ``n`` 3'-terminal columns, in the site)."""
        a, b = (end - n, end) if strand == 0 else (start, start + n)
        return int(self._dif_ps[b] - self._dif_ps[a]), int(self._dif_ps[end] - self._dif_ps[start])

    def variable_3p(self, start: int, end: int, strand: int, n: int = 5) -> int:
        a, b = (end - n, end) if strand == 0 else (start, start + n)
        return int(self._var_ps[b] - self._var_ps[a])

    # -- candidates
    def make(
        self, start: int, end: int, strand: int, spec: PrimerRules, *, tm_range=None, check_coverage: bool = True
    ) -> Primer | None:
        """A primer at [start, end) on ``strand`` if it passes composition and thermodynamic limits (None
        otherwise); coverage is computed when ``check_coverage``."""
        key = (start, end, strand, spec, tm_range)
        if key in self._cache:
            p = self._cache[key]
            if p is not None and check_coverage and p.binds is None:
                self._cover(p)
            return p
        p = self._make(start, end, strand, spec, tm_range)
        if p is not None and check_coverage:
            self._cover(p)
        self._cache[key] = p
        return p

    def _make(self, start, end, strand, spec: PrimerRules, tm_range) -> Primer | None:
        if not self.consensus_ok(start, end):
            return None
        seq = self.sequence(start, end, strand)
        gc = (seq.count("G") + seq.count("C")) / len(seq)
        if not spec.gc[0] <= gc <= spec.gc[1] or longest_run(seq) > spec.max_homopolymer:
            return None
        tm, hp_tm, hp_dg, hd_tm = _thermo(seq, spec.conditions)
        rng = tm_range or spec.tm
        if rng is not None and not rng[0] <= tm <= rng[1]:
            return None
        if spec.min_hairpin_dg is not None and hp_dg < spec.min_hairpin_dg:
            return None
        if spec.max_hairpin_tm is not None and hp_tm > spec.max_hairpin_tm:
            return None
        if hd_tm > spec.max_dimer_tm:
            return None
        oligo, n_deg, rates = self.degenerate(start, end, strand, seq, spec.max_degeneracy)
        return Primer(
            start,
            end,
            strand,
            oligo,
            tm,
            round(gc, 3),
            hp_tm,
            hp_dg,
            hd_tm,
            variable_columns=self.variable(start, end),
            variable_3p=self.variable_3p(start, end, strand),
            consensus=seq,
            survival=round(float(oligo_survival(rates, self.rules, "primer")), 5),
            degenerate=n_deg,
            end_dg=end_stability(seq, spec.conditions),
        )

    def approximate_survival(self, length: int, strand: int) -> np.ndarray:
        """Survival of every primer site of ``length`` nt on ``strand`` (by start column) with degenerate bases
        wherever the collection has them (the degeneracy limit ignored): the order in which sites are tried."""
        key = (length, strand)
        if key not in self._approx:
            cons = self.conservation
            multi = self._alleles.sum(axis=1) > 1
            rates = np.where(multi, np.minimum(cons.rate, self._outside + cons.novel), cons.rate)
            n = len(rates) - length + 1
            cols = site_columns(np.arange(max(0, n)), np.full(max(0, n), strand), length)
            self._approx[key] = np.asarray(oligo_survival(rates[cols], self.rules, "primer")) if n > 0 else np.zeros(0)
        return self._approx[key]

    def site_rates(self, start: int, end: int, strand: int) -> np.ndarray:
        """Per-column rates of :mod:`.conservation` under a site, in the primer's 5'->3' order."""
        r = self.conservation.rate[start:end]
        return r if strand == 0 else r[::-1]

    def degenerate(
        self, start: int, end: int, strand: int, seq: str, max_degeneracy: int
    ) -> tuple[str, int, np.ndarray]:
        """(oligo, degenerate positions, rates under it): at columns where design genomes carry other bases
        (each in at least 1 % of them, and two genomes), the IUPAC code of every such base, most useful first
        (highest rate, nearest the 3' end), while the product of the allowed bases stays within
        ``max_degeneracy``."""
        rates = self.site_rates(start, end, strand).copy()
        if max_degeneracy <= 1:
            return seq, 0, rates
        cols = np.arange(start, end) if strand == 0 else np.arange(start, end)[::-1]
        L = end - start
        options = []
        for i, c in enumerate(cols):
            mask = self._alleles[c]
            k = int(mask.sum())
            if k > 1:
                options.append((-(rates[i] * (1.0 + i / L)), i, c, k))
        out = list(seq)
        product, n = 1, 0
        for _, i, c, k in sorted(options):
            if product * k > max_degeneracy:
                continue
            bits = sum(1 << b for b in range(4) if self._alleles[c, b])
            code = MASK_IUPAC[bits]
            out[i] = code if strand == 0 else reverse_complement(code)
            product *= k
            n += 1
            covered = self.profile.counts[c, :4][self._alleles[c]].sum() / max(1, self.G)
            rates[i] = min(rates[i], max(0.0, 1.0 - covered - self._outside[c]) + self.conservation.novel)
        return "".join(out), n, rates

    # -- coverage
    READ_THROUGH = 3  #: deleted columns, or shifts of the site, considered when reading a genome's site

    def _cover(self, p: Primer) -> None:
        """Genomes where the primer binds (check primer rules on each distinct variant of the site)."""
        start, end = p.start, p.end
        if p.variable_columns == 0 and self._unk_ps[end] - self._unk_ps[start] == 0:
            # every genome carries the consensus here (insertions are counted in `differ`)
            p.binds, p.n_binds, p.n_risk = self._all, self.G, self.G
            return
        per_genome = self.site_calls(p.sequence, start, end, p.strand)
        b = per_genome == BINDS
        p.binds = np.packbits(b)
        p.n_binds = int(b.sum())
        p.n_risk = int((b | (per_genome == DEGRADED)).sum())

    def site_calls(self, seq: str, start: int, end: int, strand: int, group: str = "primer") -> np.ndarray:
        """Call code of an oligo (``seq``, IUPAC allowed, oligo orientation) at reference site [start, end) on
        ``strand`` in every genome, by the rule ``group`` (primer or probe)."""
        pad = self.READ_THROUGH
        lo, hi = max(0, start - pad), min(self.collection.bases.shape[1], end + pad)
        rows, inv = distinct_rows(self.collection.bases[:, lo:hi])
        codes = np.array([self._call_row(seq, strand, r, start - lo, group) for r in rows], dtype=np.int8)
        return codes[inv]

    def _call_row(self, seq: str, strand: int, row: np.ndarray, offset: int, group: str) -> int:
        key = (seq, strand, offset, group, row.tobytes())
        c = self._call_cache.get(key)
        if c is None:
            c = self._call_cache[key] = self.call_site(seq, strand, row, offset, group)
        return c

    def call_site(self, seq: str, strand: int, row: np.ndarray, offset: int = 0, group: str = "primer") -> int:
        """Check-rule call of a primer (oligo orientation ``seq``) on one genome's columns ``row``, whose
        column ``offset`` is the first column of the primer's reference site.

        The genome's own sequence is read through deleted columns, and the window within a few nt of the
        expected place that matches the primer best is called (as `check` takes the best site near the
        expected one), so an indel placed anywhere inside a homopolymer gives the same call."""
        L = len(seq)
        base = row & BASE_MASK
        keep = base != DELETED
        b = base[keep].astype(np.int64)
        cols = np.flatnonzero(keep)
        ins = ((row & INSERT_FLAG) != 0)[keep]
        m = len(b)
        if m < L:
            return NO_DATA
        want = np.array([IUPAC_MASK[ch] for ch in (seq if strand == 0 else reverse_complement(seq))], dtype=np.int64)
        best = None
        for k0 in range(0, m - L + 1):
            shift = abs(int(cols[k0]) - offset)
            if shift > self.READ_THROUGH:
                continue
            win = b[k0 : k0 + L]
            n_mm = int((((want >> np.minimum(win, 3)) & 1) == 0)[win < 4].sum())
            cand = (n_mm, shift, k0)
            if best is None or cand < best:
                best = cand
        if best is None:
            return NO_DATA
        k0 = best[2]
        win = b[k0 : k0 + L]
        if (win > 3).any():
            return NO_DATA
        inserted = int(ins[k0 + 1 : k0 + L].sum())
        target_top = "".join("ACGT"[x] for x in win)
        target = target_top if strand == 0 else reverse_complement(target_top)
        mm_from_3p = [L - i for i in range(L) if not IUPAC_MASK[target[i]] & IUPAC_MASK[seq[i]]]
        gap_from_3p = []
        if inserted:
            pos = np.flatnonzero(ins[k0 + 1 : k0 + L]) + 1
            gap_from_3p = [L - int(i) if strand == 0 else int(i) for i in pos]
        gaps = inserted
        if gaps > MAX_GAPS or len(mm_from_3p) + gaps > self.k:
            return FAILS
        return self._call_target(seq, target, gaps, tuple(mm_from_3p), tuple(gap_from_3p), group)

    def _call_target(
        self,
        seq: str,
        target: str,
        gaps: int,
        mm_from_3p: tuple[int, ...],
        gap_from_3p: tuple[int, ...],
        group: str = "primer",
    ) -> int:
        """The call of an oligo on one target (cached: many genomes share a site's sequence)."""
        key = (seq, target, gaps, gap_from_3p, group)
        code = self._target_cache.get(key)
        if code is None:
            diffs = SiteDifferences(len(seq), len(mm_from_3p), 0, gaps, mm_from_3p, gap_from_3p)
            best = call_site(self.rules, group, diffs, BEST_THERMO)[0]
            if best != BINDS or call_site(self.rules, group, diffs, WORST_THERMO)[0] == BINDS:
                code = best  # binding is decided without the duplex (a 'degraded' may be 'fails' in the check)
            elif not mm_from_3p and not gaps and target == seq:  # the perfect complement (no degenerate base)
                code, _ = call_site(self.rules, group, diffs, perfect_thermo(seq, self.rules.conditions))
            else:
                code, _ = call_site(self.rules, group, diffs, site_thermo(seq, target, self.rules.conditions))
            self._target_cache[key] = code
        return code

    # -- enumeration
    def candidates(
        self,
        lo: int,
        hi: int,
        strand: int,
        spec: PrimerRules,
        *,
        tm_range=None,
        lengths: tuple[int, int] | None = None,
        limit: int = 40,
    ) -> list[Primer]:
        """Primers lying inside [lo, hi), best first: most genomes bound, then fewest variable columns at the
        3' end and overall, then Tm closest to the middle of its window.

        Sites are first ordered by how many genomes differ from the consensus at their 3' end and over the
        whole site (free, from the profile); thermodynamics (primer3) and
        coverage are computed in that order until ``limit`` primers pass, so a region costs a few dozen
        primer3 calls rather than thousands."""
        lengths = lengths or spec.length
        rng = tm_range or spec.tm
        mid = (rng[0] + rng[1]) / 2 if rng is not None else None
        sites = []
        for L in range(lengths[0], lengths[1] + 1):
            surv = self.approximate_survival(L, strand)
            for a in range(max(0, lo), hi - L + 1):
                b = a + L
                if not self.consensus_ok(a, b) or (a, b, strand) in self.banned:
                    continue
                d3, dall = self.genomes_differing(a, b, strand)
                sites.append(
                    (-round(float(surv[a]), 2), d3, dall, self.variable(a, b), abs(L - sum(lengths) / 2), a, b)
                )
        sites.sort()
        out: list[Primer] = []
        for *_, a, b in sites:
            p = self.make(a, b, strand, spec, tm_range=tm_range, check_coverage=True)
            if p is not None:
                out.append(p)
                if len(out) >= limit:
                    break
        out.sort(
            key=lambda p: (
                -round(p.n_binds * p.survival, 3),
                p.variable_3p,
                p.variable_columns,
                -p.n_risk,
                abs(p.tm - mid) if mid is not None else 0,
                p.start,
            )
        )
        return out


def popcount(bits: np.ndarray) -> int:
    return int(POPCOUNT8[bits].sum())


def worst_dimer(seqs: list[str], cond: Conditions) -> float:
    """Highest heterodimer or homodimer Tm (°C) among a set of oligos (full sequences, tails included)."""
    seqs = [resolve_degenerate(x) for x in seqs]  # degenerate primers: their consensus-like variant
    worst = float("-inf")
    for i, a in enumerate(seqs):
        for b in seqs[i:]:
            worst = max(worst, dimer_tm(a, b, cond))
    return worst


@lru_cache(maxsize=200_000)
def perfect_thermo(seq: str, cond: Conditions) -> SiteThermo:
    """Duplex figures of an oligo on its perfect complement (a site without differences)."""
    return site_thermo(seq, seq, cond)


@lru_cache(maxsize=200_000)
def end_stability(seq: str, cond: Conditions) -> float:
    """ΔG (kcal/mol) of the primer's 3'-terminal pentamer on its perfect complement (primer3's 3'-end
    stability): a weak 3' end primes poorly, a very stable one tolerates mispriming."""
    kw = dict(mv_conc=cond.monovalent_mM, dv_conc=cond.divalent_mM, dntp_conc=cond.dntp_mM, dna_conc=cond.oligo_nM)
    r = primer3.calc_end_stability(seq, reverse_complement(seq[-5:]), **kw)
    return round(r.dg / 1000.0, 2)
