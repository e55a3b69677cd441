"""RT-LAMP primer sets around a guide set (DETECTR-style): F3, F2, F1c, B1c, B2, B3 and the loop primers LF and
LB, laid out F3-F2-[LF]-F1 | guides | B1-[LB]-B2-B3 on the top strand, with the spacing, length and Tm windows
of ``amplification.toml`` [lamp.design]. The guides sit between F1 and B1 without overlapping any primer, as in
the published DETECTR sets.

Search: inner primers first (F1c, B1c around the guides), then each side's chain (F2 from F1, F3 from F2) is
built from the few best candidates at each step; the two sides are combined under the F2-B2 span limit;
the set that detects the most design genomes (every required oligo binds, per the check rules) wins, fewest
variable columns breaking ties. A loop primer is added whenever one fits the loop, binds every genome the set
detects and forms no dimer; otherwise the assay's notes say why there is none.
"""

from __future__ import annotations

from itertools import product

import numpy as np

from .candidates import GuideCandidates
from .model import DesignedAssay, DesignedOligo
from .primers import Primer, PrimerFactory, PrimerRules, design_table, popcount, worst_dimer
from .rpa import assay_prescore, guide_oligos, primer_oligo
from .selection import GuideSet


def _specs(table: dict) -> tuple[PrimerRules, PrimerRules, PrimerRules]:
    outer = PrimerRules.from_table(table, tm_key="tm_outer_C")
    inner = PrimerRules.from_table(table, tm_key="tm_inner_C")
    loop = PrimerRules.from_table(table, tm_key="tm_loop_C", length_key="loop_length_nt")
    return outer, inner, loop


def design_lamp(
    name: str, gs: GuideSet, cands: GuideCandidates, factory: PrimerFactory, *, k_inner: int = 3, k_chain: int = 3
) -> DesignedAssay | None:
    """The best LAMP set for a guide set, or None when none meets the constraints."""
    t = design_table("lamp")
    outer, inner, loop = _specs(t)
    Lmax = max(outer.length[1], inner.length[1])
    int_lo, int_hi = t["interior_nt"]
    g_out_lo, g_out_hi = t["gap_outer_nt"]
    g_loop_lo, g_loop_hi = t["gap_loop_nt"]
    span_lo, span_hi = t["f2_b2_nt"]
    guides = gs.covered
    f1c = factory.candidates(gs.end - int_hi - Lmax, gs.start, 1, inner, limit=12)[:k_inner]
    b1c = factory.candidates(gs.end, gs.start + int_hi + Lmax, 0, inner, limit=12)[:k_inner]
    if not f1c or not b1c:
        return None

    def f_chains(f1: Primer):
        out = []
        f2s = factory.candidates(f1.start - g_loop_hi - outer.length[1], f1.start - g_loop_lo, 0, outer, limit=12)
        f2s = [p for p in f2s if g_loop_lo <= f1.start - p.end <= g_loop_hi][:k_chain]
        for f2 in f2s:
            f3s = factory.candidates(f2.start - g_out_hi - outer.length[1], f2.start - g_out_lo, 0, outer, limit=12)
            f3s = [p for p in f3s if g_out_lo <= f2.start - p.end <= g_out_hi][:k_chain]
            for f3 in f3s:
                out.append((f3, f2, f1, f1.coverage() & f2.coverage() & f3.coverage()))
        return out

    def b_chains(b1: Primer):
        out = []
        b2s = factory.candidates(b1.end + g_loop_lo, b1.end + g_loop_hi + outer.length[1], 1, outer, limit=12)
        b2s = [p for p in b2s if g_loop_lo <= p.start - b1.end <= g_loop_hi][:k_chain]
        for b2 in b2s:
            b3s = factory.candidates(b2.end + g_out_lo, b2.end + g_out_hi + outer.length[1], 1, outer, limit=12)
            b3s = [p for p in b3s if g_out_lo <= p.start - b2.end <= g_out_hi][:k_chain]
            for b3 in b3s:
                out.append((b1, b2, b3, b1.coverage() & b2.coverage() & b3.coverage()))
        return out

    fc = [c for f1 in f1c for c in f_chains(f1)]
    bc = [c for b1 in b1c for c in b_chains(b1)]
    combos = []
    for (f3, f2, f1, fbits), (b1, b2, b3, bbits) in product(fc, bc):
        interior = b1.start - f1.end
        span = b2.end - f2.start
        if not (int_lo <= interior <= int_hi and span_lo <= span <= span_hi):
            continue
        n = popcount(guides & fbits & bbits)
        prim = (f3, f2, f1, b1, b2, b3)
        surv = float(np.prod([p.survival for p in prim]))
        key = (
            -round(n * surv, 3),
            sum(p.variable_3p for p in prim),
            sum(p.variable_columns for p in prim),
            span,
            f2.start,
        )
        combos.append((key, prim, n))
    if not combos:
        return None
    combos.sort(key=lambda c: c[0])
    for _key, (f3, f2, f1, b1, b2, b3), _n in combos[:12]:
        fip = f1.sequence + f2.sequence
        bip = b1.sequence + b2.sequence
        seqs = [f3.sequence, b3.sequence, fip, bip]
        if worst_dimer(seqs, outer.conditions) > outer.max_dimer_tm:
            continue
        covered = guides & f3.binds & f2.binds & f1.binds & b1.binds & b2.binds & b3.binds
        lf, why_lf = _loop(factory, loop, f2.end, f1.start, 1, covered, n, seqs)
        lb, why_lb = _loop(factory, loop, b1.end, b2.start, 0, covered, n, seqs + ([lf.sequence] if lf else []))
        oligos = [
            primer_oligo(f3, f"{name}-F3", "F3"),
            primer_oligo(b3, f"{name}-B3", "B3"),
            _inner(f"{name}-FIP", "FIP", f1, f2),
            _inner(f"{name}-BIP", "BIP", b1, b2),
        ]
        if lf is not None:
            oligos.append(primer_oligo(lf, f"{name}-LF", "LF"))
        if lb is not None:
            oligos.append(primer_oligo(lb, f"{name}-LB", "LB"))
        oligos += guide_oligos(gs, cands, name)
        prescore = assay_prescore(
            n, gs, [[p] for p in (f3, f2, f1, b1, b2, b3)], tuple(p for p in (lf, lb) if p is not None)
        )
        notes = [f"no {role} loop primer: {why}" for role, why in (("LF", why_lf), ("LB", why_lb)) if why]
        return DesignedAssay(
            name,
            "lamp",
            cands.enzyme,
            list(gs.members),
            oligos,
            (f3.start, b3.end),
            prescore=prescore,
            covered=covered,
            notes=notes,
        )
    return None


def _inner(name: str, role: str, p1: Primer, p2: Primer) -> DesignedOligo:
    """FIP (F1c|F2) or BIP (B1c|B2): the 5' half pairs with the amplicon's own strand, the 3' half primes."""
    o = DesignedOligo(
        name,
        role,
        p1.sequence + p2.sequence,
        p2.start,
        p2.end,
        p2.strand,
        parts=(p1.sequence, p2.sequence),
        part_sites=((p1.start, p1.end), (p2.start, p2.end)),
        tm_C=p2.tm,
        gc=round((p1.gc * p1.length + p2.gc * p2.length) / (p1.length + p2.length), 3),
        hairpin_dg_kcal=min(p1.hairpin_dg, p2.hairpin_dg),
        n_binds=min(p1.n_binds, p2.n_binds),
        variable_columns=p1.variable_columns + p2.variable_columns,
        survival=round(p1.survival * p2.survival, 5),
        end_dg_kcal=p2.end_dg,
        notes=f"{'F1c' if role == 'FIP' else 'B1c'} site {p1.start + 1}-{p1.end}({'+-'[p1.strand]}) "
        f"Tm {p1.tm:.1f} C; {'F2' if role == 'FIP' else 'B2'} site {p2.start + 1}-{p2.end}"
        f"({'+-'[p2.strand]}) Tm {p2.tm:.1f} C",
    )
    return o


def _loop(
    factory: PrimerFactory, spec: PrimerRules, lo: int, hi: int, strand: int, covered, n: int, others: list[str]
) -> tuple[Primer | None, str]:
    """The best loop primer inside the loop [lo, hi), or None and why none fits.

    A loop primer is optional (losing it slows LAMP down; the check then calls the genome at risk), so one that
    misses at most ``max_loop_miss_fraction`` of the genomes the set detects is accepted; among those the one
    missing fewest, then on the fewest variable columns (then the factory's order) is taken, provided it forms
    no dimer with the other primers."""
    if hi - lo < spec.length[0]:
        return None, f"the loop is {hi - lo} nt, shorter than a {spec.length[0]}-nt loop primer"
    cands = factory.candidates(lo, hi, strand, spec, limit=24)
    if not cands:
        tm = f"Tm {spec.tm[0]:g}-{spec.tm[1]:g} °C, " if spec.tm is not None else ""  # no Tm limit: none named
        return None, (
            f"no {spec.length[0]}-{spec.length[1]} nt primer in the {hi - lo}-nt loop meets "
            f"{tm}GC {spec.gc[0]:.0%}-{spec.gc[1]:.0%}, homopolymer and "
            "hairpin limits"
        )
    tolerated = int(float(design_table("lamp")["max_loop_miss_fraction"]) * n)
    miss = {id(p): n - popcount(covered & p.binds) for p in cands}
    binding = [p for p in cands if miss[id(p)] <= tolerated]
    if not binding:
        return None, (
            f"each of the {len(cands)} candidates misses more than {tolerated} of the {n:,} genomes the set detects"
        )
    for p in sorted(binding, key=lambda p: (miss[id(p)], p.variable_3p, p.variable_columns)):
        if worst_dimer(others + [p.sequence], spec.conditions) <= spec.max_dimer_tm:
            return p, ""
    return None, f"each of the {len(binding)} candidates forms a dimer above {spec.max_dimer_tm:g} °C"
