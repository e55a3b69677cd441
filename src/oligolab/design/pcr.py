"""PCR primer pairs around a guide set, picked by primer3 (``design_primers``) on the collection's consensus:
columns where at least 1 % of the genomes differ are written N, so primer3 (which accepts no N by default)
places primers on conserved sequence; the guides are primer3's target, so the pair flanks them. Each returned
pair is then scored for coverage with the check's primer rules and the best is kept."""

from __future__ import annotations

import primer3

from .candidates import GuideCandidates
from .model import DesignedAssay
from .primers import PrimerFactory, popcount, worst_dimer
from .rpa import amplicon_setup, assemble
from .selection import GuideSet

VARIABLE_FRACTION = 0.01  #: consensus columns where at least this fraction of genomes differ become N


def design_pcr(
    name: str, gs: GuideSet, cands: GuideCandidates, factory: PrimerFactory, *, n_return: int = 20
) -> DesignedAssay | None:
    """The best PCR primer pair for a guide set, or None when primer3 finds none."""
    setup = amplicon_setup("pcr", gs, cands.enzyme)
    if setup is None:
        return None
    spec, amp_lo, amp_hi, t7, tail = setup
    prof = factory.profile
    lo = max(0, gs.end - amp_hi)
    hi = min(len(prof.consensus), gs.start + amp_hi)
    cols, chars = [], []
    n = factory.G
    for c in range(lo, hi):
        code = prof.consensus[c]
        if code >= 4:
            continue
        cols.append(c)
        chars.append("N" if prof.differ[c] >= max(1, VARIABLE_FRACTION * n) else "ACGT"[code])
    template = "".join(chars)
    try:
        t_start = cols.index(next(c for c in cols if c >= gs.start))
        t_end = max(i for i, c in enumerate(cols) if c < gs.end)
    except (StopIteration, ValueError):
        return None
    cond = spec.conditions
    settings = {
        "PRIMER_PRODUCT_SIZE_RANGE": [[amp_lo, amp_hi]],
        "PRIMER_NUM_RETURN": n_return,
        "PRIMER_MIN_SIZE": spec.length[0],
        "PRIMER_MAX_SIZE": spec.length[1],
        "PRIMER_MIN_TM": spec.tm[0],
        "PRIMER_MAX_TM": spec.tm[1],
        "PRIMER_OPT_TM": sum(spec.tm) / 2,
        "PRIMER_MIN_GC": 100 * spec.gc[0],
        "PRIMER_MAX_GC": 100 * spec.gc[1],
        "PRIMER_MAX_POLY_X": spec.max_homopolymer,
        "PRIMER_SALT_MONOVALENT": cond.monovalent_mM,
        "PRIMER_SALT_DIVALENT": cond.divalent_mM,
        "PRIMER_DNTP_CONC": cond.dntp_mM,
        "PRIMER_DNA_CONC": cond.oligo_nM,
        "PRIMER_MAX_HAIRPIN_TH": spec.max_hairpin_tm or 47.0,
        "PRIMER_MAX_SELF_ANY_TH": spec.max_dimer_tm,
        "PRIMER_MAX_SELF_END_TH": spec.max_dimer_tm,
        "PRIMER_PAIR_MAX_COMPL_ANY_TH": spec.max_dimer_tm,
        "PRIMER_PAIR_MAX_COMPL_END_TH": spec.max_dimer_tm,
    }
    try:
        res = primer3.design_primers(
            {"SEQUENCE_ID": name, "SEQUENCE_TEMPLATE": template, "SEQUENCE_TARGET": [t_start, t_end - t_start + 1]},
            settings,
        )
    except (OSError, ValueError):
        return None
    pairs = []
    for i in range(int(res.get("PRIMER_PAIR_NUM_RETURNED", 0))):
        ls, ll = res[f"PRIMER_LEFT_{i}"]
        rs, rl = res[f"PRIMER_RIGHT_{i}"]
        f_cols = cols[ls : ls + ll]
        r_cols = cols[rs - rl + 1 : rs + 1]
        if f_cols[-1] - f_cols[0] + 1 != ll or r_cols[-1] - r_cols[0] + 1 != rl:
            continue  # spans a column the consensus deletes
        f = factory.make(f_cols[0], f_cols[-1] + 1, 0, spec)
        r = factory.make(r_cols[0], r_cols[-1] + 1, 1, spec)
        if f is None or r is None:
            continue
        det = popcount(gs.covered & f.binds & r.binds)
        pairs.append(
            (
                (
                    -round(det * f.survival * r.survival, 3),
                    f.variable_3p + r.variable_3p,
                    f.variable_columns + r.variable_columns,
                    i,
                ),
                f,
                r,
                det,
            )
        )
    pairs.sort(key=lambda x: x[0])
    for _key, f, r, _det in pairs:
        seqs = [(tail if t7 == 0 else "") + f.sequence, (tail if t7 == 1 else "") + r.sequence]
        if tail and worst_dimer(seqs, cond) > spec.max_dimer_tm:
            continue
        return assemble("pcr", name, gs, cands, factory, (f, r), (amp_lo, amp_hi), spec, t7, tail, seqs)
    return None
