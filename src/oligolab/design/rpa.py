"""RPA primer pairs around a guide set (SHERLOCK/DETECTR-style isothermal read-out): 30-35 nt primers, a
100-200 bp amplicon, the guides between the primers without overlapping them, and for RNA-targeting enzymes
(Cas13a) the T7 promoter on the primer whose strand is transcribed into the RNA the guides pair with."""

from __future__ import annotations

from ..knowledge import Enzyme, amplification
from .candidates import GuideCandidates
from .model import DesignedAssay, DesignedOligo
from .primers import Primer, PrimerFactory, PrimerRules, design_table, popcount, worst_dimer
from .selection import GuideSet


def guide_oligos(gs: GuideSet, cands: GuideCandidates, prefix: str) -> list[DesignedOligo]:
    """crRNA rows (spacer in the orientation the assay table uses) for the members of a guide set."""
    out = []
    for k, c in enumerate(gs.members, 1):
        a, b = cands.span(c)
        out.append(DesignedOligo(f"{prefix}-crRNA{k}", "crRNA", cands.spacer(c), a, b, int(cands.strand[c]),
                                 n_binds=int(cands.n_binds[c]),
                                 notes=f"site {a + 1}-{b}({'+-'[int(cands.strand[c])]}) incl. "
                                       f"{cands.enzyme.motif_name}"))
    return out


def primer_oligo(p: Primer, name: str, role: str, tail: str = "") -> DesignedOligo:
    return DesignedOligo(name, role, p.sequence, p.start, p.end, p.strand, tail, tm_C=p.tm, gc=p.gc,
                         hairpin_dg_kcal=p.hairpin_dg, n_binds=p.n_binds, variable_columns=p.variable_columns,
                         notes=f"site {p.start + 1}-{p.end}({'+-'[p.strand]})")


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


def design_rpa(name: str, gs: GuideSet, cands: GuideCandidates, factory: PrimerFactory, *,
               top: int = 12) -> DesignedAssay | None:
    """The best RPA primer pair for a guide set, or None when no pair meets the constraints."""
    setup = amplicon_setup("rpa", gs, cands.enzyme, tm_key=None)
    if setup is None:
        return None
    spec, amp_lo, amp_hi, t7, tail = setup
    enzyme = cands.enzyme
    fwd = factory.candidates(gs.end - amp_hi, gs.start, 0, spec, limit=top * 3)
    rev = factory.candidates(gs.end, gs.start + amp_hi, 1, spec, limit=top * 3)
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
                pairs.append(((-n, f.variable_3p + r.variable_3p, f.variable_columns + r.variable_columns,
                               abs(size - (amp_lo + amp_hi) / 2), f.start, r.end), f, r, n))
    if not pairs:
        return None
    pairs.sort(key=lambda x: x[0])
    for key, f, r, n in pairs[:20]:
        fwd_p, rev_p = (f, r) if t7 is None or t7 == 0 else (r, f)
        seqs = [(tail if t7 is not None else "") + fwd_p.sequence, rev_p.sequence]
        if worst_dimer(seqs, spec.conditions) > spec.max_dimer_tm:
            continue
        oligos = [primer_oligo(fwd_p, f"{name}-F{'-T7' if t7 is not None else ''}", "forward", tail),
                  primer_oligo(rev_p, f"{name}-R", "reverse")]
        oligos += guide_oligos(gs, cands, name)
        covered = guides & f.binds & r.binds
        return DesignedAssay(name, "rpa", enzyme, list(gs.members), oligos, (f.start, r.end),
                             prescore=_prescore(n, gs, [f, r], cands), covered=covered)
    return None


def _prescore(n: int, gs: GuideSet, primers: list[Primer], cands: GuideCandidates) -> dict:
    return {"detected": n, "guides": len(gs.members), "guide_detected": gs.n_covered,
            "primer_variable_columns": int(sum(p.variable_columns for p in primers)),
            "primer_variable_3p": int(sum(p.variable_3p for p in primers)),
            "guide_variable_columns": int(gs.variable_columns),
            "primers_min_binds": int(min(p.n_binds for p in primers)) if primers else 0}


def robustness_penalty(prescore: dict) -> float:
    """Variable columns under the assay's oligos (from the design genomes), 3' ends of primers and guide
    sites weighted x3: sites that already vary are where future variants are most likely to escape."""
    return (prescore["primer_variable_columns"] + 2 * prescore["primer_variable_3p"]
            + 3 * prescore["guide_variable_columns"])

