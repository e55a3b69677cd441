"""How well a guide should work in the tube, and the crRNA folding checks behind it.

* Cas12a: predicted activity from the project's Cas12a model (``oligolab.models.cas12a``, trained on Kim et
  al. 2018 AsCas12a HT 1-1; an indel-frequency proxy for collateral-cleavage activity) on the 34-nt target
  context of each guide (4 nt upstream, 4-nt PAM, 23-nt protospacer, 3 nt downstream, PAM strand 5'->3').
  When the model is not installed the score is left empty and ranking does not use it.
* Cas13a: a **heuristic** score in [0, 1] (no measured LwaCas13a activity data is shipped), from published
  design rules for Cas13a crRNAs used by the Lareau lab's guide-design pipeline (lareaulab/cas13a_guide_design,
  scripts ``score_RNAfold_crRNAs.R`` and ``NCR/scripts/annotate_guide_features.R`` @ a59bc2ce): a crRNA is a
  "good guide" when its direct repeat folds into its own stem-loop inside the full crRNA and no spacer base is
  paired. The score is 0.5 x [repeat stem-loop intact] + 0.5 x (1 - paired spacer fraction), with the
  protospacer flanking site (not G; Abudayyeh et al. 2016, ADAPT's ``--require-flanking3 H``) already required
  for a guide to count as binding. It is labelled heuristic wherever it is shown.

Folding uses ViennaRNA at 37 °C (``oligolab.thermo.rna_mfe``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..knowledge import Enzyme
from ..sequences import reverse_complement
from ..thermo import rna_mfe
from .collection import Profile

CAS12A_CONTEXT = (4, 4, 23, 3)  #: upstream, PAM, protospacer, downstream (nt)


@dataclass
class GuideScore:
    spacer: str
    crrna: str  #: full crRNA, RNA letters (direct repeat + spacer)
    structure: str
    mfe_kcal: float
    repeat_intact: bool
    spacer_paired: int
    activity: float  #: model prediction (Cas12a, indel %) or heuristic score (Cas13a); nan when unavailable
    activity_kind: str  #: 'model' or 'heuristic' or 'unavailable'
    context: str = ""


def crrna(enzyme: Enzyme, spacer: str) -> str:
    """Full guide RNA (RNA letters): the enzyme's repeat/scaffold and the spacer in the enzyme's layout."""
    return enzyme.guide_rna(spacer)


def fold_crrna(enzyme: Enzyme, spacer: str) -> tuple[str, float, bool, int]:
    """(structure, MFE kcal/mol, repeat keeps its own stem-loop, paired spacer bases) of the full guide RNA."""
    rna = crrna(enzyme, spacer)
    structure, mfe = rna_mfe(rna)
    rep = enzyme.direct_repeat.upper().replace("T", "U")
    rep_alone, _ = rna_mfe(rep) if rep else ("", 0.0)
    n = len(rep)
    lo = 0 if enzyme.repeat_side == "5prime" else len(rna) - n
    own = structure[lo : lo + n]
    # the repeat is intact when its part of the fold equals its fold alone and pairs only within itself
    intact = bool(rep) and own == rep_alone and _pairs_within(structure, lo, lo + n)
    spacer_fold = structure[n:] if enzyme.repeat_side == "5prime" else structure[: len(rna) - n]
    spacer_paired = sum(1 for ch in spacer_fold if ch != ".")
    return structure, mfe, intact, spacer_paired


def _pairs_within(structure: str, lo: int, hi: int) -> bool:
    stack = []
    for i, ch in enumerate(structure):
        if ch == "(":
            stack.append(i)
        elif ch == ")":
            j = stack.pop()
            if (lo <= i < hi) != (lo <= j < hi):
                return False
    return True


def cas12a_context(profile: Profile, column: int, strand: int, footprint: int) -> str | None:
    """The 34-nt Cas12a model context of a site from the collection consensus (PAM strand 5'->3'), or None
    when the consensus lacks a base there (deletion or genome end)."""
    up, pam, proto, down = CAS12A_CONTEXT
    if strand == 0:
        lo = column - up
        hi = column + pam + proto + down
    else:
        hi = column + footprint + up
        lo = hi - (up + pam + proto + down)
    if lo < 0 or hi > len(profile.consensus):
        return None
    codes = profile.consensus[lo:hi]
    if (codes >= 4).any():
        return None
    top = "".join("ACGT"[c] for c in codes)
    return top if strand == 0 else reverse_complement(top)


def cas12a_model():
    """The Cas12a activity predictor, or None when the model (branch model-cas12a) is not installed."""
    try:
        from ..models.cas12a import predict_cas12a_activity
    except ImportError:
        return None
    return predict_cas12a_activity


def _cas12a_model_activity(spacers: list[str], contexts: list[str | None], folds: list) -> tuple[np.ndarray, str]:
    activity = np.full(len(spacers), np.nan)
    model = cas12a_model()
    ok = [i for i, c in enumerate(contexts) if c is not None]
    if model is None or not ok:
        return activity, "unavailable"
    try:
        activity[ok] = np.asarray(model([contexts[i] for i in ok]), dtype=float)
    except (FileNotFoundError, OSError, ValueError):
        return activity, "unavailable"
    return activity, "model"


def _cas13a_fold_heuristic(spacers: list[str], contexts: list[str | None], folds: list) -> tuple[np.ndarray, str]:
    activity = np.array(
        [
            round(0.5 * float(intact) + 0.5 * (1 - paired / max(1, len(s))), 3)
            for s, (_, _, intact, paired) in zip(spacers, folds)
        ],
        dtype=float,
    )
    return activity, "heuristic"


#: activity scorers by the enzyme file's ``activity_model`` (an enzyme without one gets no activity figure)
ACTIVITY_SCORERS = {"cas12a_activity_v1": _cas12a_model_activity, "cas13a_fold_heuristic": _cas13a_fold_heuristic}


def score_guides(enzyme: Enzyme, spacers: list[str], contexts: list[str | None]) -> list[GuideScore]:
    """Folding and activity of guides (one call to the activity model for all of them)."""
    folds = [fold_crrna(enzyme, s) for s in spacers]
    scorer = ACTIVITY_SCORERS.get(enzyme.activity_model)
    if scorer is None:
        activity, kind = np.full(len(spacers), np.nan), "unavailable"
    else:
        activity, kind = scorer(spacers, contexts, folds)
    out = []
    for s, (structure, mfe, intact, paired), a, ctx in zip(spacers, folds, activity, contexts):
        out.append(
            GuideScore(
                s,
                crrna(enzyme, s),
                structure,
                mfe,
                intact,
                paired,
                float(a) if not np.isnan(a) else float("nan"),
                kind,
                ctx or "",
            )
        )
    return out
