"""siRNA knock-down efficacy model: features of a 19-bp siRNA duplex and its target site, and a trained
ensemble that predicts normalised knock-down (0..1, higher = stronger), trained on siRBench.

Inputs are the 19-nt guide (antisense) strand, 5'->3', and the *context* of its target site: the 19-nt site
plus ``FLANK`` = 19 nt of transcript on each side (57 nt, mRNA sense orientation 5'->3', DNA or RNA letters;
``N`` or ``X`` for positions past the transcript ends or unknown). This is the convention of siRBench's
``extended_mRNA`` column. The guide must be the exact reverse complement of the central 19 nt, which is also
the passenger (sense) strand of the blunt 19-bp duplex the model describes.

Fast path for design: :func:`predict_transcript` and :func:`site_accessibility` fold the whole transcript
once with a sliding window (RNAplfold, W = L = 38 nt) instead of folding each 57-nt context: a 38-nt window
that covers a 19-nt site never leaves that site's 57-nt context, so both give the same accessibility.

The model (``sirna_efficacy_v2.npz``: for the measured knock-down and for its within-study normal scores, a bag
of LightGBM forests stored as flat arrays and evaluated with numba, an RBF support-vector regressor and a ridge
regression; standardised, averaged and mapped back to the knock-down scale) and its metadata
(``sirna_efficacy_v2.json``: study-wise and stratified cross-validation, the held-out figures) are written by
``scripts/train_sirna_model.py`` and loaded lazily on first use, offline, without LightGBM.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

SITE_LEN = 19  #: nt, guide length and target-site length the model was trained on
FLANK = 19  #: nt of transcript on each side of the site in a context (siRBench extended_mRNA convention)
CONTEXT_LEN = SITE_LEN + 2 * FLANK  #: 57 nt
FLANK_ONEHOT = 2  #: nt of flank next to the site encoded position by position (chosen by CV: 0..5 tried)
MODEL_VERSION = "v2"
_HERE = Path(__file__).resolve().parent
MODEL_PATH = _HERE / f"sirna_efficacy_{MODEL_VERSION}.npz"
META_PATH = _HERE / f"sirna_efficacy_{MODEL_VERSION}.json"

_BASES = "ACGU"
_DINUC = [a + b for a in _BASES for b in _BASES]
_CODE = np.full(256, 4, dtype=np.int64)  # A C G U/T -> 0..3, anything else (N, X) -> 4
for _i, _b in enumerate(_BASES):
    _CODE[ord(_b)] = _i
_CODE[ord("T")] = 3
_KT = 0.0019872 * 310.15  # kcal/mol, RT at 37 degC

# --------------------------------------------------------------------------- nearest-neighbour parameters
# RNA/RNA Watson-Crick nearest-neighbour free energies and enthalpies (kcal/mol) at 37 degC, 1 M NaCl, from
# Xia T, SantaLucia J Jr, Burkard ME, et al. (1998) Biochemistry 37:14719-14735, Table 4 (the WC stacks of
# the Turner 2004 set). Key: 5'->3' dinucleotide of one strand; a stack and its reverse complement share a
# value (5'CU3'/3'GA5' is 5'AG3'/3'UC5').
_NN_DG = {
    "AA": -0.93,
    "UU": -0.93,
    "AU": -1.10,
    "UA": -1.33,
    "CU": -2.08,
    "AG": -2.08,
    "CA": -2.11,
    "UG": -2.11,
    "GU": -2.24,
    "AC": -2.24,
    "GA": -2.35,
    "UC": -2.35,
    "CG": -2.36,
    "GG": -3.26,
    "CC": -3.26,
    "GC": -3.42,
}
_NN_DH = {
    "AA": -6.82,
    "UU": -6.82,
    "AU": -9.38,
    "UA": -7.69,
    "CU": -10.48,
    "AG": -10.48,
    "CA": -10.44,
    "UG": -10.44,
    "GU": -11.40,
    "AC": -11.40,
    "GA": -12.44,
    "UC": -12.44,
    "CG": -10.64,
    "GG": -13.39,
    "CC": -13.39,
    "GC": -14.88,
}
_INIT_DG, _INIT_DH = 4.09, 3.61  # kcal/mol, duplex initiation (Xia 1998)
_TERM_AU_DG, _TERM_AU_DH = 0.45, 3.72  # kcal/mol per terminal A-U pair (Xia 1998)
_DG_TABLE = np.array([_NN_DG[d] for d in _DINUC])  # index 4*code(5' base) + code(3' base)
_DH_TABLE = np.array([_NN_DH[d] for d in _DINUC])


def duplex_dg(seqs: Sequence[str]) -> np.ndarray:
    """ΔG (kcal/mol, 37 °C, 1 M NaCl) of each strand (equal lengths, RNA or DNA letters) paired with its
    perfect complement: nearest-neighbour stacks + initiation + terminal A-U penalties (Xia et al. 1998)."""
    if not len(seqs):
        return np.zeros(0)
    codes = _codes([s.upper().replace("T", "U") for s in seqs], len(seqs[0]))
    stacks = _DG_TABLE[codes[:, :-1] * 4 + codes[:, 1:]].sum(1)
    au = np.isin(codes[:, 0], (0, 3)).astype(float) + np.isin(codes[:, -1], (0, 3)).astype(float)
    return stacks + _INIT_DG + au * _TERM_AU_DG


# --------------------------------------------------------------------------- validation
_ALLOWED_CONTEXT = np.zeros(256, dtype=bool)
_ALLOWED_CONTEXT[np.frombuffer(b"ACGUN", dtype=np.uint8)] = True


def _validate(guides: Sequence[str], contexts: Sequence[str]) -> tuple[list[str], list[str]]:
    """Upper-case RNA guides and contexts (T -> U, X -> N); ValueError naming the first offending index.
    Vectorised: the letters of all rows are checked at once."""
    if isinstance(guides, str) or isinstance(contexts, str):
        raise ValueError("guides and contexts must be sequences of strings, not a single string")
    guides, contexts = list(guides), list(contexts)
    if len(guides) != len(contexts):
        raise ValueError(f"{len(guides)} guides but {len(contexts)} contexts; give one context per guide")
    for i, (g, c) in enumerate(zip(guides, contexts)):
        if not isinstance(g, str) or not isinstance(c, str):
            raise ValueError(f"index {i}: guide and context must be strings")
    g_out = [g.strip().upper().replace("T", "U") for g in guides]
    c_out = [c.strip().upper().replace("T", "U").replace("X", "N") for c in contexts]
    n = len(g_out)
    for i, (g, c) in enumerate(zip(g_out, c_out)):
        if len(g) != SITE_LEN or len(c) != CONTEXT_LEN or not g.isascii() or not c.isascii():
            _raise_row(i, g, c)
    if not n:
        return g_out, c_out
    gbytes = np.frombuffer("".join(g_out).encode(), dtype=np.uint8).reshape(n, SITE_LEN)
    cbytes = np.frombuffer("".join(c_out).encode(), dtype=np.uint8).reshape(n, CONTEXT_LEN)
    gcode = _CODE[gbytes]
    bad = (gcode > 3).any(1) | ~_ALLOWED_CONTEXT[cbytes].all(1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        _raise_row(i, g_out[i], c_out[i])
    site = _CODE[cbytes[:, FLANK : FLANK + SITE_LEN]]
    mismatch = np.flatnonzero((site != (3 - gcode)[:, ::-1]).any(1))  # complement: A0-U3, C1-G2, reversed
    if mismatch.size:
        i = int(mismatch[0])
        raise ValueError(
            f"index {i}: guide {g_out[i]} is not the reverse complement of the context's central "
            f"{SITE_LEN} nt {c_out[i][FLANK : FLANK + SITE_LEN]}"
        )
    return g_out, c_out


def _raise_row(i: int, g: str, c: str) -> None:
    """The ValueError for row ``i``'s guide or context."""
    if len(g) != SITE_LEN or any(ch not in _BASES for ch in g):
        raise ValueError(f"index {i}: guide {g!r} must be {SITE_LEN} nt of A/C/G/U (T accepted)")
    raise ValueError(
        f"index {i}: context must be {CONTEXT_LEN} nt of A/C/G/T/U/N/X (the {SITE_LEN}-nt "
        f"site plus {FLANK} nt each side), got {len(c)} nt: {c!r}"
    )


# --------------------------------------------------------------------------- accessibility (RNAplfold)
def _plfold_site_up(seq: str, site_len: int) -> np.ndarray:
    """RNAplfold (W = L = FLANK + site_len) probability that the site_len-nt stretch ending at each 1-based
    position of ``seq`` is unpaired; index j = stretch ending at j (entries j < site_len are meaningless)."""
    import RNA

    window = FLANK + site_len
    up = RNA.pfl_fold_up(seq, site_len, window, window)
    return np.array([row[site_len] if len(row) > site_len else 0.0 for row in up], dtype=float)


def site_accessibility(transcript: str, site_len: int = SITE_LEN) -> np.ndarray:
    """Probability (0..1) that each site_len-nt target site of ``transcript`` is unpaired, one value per
    0-based site start (length len(transcript) - site_len + 1).

    Folds the transcript once (RNAplfold W = L = FLANK + site_len = 38 nt, ViennaRNA Turner 2004 at 37 degC)
    after padding FLANK N's on each side; every window averaged for a site lies inside its 57-nt context,
    so this matches the per-context value the model was trained on up to RNAplfold's numerics (HAO1 mRNA,
    1,739 sites: |delta ln P| median 0.005, 95th percentile 0.12; r = 0.9996)."""
    t = transcript.strip().upper().replace("T", "U").replace("X", "N")
    if len(t) < site_len:
        raise ValueError(f"transcript of {len(t)} nt is shorter than one {site_len}-nt site")
    bad = [i for i, ch in enumerate(t) if ch not in "ACGUN"]
    if bad:
        raise ValueError(f"transcript position {bad[0]}: {t[bad[0]]!r} is not A/C/G/T/U/N")
    up = _plfold_site_up("N" * FLANK + t + "N" * FLANK, site_len)
    starts = np.arange(len(t) - site_len + 1)
    return np.clip(up[starts + FLANK + site_len], 0.0, 1.0)


def _context_accessibility(contexts: list[str]) -> np.ndarray:
    """P(site unpaired) for each 57-nt context, folded one by one (about 2.5 ms per context)."""
    return np.array([np.clip(_plfold_site_up(c, SITE_LEN)[FLANK + SITE_LEN], 0.0, 1.0) for c in contexts])


PROFILE_WINDOW = 20  #: nt, RNAplfold W = L for the per-position profile: every window covering a site nt lies in
#: the site's 57-nt context, so the transcript-wide fold gives the per-context values the model was trained on
PROFILE_NAMES = [f"up_site{p}" for p in range(1, SITE_LEN + 1)] + ["up_site12_19", "up_site1_8", "up_site9_12"]


def _profile_rows(up: list, ends: np.ndarray) -> np.ndarray:
    """Profile features of the sites whose 1-based context position 1 is at padded position ``ends + 1`` of a
    pfl_fold_up result: P(unpaired) of each site nt (u = 1), of site nt 12-19 (the guide seed's target, u = 8),
    1-8 (u = 8) and 9-12 (the cleavage site, u = 4)."""
    out = np.empty((len(ends), SITE_LEN + 3))
    for r, e in enumerate(ends):
        for k in range(SITE_LEN):
            out[r, k] = up[e + FLANK + 1 + k][1]
        out[r, SITE_LEN] = up[e + FLANK + SITE_LEN][8]
        out[r, SITE_LEN + 1] = up[e + FLANK + 8][8]
        out[r, SITE_LEN + 2] = up[e + FLANK + 12][4]
    return np.clip(out, 1e-6, 1.0)


def site_accessibility_profile(transcript: str) -> np.ndarray:
    """Per 0-based site start of ``transcript``: the accessibility profile (len(PROFILE_NAMES) values), from one
    RNAplfold fold of the N-padded transcript with W = L = PROFILE_WINDOW (u up to 8)."""
    import RNA

    t = transcript.strip().upper().replace("T", "U").replace("X", "N")
    padded = "N" * FLANK + t + "N" * FLANK
    up = RNA.pfl_fold_up(padded, 8, PROFILE_WINDOW, PROFILE_WINDOW)
    return _profile_rows(up, np.arange(len(t) - SITE_LEN + 1))


def _context_profile(contexts: list[str]) -> np.ndarray:
    """The accessibility profile of each 57-nt context, folded one by one."""
    import RNA

    out = np.empty((len(contexts), len(PROFILE_NAMES)))
    for i, c in enumerate(contexts):
        out[i] = _profile_rows(RNA.pfl_fold_up(c, 8, PROFILE_WINDOW, PROFILE_WINDOW), np.array([0]))[0]
    return out


# --------------------------------------------------------------------------- rule scores
def reynolds_score(sense: str, hairpin_free: bool = True) -> int:
    """Reynolds et al. (2004) Nat Biotechnol 22:326-330 (Fig. 4 criteria) on the 19-nt sense strand:
    +1 GC 30-52 %; +1 per A/U at 15-19; +1 no internal repeat (hairpin Tm < 20 degC); +1 A19; +1 A3; +1 U10;
    -1 G/C at 19; -1 G at 13. Score -2..10; >= 6 is their functional threshold."""
    s = sense.upper().replace("T", "U")
    gc = (s.count("G") + s.count("C")) / len(s)
    score = int(0.30 <= gc <= 0.52) + sum(ch in "AU" for ch in s[14:19]) + int(hairpin_free)
    score += int(s[18] == "A") + int(s[2] == "A") + int(s[9] == "U")
    score -= int(s[18] in "GC") + int(s[12] == "G")
    return score


def ui_tei_score(guide: str, sense: str) -> int:
    """Ui-Tei et al. (2004) Nucleic Acids Res 32:936-948 class-I criteria, number met (0..4): A/U at the
    guide 5' end; G/C at the sense 5' end; >= 5 A/U in the 5'-terminal 7 nt of the guide; no G/C stretch
    longer than 9 nt."""
    g, s = guide.upper().replace("T", "U"), sense.upper().replace("T", "U")
    longest = run = 0
    for ch in s:
        run = run + 1 if ch in "GC" else 0
        longest = max(longest, run)
    return int(g[0] in "AU") + int(s[0] in "GC") + int(sum(ch in "AU" for ch in g[:7]) >= 5) + int(longest <= 9)


def amarzguioui_score(guide: str, sense: str) -> int:
    """Amarzguioui & Prydz (2004) Biochem Biophys Res Commun 316:1050-1058: A/U count of the 3 terminal nt
    at the guide 5' end minus that at the sense 5' end; +1 G/C at sense 1, +1 A at sense 6, +1 A/U at
    sense 19, -1 U at sense 1, -1 G at sense 19. >= 3 is their functional threshold."""
    g, s = guide.upper().replace("T", "U"), sense.upper().replace("T", "U")
    score = sum(ch in "AU" for ch in g[:3]) - sum(ch in "AU" for ch in s[:3])
    score += int(s[0] in "GC") + int(s[5] == "A") + int(s[18] in "AU")
    score -= int(s[0] == "U") + int(s[18] == "G")
    return score


# --------------------------------------------------------------------------- features
def _onehot(codes: np.ndarray) -> np.ndarray:
    """(n, L) codes 0..4 -> (n, 4L) one-hot; N (code 4) -> all zero."""
    n, L = codes.shape
    out = np.zeros((n, L, 4))
    r, c = np.nonzero(codes < 4)
    out[r, c, codes[r, c]] = 1.0
    return out.reshape(n, 4 * L)


def _codes(seqs: list[str], length: int) -> np.ndarray:
    if not seqs:
        return np.zeros((0, length), dtype=np.int64)
    return _CODE[np.frombuffer("".join(seqs).encode(), dtype=np.uint8)].reshape(len(seqs), length)


def _fold_features(guides: list[str], senses: list[str]) -> np.ndarray:
    """ViennaRNA (Turner 2004) single-strand ensemble free energies at 37 degC of guide and passenger
    (kcal/mol; self-structure hinders RISC loading). Reynolds' internal-repeat criterion (a hairpin with
    Tm > 20 degC) would need a third fold per candidate; v2 does not evaluate it (the Reynolds score counts it as
    met), which the study-wise CV showed costs nothing."""
    import RNA

    md37 = RNA.md()
    md37.compute_bpp = 0  # only the ensemble free energy is needed: skip the pair probabilities (same value)
    out = np.empty((len(guides), 2))
    for i, (g, s) in enumerate(zip(guides, senses)):
        out[i, 0] = RNA.fold_compound(g, md37).pf()[1]
        out[i, 1] = RNA.fold_compound(s, md37).pf()[1]
    return out


def _feature_names() -> list[str]:
    names = [f"g{p + 1}_{b}" for p in range(SITE_LEN) for b in _BASES]
    names += [f"up{FLANK_ONEHOT - p}_{b}" for p in range(FLANK_ONEHOT) for b in _BASES]
    names += [f"down{p + 1}_{b}" for p in range(FLANK_ONEHOT) for b in _BASES]
    names += [f"frac_{b}" for b in _BASES] + [f"dinuc_frac_{d}" for d in _DINUC]
    names += [
        "gc_all",
        "gc_g1_7",
        "gc_g8_13",
        "gc_g14_19",
        "gc_g2_8",
        "gc_up",
        "gc_down",
        "longest_gc_run",
        "longest_homopolymer",
    ]
    names += [f"dg_stack{k + 1}" for k in range(SITE_LEN - 1)]
    names += [f"dg_end5_{k}" for k in (2, 3, 4, 5)] + [f"dg_end3_{k}" for k in (2, 3, 4, 5)]
    names += [f"asym_{k}" for k in (2, 3, 4, 5)]
    names += ["dg_duplex", "dh_duplex", "dg_g2_9", "dg_g9_13", "dg_g13_19"]
    names += ["guide_ens_dg", "sense_ens_dg"]
    names += ["reynolds_score", "ui_tei_score", "amarzguioui_score"]
    names += ["p_unpaired_site", "dg_open_site"]
    names += PROFILE_NAMES + ["log_up_site12_19", "log_up_site1_8", "log_up_site9_12"]
    return names


#: column names of :func:`sirna_features` (guide positions 1..19 from the guide 5' end; up1 = the transcript
#: nucleotide just 5' of the site, down1 = just 3'; energies in kcal/mol; fractions 0..1)
FEATURE_NAMES: list[str] = _feature_names()


def _composition(g: list[str], gcode: np.ndarray, ccode: np.ndarray, di: np.ndarray) -> list[np.ndarray]:
    """Composition block: base and dinucleotide fractions of the guide, GC by guide region and in each flank,
    longest GC run and homopolymer."""
    n = len(g)
    mono = np.stack([(gcode == b).mean(1) for b in range(4)], axis=1)
    dcount = np.zeros((n, 16))
    np.add.at(dcount, (np.repeat(np.arange(n), SITE_LEN - 1), di.ravel()), 1.0)
    is_gc = np.isin(gcode, (1, 2)).astype(float)
    regions = [is_gc[:, sl].mean(1) for sl in (slice(0, 19), slice(0, 7), slice(7, 13), slice(13, 19), slice(1, 8))]
    flanks = [
        np.isin(sub, (1, 2)).sum(1) / np.maximum((sub < 4).sum(1), 1)
        for sub in (ccode[:, :FLANK], ccode[:, FLANK + SITE_LEN :])
    ]
    runs = np.zeros((n, 2))
    for i, s in enumerate(g):
        run_gc = run_h = best_gc = best_h = 0
        prev = ""
        for ch in s:
            run_gc = run_gc + 1 if ch in "GC" else 0
            run_h = run_h + 1 if ch == prev else 1
            prev = ch
            best_gc, best_h = max(best_gc, run_gc), max(best_h, run_h)
        runs[i] = best_gc, best_h
    return [mono, dcount / (SITE_LEN - 1), np.column_stack(regions + flanks).reshape(n, 7), runs]


def sirna_features(
    guides: Sequence[str],
    contexts: Sequence[str],
    accessibility: Sequence[float] | np.ndarray | None = None,
    profile: np.ndarray | None = None,
) -> np.ndarray:
    """Feature matrix (n, len(FEATURE_NAMES)) for guides and their 57-nt target contexts.

    ``guides``: 19-nt guide (antisense) strands, 5'->3'. ``contexts``: for each guide, its target site on
    the mRNA plus exactly FLANK = 19 nt upstream and 19 nt downstream (57 nt, sense orientation, DNA or RNA;
    N or X pad past the transcript ends). ``accessibility``: optional precomputed P(site unpaired) per row
    (from :func:`site_accessibility` on the whole transcript, the fast path); else each context is folded.
    ``profile``: likewise the accessibility profile per row (:func:`site_accessibility_profile`).

    Blocks: guide one-hot (76); one-hot of the 2 flank nt each side (16); composition (29: base and
    dinucleotide fractions, GC by guide region and flank, longest GC run / homopolymer); nearest-neighbour
    duplex thermodynamics (35: 18 stacks, 5'/3' end stabilities and their asymmetry over 2-5 stacks, total
    dG/dH, regional dG); ViennaRNA strand ensemble energies (2); Reynolds / Ui-Tei / Amarzguioui scores (3);
    site accessibility (2: unpaired probability and opening energy); accessibility profile (25: unpaired
    probability of each site nt and of the seed-target, 5' and cleavage-site stretches, W = L = 20)."""
    g, c = _validate(guides, contexts)
    n = len(g)
    if accessibility is None:
        acc = _context_accessibility(c)
    else:
        acc = np.asarray(accessibility, dtype=float).reshape(-1)
        if acc.shape[0] != n:
            raise ValueError(f"accessibility has {acc.shape[0]} values for {n} guides")
        bad = np.flatnonzero(~((acc >= 0) & (acc <= 1)))
        if bad.size:
            raise ValueError(f"index {bad[0]}: accessibility {acc[bad[0]]} is not a probability in [0, 1]")
    prof = _context_profile(c) if profile is None else np.asarray(profile, dtype=float)
    if prof.shape != (n, len(PROFILE_NAMES)):
        raise ValueError(f"profile has shape {prof.shape}, expected {(n, len(PROFILE_NAMES))}")
    senses = [x[FLANK : FLANK + SITE_LEN] for x in c]
    gcode = _codes(g, SITE_LEN)
    ccode = _codes(c, CONTEXT_LEN)
    cols: list[np.ndarray] = [
        _onehot(gcode),
        _onehot(ccode[:, FLANK - FLANK_ONEHOT : FLANK]),
        _onehot(ccode[:, FLANK + SITE_LEN : FLANK + SITE_LEN + FLANK_ONEHOT]),
    ]

    di = gcode[:, :-1] * 4 + gcode[:, 1:]
    cols += _composition(g, gcode, ccode, di)

    # nearest-neighbour thermodynamics, guide orientation: stack k joins guide nt k and k+1
    stack_dg, stack_dh = _DG_TABLE[di], _DH_TABLE[di]
    au5 = np.isin(gcode[:, 0], (0, 3)).astype(float)  # terminal A-U pair at the guide 5' end
    au3 = np.isin(gcode[:, -1], (0, 3)).astype(float)
    end5 = [stack_dg[:, :k].sum(1) + au5 * _TERM_AU_DG for k in (2, 3, 4, 5)]
    end3 = [stack_dg[:, -k:].sum(1) + au3 * _TERM_AU_DG for k in (2, 3, 4, 5)]
    total_dg = stack_dg.sum(1) + _INIT_DG + (au5 + au3) * _TERM_AU_DG
    total_dh = stack_dh.sum(1) + _INIT_DH + (au5 + au3) * _TERM_AU_DH
    cols += [
        stack_dg,
        np.column_stack(
            end5
            + end3
            + [a - b for a, b in zip(end5, end3)]
            + [total_dg, total_dh, stack_dg[:, 1:8].sum(1), stack_dg[:, 8:12].sum(1), stack_dg[:, 12:].sum(1)]
        ).reshape(n, 17),
    ]

    fold = _fold_features(g, senses) if n else np.zeros((0, 2))
    cols.append(fold)
    rules = [[reynolds_score(s, True), ui_tei_score(x, s), amarzguioui_score(x, s)] for x, s in zip(g, senses)]
    cols.append(np.asarray(rules, dtype=float).reshape(n, 3))
    cols.append(np.column_stack([acc, -_KT * np.log(np.maximum(acc, 1e-12))]).reshape(n, 2))
    cols += [prof, np.log(np.clip(prof[:, -3:], 1e-6, 1.0))]
    X = np.column_stack(cols) if n else np.zeros((0, len(FEATURE_NAMES)))
    assert X.shape[1] == len(FEATURE_NAMES)
    return X


# --------------------------------------------------------------------------- model
GROUPS = ("raw", "rank")  #: label scales the components were trained on (measured values; within-study ranks)


class _Ensemble:
    """For each label scale (the measured knock-down; its within-study normal scores), a LightGBM bag (numba
    forests), an RBF support-vector regressor and a ridge regression (the last two on standardised features).
    Each component's output is standardised with constants from training, the components are averaged and the
    average is mapped back to the knock-down scale by a linear fit on out-of-fold predictions; see
    scripts/train_sirna_model.py."""

    def __init__(self, path: Path):
        from .sirna_efficacy_trees import FOREST_KEYS

        with np.load(path, allow_pickle=False) as z:
            self.n_features = int(z["n_features"])
            self.mean, self.scale = z["scaler_mean"], z["scaler_scale"]
            self.comp_mean, self.comp_sd, self.calib = z["comp_mean"], z["comp_sd"], z["calib"]
            self.forests = {
                grp: [{k: z[f"{grp}_lgbm{i}_{k}"] for k in FOREST_KEYS} for i in range(int(z[f"{grp}_n_lgbm"]))]
                for grp in GROUPS
            }
            self.svr = {
                grp: (
                    z[f"{grp}_svr_support"].astype(np.float32),
                    z[f"{grp}_svr_dual"],
                    float(z[f"{grp}_svr_intercept"]),
                    float(z[f"{grp}_svr_gamma"]),
                )
                for grp in GROUPS
            }
            self.ridge = {grp: (z[f"{grp}_ridge_coef"], float(z[f"{grp}_ridge_intercept"])) for grp in GROUPS}

    def predict_parts(self, X: np.ndarray) -> np.ndarray:
        """(n, 6) raw outputs: LightGBM, SVR, ridge for each label scale."""
        from .sirna_efficacy_trees import predict_forest

        if X.shape[1] != self.n_features:
            raise ValueError(f"model expects {self.n_features} features, got {X.shape[1]}")
        Z = (X - self.mean) / self.scale
        # the RBF kernel in single precision: 4x faster, predictions equal to 1e-6 (tested)
        z32 = Z.astype(np.float32)
        zz = (z32**2).sum(1)[:, None]
        parts = []
        for grp in GROUPS:
            parts.append(np.mean([predict_forest(f, X) for f in self.forests[grp]], axis=0))
            sv, dual, b, gamma = self.svr[grp]
            sq = zz + (sv**2).sum(1)[None, :] - 2.0 * z32 @ sv.T
            parts.append(np.exp(np.float32(-gamma) * np.maximum(sq, 0.0)).astype(np.float64) @ dual + b)
            w, b = self.ridge[grp]
            parts.append(Z @ w + b)
        return np.column_stack(parts)

    def predict(self, X: np.ndarray) -> np.ndarray:
        m = ((self.predict_parts(X) - self.comp_mean) / self.comp_sd).mean(1)
        return np.clip(self.calib[0] + self.calib[1] * m, 0.0, 1.0)


_LOCK = threading.Lock()
_MODEL: _Ensemble | None = None


def load_model(path: Path | str | None = None) -> _Ensemble:
    """The shipped ensemble (cached after the first call); ``path`` loads another file, uncached."""
    global _MODEL
    if path is not None:
        return _Ensemble(Path(path))
    with _LOCK:
        if _MODEL is None:
            if not MODEL_PATH.exists():
                raise FileNotFoundError(f"{MODEL_PATH} is missing; run scripts/train_sirna_model.py")
            _MODEL = _Ensemble(MODEL_PATH)
    return _MODEL


def _load_info() -> dict:
    info = {
        "version": MODEL_VERSION,
        "model_file": MODEL_PATH.name,
        "site_len_nt": SITE_LEN,
        "flank_nt": FLANK,
        "context_len_nt": CONTEXT_LEN,
        "n_features": len(FEATURE_NAMES),
    }
    if META_PATH.exists():
        info.update(json.loads(META_PATH.read_text()))
    return info


#: metadata of the shipped model: training data, CV and held-out figures, anchors, reproducing command
MODEL_INFO: dict = _load_info()


def predict_sirna_efficacy(
    guides: Sequence[str],
    contexts: Sequence[str],
    accessibility: Sequence[float] | np.ndarray | None = None,
    profile: np.ndarray | None = None,
) -> np.ndarray:
    """Predicted normalised knock-down (0..1, the siRBench ``efficiency`` scale; higher = stronger) for
    each guide; arguments as for :func:`sirna_features`."""
    X = sirna_features(guides, contexts, accessibility, profile)
    if X.shape[0] == 0:
        return np.zeros(0)
    return load_model().predict(X)


def transcript_sites(transcript: str) -> tuple[np.ndarray, list[str], list[str]]:
    """Every 19-nt site of ``transcript`` made only of A/C/G/T/U: (0-based starts, guides (RNA, 5'->3'),
    57-nt contexts padded with N past the ends)."""
    t = transcript.strip().upper().replace("T", "U").replace("X", "N")
    bad = [i for i, ch in enumerate(t) if ch not in "ACGUN"]
    if bad:
        raise ValueError(f"transcript position {bad[0]}: {t[bad[0]]!r} is not A/C/G/T/U/N")
    padded = "N" * FLANK + t + "N" * FLANK
    comp = str.maketrans("ACGU", "UGCA")
    starts, guides, contexts = [], [], []
    for s in range(len(t) - SITE_LEN + 1):
        site = t[s : s + SITE_LEN]
        if "N" in site:
            continue
        starts.append(s)
        guides.append(site.translate(comp)[::-1])
        contexts.append(padded[s : s + CONTEXT_LEN])
    return np.array(starts, dtype=np.int64), guides, contexts


def predict_transcript(transcript: str) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Score every 19-nt site of a transcript (fast path: one sliding-window fold for accessibility).

    Returns (0-based site starts, guides 5'->3', predicted knock-down 0..1)."""
    starts, guides, contexts = transcript_sites(transcript)
    if starts.size == 0:
        return starts, guides, np.zeros(0)
    acc = site_accessibility(transcript)[starts]
    prof = site_accessibility_profile(transcript)[starts]
    return starts, guides, predict_sirna_efficacy(guides, contexts, accessibility=acc, profile=prof)
