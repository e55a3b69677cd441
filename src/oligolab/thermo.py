"""Thermodynamics: duplex Tm and ΔG of an oligo against its actual target (mismatches and bulges included),
hairpins and dimers, all computed by primer3-py (SantaLucia 1998 nearest-neighbour parameters with
SantaLucia/Owczarzy salt corrections) under stated buffer conditions; RNA folding by ViennaRNA.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import primer3

from .sequences import IUPAC_MASK, reverse_complement

_BASES = "ACGT"


@dataclass(frozen=True)
class Conditions:
    """Reaction conditions for nearest-neighbour thermodynamics."""

    monovalent_mM: float = 50.0  #: Na+/K+ (mM)
    divalent_mM: float = 3.0  #: Mg2+ (mM)
    dntp_mM: float = 0.8  #: total dNTP (mM)
    oligo_nM: float = 250.0  #: oligo concentration (nM)
    temperature_C: float = 60.0  #: temperature at which ΔG is reported (°C): annealing/reaction temperature
    template_flank_nt: float = 0.0  #: template bases on each side of a site included in its duplex (nt)

    def kwargs(self) -> dict[str, float]:
        return dict(
            mv_conc=self.monovalent_mM,
            dv_conc=self.divalent_mM,
            dntp_conc=self.dntp_mM,
            dna_conc=self.oligo_nM,
            temp_c=self.temperature_C,
        )

    @property
    def flank_nt(self) -> int:
        return int(self.template_flank_nt)

    def describe(self) -> str:
        flanks = f", template with {self.flank_nt} nt on each side of the site" if self.flank_nt else ""
        return (
            f"{self.monovalent_mM:g} mM monovalent, {self.divalent_mM:g} mM Mg2+, {self.dntp_mM:g} mM dNTP, "
            f"{self.oligo_nM:g} nM oligo, ΔG at {self.temperature_C:g} °C{flanks} (primer3-py, SantaLucia 1998)"
        )


@dataclass(frozen=True)
class Duplex:
    tm_C: float  #: melting temperature (°C); nan when no structure forms
    dg_kcal: float  #: ΔG at the condition's temperature (kcal/mol)


def resolve_degenerate(oligo: str, target_same_sense: str | None = None) -> str:
    """Concrete sequence for a degenerate oligo: at each IUPAC position the base that matches the target
    (the molecule in the mix that binds best), else the first base the code allows."""
    out = []
    for i, ch in enumerate(oligo):
        if ch in _BASES:
            out.append(ch)
            continue
        allowed = [b for b in _BASES if IUPAC_MASK[ch] & IUPAC_MASK[b]]
        if target_same_sense is not None and i < len(target_same_sense) and target_same_sense[i] in allowed:
            out.append(target_same_sense[i])
        else:
            out.append(allowed[0])
    return "".join(out)


MAX_THAL_NT = 60  #: primer3's thermodynamic alignment takes one of the two strands up to 60 nt


@lru_cache(maxsize=200_000)
def duplex(
    oligo: str, target_same_sense: str, conditions: Conditions = Conditions(), flank5: str = "", flank3: str = ""
) -> Duplex:
    """Tm and ΔG of ``oligo`` annealed to the strand complementary to ``target_same_sense`` (the genome
    sequence of the site read in the oligo's sense), the template extended by the genome bases ``flank5`` and
    ``flank3`` beside the site (same sense; dangling template ends change ΔG by 0.3-1 kcal/mol, as tools that
    score a primer on its template report). Unknown target bases are taken as the oligo's own base (sites with
    unknown bases are called 'no data' anyway, so their figures are only indicative); unknown flank bases are
    left out with everything beyond them."""
    if len(target_same_sense) == len(oligo):
        target = "".join(t if t in _BASES else resolve_degenerate(o) for t, o in zip(target_same_sense, oligo))
    else:
        target = "".join(t if t in _BASES else "A" for t in target_same_sense)
    seq = resolve_degenerate(oligo, target if len(target) == len(oligo) else None)
    flank5 = _known_tail(flank5[::-1])[::-1]
    flank3 = _known_tail(flank3)
    if len(seq) > MAX_THAL_NT:  # keep the 3' end: it decides extension
        cut = len(seq) - MAX_THAL_NT
        seq, target, flank5 = seq[cut:], target[cut:], ""
    template = reverse_complement(flank5 + target + flank3)
    res = primer3.calc_heterodimer(seq, template, **conditions.kwargs())
    if not res.structure_found:
        return Duplex(float("nan"), 0.0)
    return Duplex(round(res.tm, 2), round(res.dg / 1000.0, 3))


def _known_tail(bases: str) -> str:
    """The leading run of A/C/G/T of ``bases`` (stops at the first unknown base)."""
    for i, b in enumerate(bases):
        if b not in _BASES:
            return bases[:i]
    return bases


def perfect_duplex(oligo: str, conditions: Conditions = Conditions(), flank5: str = "", flank3: str = "") -> Duplex:
    """The oligo against its perfect complement (between the same template flanks)."""
    seq = resolve_degenerate(oligo)
    return duplex(seq, seq, conditions, flank5, flank3)


def tm(seq: str, conditions: Conditions = Conditions()) -> float:
    """Melting temperature of a perfectly matched duplex (°C)."""
    return round(
        primer3.calc_tm(
            resolve_degenerate(seq),
            mv_conc=conditions.monovalent_mM,
            dv_conc=conditions.divalent_mM,
            dntp_conc=conditions.dntp_mM,
            dna_conc=conditions.oligo_nM,
        ),
        2,
    )


@lru_cache(maxsize=100_000)
def hairpin(seq: str, conditions: Conditions = Conditions()) -> Duplex:
    """Most stable hairpin of a DNA oligo."""
    res = primer3.calc_hairpin(resolve_degenerate(seq)[-60:], **conditions.kwargs())
    return Duplex(
        round(res.tm, 2) if res.structure_found else float("nan"),
        round(res.dg / 1000.0, 3) if res.structure_found else 0.0,
    )


@lru_cache(maxsize=100_000)
def dimer(seq1: str, seq2: str, conditions: Conditions = Conditions()) -> Duplex:
    """Most stable dimer between two DNA oligos (homodimer when seq1 == seq2)."""
    res = primer3.calc_heterodimer(
        resolve_degenerate(seq1)[-60:], resolve_degenerate(seq2)[-60:], **conditions.kwargs()
    )
    return Duplex(
        round(res.tm, 2) if res.structure_found else float("nan"),
        round(res.dg / 1000.0, 3) if res.structure_found else 0.0,
    )


@lru_cache(maxsize=100_000)
def end_stability(seq: str, target_complement: str, conditions: Conditions = Conditions()) -> float:
    """ΔG (kcal/mol) of the 3' end of ``seq`` on its template (primer3's end stability)."""
    res = primer3.bindings.calc_end_stability(
        resolve_degenerate(seq)[-60:], target_complement[:60], **conditions.kwargs()
    )
    return round(res.dg / 1000.0, 3)


@lru_cache(maxsize=100_000)
def rna_mfe(seq: str, temperature_C: float = 37.0) -> tuple[str, float]:
    """Minimum-free-energy structure and ΔG (kcal/mol) of an RNA (ViennaRNA)."""
    import RNA

    md = RNA.md()
    md.temperature = temperature_C
    fc = RNA.fold_compound(seq.upper().replace("T", "U"), md)
    structure, mfe = fc.mfe()
    return structure, round(mfe, 2)
