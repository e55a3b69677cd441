"""RPA primer pairs around a guide set (SHERLOCK/DETECTR-style isothermal read-out): 30-35 nt primers, a
100-200 bp amplicon, the guides between the primers without overlapping them, and for RNA-targeting enzymes
(Cas13a) the T7 promoter on the primer whose strand is transcribed into the RNA the guides pair with."""

from __future__ import annotations

import numpy as np

from ..knowledge import Enzyme, amplification
from .candidates import GuideCandidates
from .model import DesignedAssay, DesignedOligo
from .primers import Primer, PrimerFactory, PrimerRules, design_table, popcount, worst_dimer
from .selection import MIN_REDUNDANCY_GAIN, GuideSet


def guide_oligos(gs: GuideSet, cands: GuideCandidates, prefix: str) -> list[DesignedOligo]:
    """crRNA rows (spacer in the orientation the assay table uses) for the members of a guide set."""
    out = []
    for k, c in enumerate(gs.members, 1):
        a, b = cands.span(c)
        surv = float(cands.survival[c]) if cands.survival is not None else float("nan")
        out.append(
            DesignedOligo(
                f"{prefix}-crRNA{k}",
                "crRNA",
                cands.spacer(c),
                a,
                b,
                int(cands.strand[c]),
                n_binds=int(cands.n_binds[c]),
                survival=round(surv, 5),
                notes=f"site {a + 1}-{b}({'+-'[int(cands.strand[c])]}) incl. {cands.enzyme.motif_name}",
            )
        )
    return out


def primer_oligo(p: Primer, name: str, role: str, tail: str = "") -> DesignedOligo:
    return DesignedOligo(
        name,
        role,
        p.sequence,
        p.start,
        p.end,
        p.strand,
        tail,
        tm_C=p.tm,
        gc=p.gc,
        hairpin_dg_kcal=p.hairpin_dg,
        n_binds=p.n_binds,
        variable_columns=p.variable_columns,
        survival=round(p.survival, 5),
        end_dg_kcal=p.end_dg,
        notes=f"site {p.start + 1}-{p.end}({'+-'[p.strand]})",
    )


def t7_strand(enzyme: Enzyme, gs: GuideSet) -> int | None:
    """Strand of the primer that must carry the T7 promoter, or None (DNA-targeting enzymes). The transcript
    reads like that primer; an RNA-targeting guide must pair with it, i.e. lie on the other strand."""
    if enzyme.target != "rna":
        return None
    return 1 - gs.strand if gs.strand in (0, 1) else None


def amplicon_setup(kind: str, gs: GuideSet, enzyme: Enzyme, tm_key: str | None = "tm_C"):
    """Primer rules, amplicon size range (nt), T7 strand and tail for a guide set, or None when an
    RNA-targeting guide set has no transcript orientation."""
    table = design_table(kind)
    spec = PrimerRules.from_table(table, tm_key=tm_key)
    t7 = t7_strand(enzyme, gs)
    if enzyme.target == "rna" and t7 is None:
        return None
    tail = amplification()["tails"]["T7"] if t7 is not None else ""
    amp_lo, amp_hi = table["amplicon_nt"]
    return spec, amp_lo, amp_hi, t7, tail


def design_rpa(
    name: str, gs: GuideSet, cands: GuideCandidates, factory: PrimerFactory, *, top: int = 12
) -> DesignedAssay | None:
    """The best RPA primer pair for a guide set, or None when no pair meets the constraints."""
    setup = amplicon_setup("rpa", gs, cands.enzyme, tm_key=None)
    if setup is None:
        return None
    spec, amp_lo, amp_hi, t7, tail = setup
    fwd = factory.candidates(gs.end - amp_hi, gs.start, 0, spec, limit=top * 2)
    rev = factory.candidates(gs.end, gs.start + amp_hi, 1, spec, limit=top * 2)
    if not fwd or not rev:
        return None
    guides = gs.covered
    # dimer screen on the best few pairs (tails included)
    pairs = []
    for f in fwd[:top]:
        for r in rev[:top]:
            size = r.end - f.start
            if amp_lo <= size <= amp_hi:
                n = popcount(guides & f.binds & r.binds)
                pairs.append(
                    (
                        (
                            -round(n * f.survival * r.survival, 3),
                            f.variable_3p + r.variable_3p,
                            f.variable_columns + r.variable_columns,
                            abs(size - (amp_lo + amp_hi) / 2),
                            f.start,
                            r.end,
                        ),
                        f,
                        r,
                        n,
                    )
                )
    if not pairs:
        return None
    pairs.sort(key=lambda x: x[0])
    for _key, f, r, _n in pairs[:20]:
        seqs = [(tail if t7 == 0 else "") + f.sequence, (tail if t7 == 1 else "") + r.sequence]
        if worst_dimer(seqs, spec.conditions) > spec.max_dimer_tm:
            continue
        return assemble("rpa", name, gs, cands, factory, (f, r), (amp_lo, amp_hi), spec, t7, tail, seqs)
    return None


def redundant_primer(
    factory: PrimerFactory,
    chosen: Primer,
    side: tuple[int, int, int],
    partner: Primer,
    amp: tuple[int, int],
    spec: PrimerRules,
    others: list[str],
    tail: str,
) -> Primer | None:
    """A second primer for a role whose primer is fragile (as guides get redundancy): the candidate of the same
    side (``side`` = lo, hi, strand) on a site disjoint from ``chosen``, forming an amplicon of ``amp`` nt with
    ``partner`` and no dimer, that raises the role's survival most, by at least ``MIN_REDUNDANCY_GAIN``."""
    lo, hi, strand = side
    if 1.0 - chosen.survival < MIN_REDUNDANCY_GAIN:
        return None
    pool = factory.candidates(lo, chosen.start, strand, spec, limit=8) + factory.candidates(
        chosen.end, hi, strand, spec, limit=8
    )
    best, best_gain = None, MIN_REDUNDANCY_GAIN
    for p in pool:
        size = max(partner.end, p.end) - min(partner.start, p.start)
        if not amp[0] <= size <= amp[1]:
            continue
        gain = (1.0 - (1.0 - chosen.survival) * (1.0 - p.survival)) - chosen.survival
        if gain < best_gain or worst_dimer(others + [tail + p.sequence], spec.conditions) > spec.max_dimer_tm:
            continue
        best, best_gain = p, gain
    return best


def assemble(
    chem: str,
    name: str,
    gs: GuideSet,
    cands: GuideCandidates,
    factory: PrimerFactory,
    pair: tuple[Primer, Primer],
    amp: tuple[int, int],
    spec: PrimerRules,
    t7: int | None,
    tail: str,
    seqs: list[str],
) -> DesignedAssay:
    """An RPA/PCR assay from a primer pair: a redundant second primer on each side where one is fragile, the T7
    tail on the primers of the transcribed strand, the guides, pre-scores."""
    f, r = pair
    f2 = redundant_primer(factory, f, (gs.end - amp[1], gs.start, 0), r, amp, spec, seqs, tail if t7 == 0 else "")
    seqs = seqs + ([(tail if t7 == 0 else "") + f2.sequence] if f2 else [])
    r2 = redundant_primer(factory, r, (gs.end, gs.start + amp[1], 1), f, amp, spec, seqs, tail if t7 == 1 else "")
    sides = [[p for p in (f, f2) if p is not None], [p for p in (r, r2) if p is not None]]
    if t7 == 1:  # the T7 primer is the forward primer of the assay table (the transcript reads like it)
        sides = sides[::-1]
    oligos = []
    for role, side, letter in (("forward", sides[0], "F"), ("reverse", sides[1], "R")):
        has_t7 = t7 is not None and role == "forward"
        for k, p in enumerate(side, 1):
            oligos.append(
                primer_oligo(
                    p, f"{name}-{letter}{k if k > 1 else ''}{'-T7' if has_t7 else ''}", role, tail if has_t7 else ""
                )
            )
    oligos += guide_oligos(gs, cands, name)
    role_binds = [np.bitwise_or.reduce([p.coverage() for p in side]) for side in sides]
    covered = gs.covered & role_binds[0] & role_binds[1]
    allp = sides[0] + sides[1]
    amplicon = (min(p.start for p in allp), max(p.end for p in allp))
    return DesignedAssay(
        name,
        chem,
        cands.enzyme,
        list(gs.members),
        oligos,
        amplicon,
        prescore=assay_prescore(popcount(covered), gs, sides),
        covered=covered,
    )


def assay_prescore(n: int, gs: GuideSet, roles: list[list[Primer]], loops: tuple[Primer, ...] = ()) -> dict:
    """Pre-scores of an assay (before the check): genomes detected by design, variable columns under the oligos,
    and its survival of unseen variation (each required primer role, with its alternatives, times the guide set;
    loop primers are optional)."""
    allp = [p for side in roles for p in side] + list(loops)
    primer_survival = float(np.prod([1.0 - np.prod([1.0 - p.survival for p in side]) for side in roles]))
    return {
        "detected": n,
        "guides": len(gs.members),
        "guide_detected": gs.n_covered,
        "primer_variable_columns": int(sum(p.variable_columns for p in allp)),
        "primer_variable_3p": int(sum(p.variable_3p for p in allp)),
        "guide_variable_columns": int(gs.variable_columns),
        "primers_min_binds": int(min(p.n_binds for p in allp)) if allp else 0,
        "loop_primers": len(loops),
        "redundant_primers": sum(len(side) - 1 for side in roles),
        "degenerate_positions": int(sum(p.degenerate for p in allp)),
        "guide_survival": round(gs.survival, 5),
        "primer_survival": round(primer_survival, 5),
        "survival": round(primer_survival * gs.survival, 5),
    }


def robustness_penalty(prescore: dict) -> float:
    """Variable columns under the assay's oligos (from the design genomes), 3' ends of primers and guide
    sites weighted x3: sites that already vary are where future variants are most likely to escape."""
    return (
        prescore["primer_variable_columns"]
        + 2 * prescore["primer_variable_3p"]
        + 3 * prescore["guide_variable_columns"]
    )
