"""The one rule for "does this oligo bind at this site": a site's differences and thermodynamics in, a call of
the rule file (``knowledge/check-rules.toml`` or ``--rules``) out.

`check` calls every site it finds with :func:`call_site`; `design` calls its candidate primers and guides with
the same function, so a designed assay is called exactly as `check` will call it later. Call codes index
:data:`oligolab.knowledge.CALLS` (best to worst): :data:`BINDS`, :data:`DEGRADED`, :data:`NO_DATA`, :data:`FAILS`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .knowledge import CALLS, Enzyme, RuleSet, make_figures
from .thermo import Conditions, duplex, perfect_duplex

BINDS, DEGRADED, NO_DATA, FAILS = (CALLS.index(c) for c in ("binds", "degraded", "no data", "fails"))
NO_DUPLEX_TM_DROP_C = 99.0  #: Tm drop reported when no duplex forms on the target at all


@dataclass(frozen=True)
class SiteThermo:
    """Duplex figures of an oligo on its actual target under the rule file's conditions."""

    tm_C: float  #: Tm on the target (°C); nan when no duplex forms
    dg_kcal: float  #: ΔG on the target at the conditions' temperature (kcal/mol)
    tm_drop_C: float  #: Tm on the perfect complement minus Tm on the target (°C), rounded to 0.01

    @classmethod
    def none(cls) -> SiteThermo:
        """No thermodynamics computed (figures that the rules for guides do not use)."""
        return cls(float("nan"), 0.0, 0.0)


def site_thermo(oligo: str, target: str, conditions: Conditions, flank5: str = "", flank3: str = "") -> SiteThermo:
    """Tm, ΔG and Tm drop of ``oligo`` on ``target`` (the genome's bases opposite it, read in the oligo's
    sense, gaps collapsed), on a template that extends ``flank5``/``flank3`` beyond the site (the genome's bases,
    same sense; up to the rule file's ``template_flank_nt``). The drop compares with the perfect complement
    between the same flanks."""
    d = duplex(oligo, target, conditions, flank5, flank3)
    perfect = perfect_duplex(oligo, conditions, flank5, flank3).tm_C
    drop = perfect - d.tm_C if not math.isnan(d.tm_C) else NO_DUPLEX_TM_DROP_C
    return SiteThermo(d.tm_C, d.dg_kcal, round(drop, 2))


@dataclass(frozen=True)
class SiteDifferences:
    """How a site differs from the oligo's perfect complement, in the oligo's orientation."""

    length: int  #: oligo (core) length, nt
    mismatches: int  #: mismatched positions (unknown genome bases not included)
    unknown: int = 0  #: positions opposite an unknown genome base
    gaps: int = 0  #: gap nucleotides
    diff_from_3p: tuple[int, ...] = ()  #: mismatched and unknown positions from the 3' end (1 = 3'-terminal)
    gap_from_3p: tuple[int, ...] = ()  #: gap events, as positions from the 3' end
    seed_mismatches: int = 0  #: mismatches and gap events inside the enzyme's seed (guides)
    motif_ok: bool = True  #: the PAM / PFS matches the enzyme's motif (true for other oligos)
    motif_unknown: bool = False  #: the PAM / PFS holds an unknown base

    def near_3p(self, n: int) -> int:
        """Differences (mismatches, unknowns and gap events) within the ``n`` 3'-terminal nucleotides."""
        return sum(1 for x in self.diff_from_3p if x <= n) + sum(1 for x in self.gap_from_3p if x <= n)


def rule_group(role: str, enzyme: Enzyme | None = None) -> str:
    """The rule group of an oligo: the enzyme's family for a guide, 'probe' for a probe, else 'primer'."""
    if enzyme is not None:
        return enzyme.family
    return "probe" if role == "probe" else "primer"


def call_site(
    rules: RuleSet, group: str, diffs: SiteDifferences, thermo: SiteThermo, enzyme: Enzyme | None = None
) -> tuple[int, str]:
    """(call code, reason) of an oligo of rule ``group`` at a site. A Cas12a guide whose enzyme does not
    require its PAM (``motif_required = false``) is called as if the PAM were present."""
    motif_ok = diffs.motif_ok
    if group == "Cas12a":
        motif_ok = motif_ok or not (enzyme is not None and enzyme.motif_required)
    figures = make_figures(
        diffs.mismatches,
        diffs.unknown,
        diffs.gaps,
        thermo.tm_drop_C,
        thermo.tm_C,
        thermo.dg_kcal,
        diffs.seed_mismatches,
        motif_ok,
        diffs.motif_unknown,
        diffs.length,
        diffs.near_3p,
    )
    call, why = rules.call(group, figures)
    return CALLS.index(call), why
