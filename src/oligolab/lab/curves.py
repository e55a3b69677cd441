"""Curve analysis of a run: Cq by three methods, PCR efficiency, the amplification call and QC flags.

* ``td0`` (LinRegPCR TD0, the default Cq): see :mod:`.linregpcr`.
* ``cq_threshold``: the fractional cycle where the baseline-corrected curve first crosses a per-target
  threshold, interpolated in log space. The automatic threshold is the geometric median, over the target's
  amplified curves, of the window-of-linearity mid-point fluorescence, so it lies in every curve's exponential
  phase and above background (LinRegPCR's common-threshold idea); a lab may fix thresholds per target.
* ``cq_sdm``: the second-derivative maximum of the baseline-corrected curve, refined by a parabola through the
  three discrete second differences around the peak.

The amplification call is LinRegPCR's (a TD0 after four rising cycles, efficiency > 1.4) and, in addition, a
rise of at least :data:`MIN_RISE_SNR` times the curve's own noise: noise and drift can produce four rising
cycles and a steep log slope after baseline subtraction, never a rise of many noise units. On the shipped real
runs the smallest rise of an amplified curve is 49 noise units; the false calls LinRegPCR's criteria make on
white noise and on drifting real baselines (tests/test_lab_curves.py) stay below 15.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import InputError
from . import qc
from .linregpcr import NEGATIVE_SAMPLE_TYPES, LinRegResult, linregpcr
from .run import Run, check_complete, pad_unrecorded_start, repair_gaps

#: an amplified curve must rise by at least this many noise SDs between the start of its rise and TD0 + 1
MIN_RISE_SNR = 20.0
#: cycles that may be missing at the start of every curve before the run is refused
MAX_UNRECORDED_START = 5
CQ_METHODS = ("td0", "threshold", "sdm")


@dataclass
class CurveResults:
    """All curves of one run after analysis: a table (one row per curve) and the arrays behind the plots."""

    run: Run
    table: pd.DataFrame
    corrected: np.ndarray            # baseline-corrected fluorescence (curves x cycles)
    thresholds: dict[str, float]     # per target, in baseline-corrected fluorescence units
    linreg: LinRegResult
    notes: list[str] = field(default_factory=list)


def prepare(run: Run, gaps: str = "refuse") -> Run:
    """Check a run's readings before analysis: pad an unrecorded start, then refuse or repair gaps.

    ``gaps="refuse"`` (default) raises :class:`InputError` naming the first well with missing or NaN readings;
    ``gaps="repair"`` interpolates them and marks those curves for review.
    """
    if gaps not in ("refuse", "repair"):
        raise ValueError("gaps must be 'refuse' or 'repair'")
    used = (run.layout["role"] != "empty").to_numpy()
    finite = np.isfinite(run.fluor[used]) if used.any() else np.isfinite(run.fluor)
    recorded = finite.any(axis=0)
    if recorded.any():
        first = int(np.argmax(recorded))
        if first > MAX_UNRECORDED_START and gaps == "refuse":
            raise InputError(run.source, f"no curve has readings for cycles 1-{first}",
                             "export the whole run, or analyse with --repair-gaps")
        run = pad_unrecorded_start(run)
    if gaps == "refuse":
        check_complete(run)
        return run
    return repair_gaps(run) if np.isnan(run.fluor).any() else run


def _noise_sigma(fluor: np.ndarray, rise_start: np.ndarray, amplified: np.ndarray,
                 groups: np.ndarray | None = None) -> np.ndarray:
    """Robust SD of single readings from the second differences of the pre-rise part of each curve.

    A curve's own estimate can be too small when few cycles precede its rise; it is never taken below the
    median estimate of its group (same target, hence same dye and chemistry on the plate).
    """
    n, c = fluor.shape
    d2 = np.diff(fluor, 2, axis=1)
    end = np.where(amplified, np.maximum(rise_start - 2, 8), c - 2)
    mask = np.arange(c - 2)[None, :] < np.minimum(end, c - 2)[:, None]
    vals = np.where(mask, d2, np.nan)
    med = np.nanmedian(vals, axis=1)
    mad = np.nanmedian(np.abs(vals - med[:, None]), axis=1)
    sigma = 1.4826 * mad / np.sqrt(6.0)
    sigma = np.nan_to_num(sigma)
    floor = np.zeros(n)
    if groups is not None:
        for g in np.unique(groups):
            sel = groups == g
            floor[sel] = np.median(sigma[sel])
    level = np.nanmedian(np.abs(fluor), axis=1)
    return np.maximum.reduce([sigma, floor, 1e-9 * (level + 1.0)])


def auto_thresholds(targets: np.ndarray, mid_fluor: np.ndarray, usable: np.ndarray) -> dict[str, float]:
    """Per-target threshold: geometric median of window mid-point fluorescence over usable curves."""
    out: dict[str, float] = {}
    for t in pd.unique(targets):
        sel = usable & (targets == t) & (mid_fluor > 0)
        if sel.any():
            out[str(t)] = float(10 ** np.median(np.log10(mid_fluor[sel])))
    return out


def threshold_cq(corrected: np.ndarray, threshold: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Fractional cycle of the first upward crossing of ``threshold`` at or after index ``start`` (NaN if none)."""
    n, c = corrected.shape
    idx = np.arange(c)[None, :]
    above = (corrected >= threshold[:, None]) & (idx >= np.maximum(start, 1)[:, None])
    prev_below = np.zeros_like(above)
    prev_below[:, 1:] = corrected[:, :-1] < threshold[:, None]
    cross = above & prev_below
    has = cross.any(axis=1) & np.isfinite(threshold)
    k = np.argmax(cross, axis=1)
    rows = np.arange(n)
    lo, hi = corrected[rows, np.maximum(k - 1, 0)], corrected[rows, k]
    with np.errstate(invalid="ignore", divide="ignore"):
        frac_log = (np.log10(threshold) - np.log10(lo)) / (np.log10(hi) - np.log10(lo))
        frac_lin = (threshold - lo) / (hi - lo)
    frac = np.where(lo > 0, frac_log, frac_lin)
    return np.where(has, k + frac, np.nan)  # index k-1 is cycle k, so cycle = (k - 1) + 1 + frac


def sdm_cq(corrected: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Second-derivative maximum between cycle indices lo..hi, refined by a parabola (NaN if none)."""
    n, c = corrected.shape
    sd = np.full((n, c), np.nan)
    sd[:, 1:-1] = corrected[:, 2:] - 2 * corrected[:, 1:-1] + corrected[:, :-2]
    idx = np.arange(c)[None, :]
    ok = (idx >= np.maximum(lo, 1)[:, None]) & (idx <= np.minimum(hi, c - 2)[:, None])
    masked = np.where(ok & np.isfinite(sd), sd, -np.inf)
    k = np.argmax(masked, axis=1)
    rows = np.arange(n)
    valid = np.isfinite(masked[rows, k]) & (masked[rows, k] > 0) & (k >= 2) & (k <= c - 3)
    kk = np.clip(k, 2, c - 3)
    a, b, d = sd[rows, kk - 1], sd[rows, kk], sd[rows, kk + 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        offset = 0.5 * (a - d) / (a - 2 * b + d)
    offset = np.where(np.isfinite(offset) & (np.abs(offset) <= 1), offset, 0.0)
    return np.where(valid, kk + 1 + offset, np.nan)


def analyze_curves(run: Run, *, thresholds: dict[str, float] | None = None, min_rise_snr: float = MIN_RISE_SNR,
                   replicate_max_sd: float = qc.REPLICATE_MAX_SD) -> CurveResults:
    """Analyse every curve of a gap-free run (see :func:`prepare`)."""
    if np.isnan(run.fluor).any():
        raise ValueError("analyze_curves needs a gap-free run: call prepare() first")
    lay = run.layout
    n, c = run.fluor.shape
    targets = lay["target"].to_numpy(dtype=object)
    roles = lay["role"].to_numpy(dtype=object)
    excluded = (lay["excluded"] != "").to_numpy()
    negative = np.isin(roles, ["ntc", "empty"]) | lay["sample_type"].str.lower().isin(NEGATIVE_SAMPLE_TYPES).to_numpy()
    groups = pd.factorize(lay["target"])[0]
    lrp = linregpcr(run.fluor, groups, negative | excluded)

    sigma = _noise_sigma(run.fluor, lrp.rise_start, lrp.amplified, groups)
    rows = np.arange(n)
    top = np.clip(np.where(lrp.td0 > 0, np.round(lrp.td0).astype(np.int64), c - 1), 0, c - 1)
    rise = run.fluor[rows, top] - run.fluor[rows, np.clip(lrp.rise_start - 1, 0, c - 1)]
    snr = rise / sigma
    amplified = lrp.amplified & (snr >= min_rise_snr)

    usable = amplified & (lrp.baseline_error == 0) & (roles != "empty") & ~excluded
    thr = auto_thresholds(targets, lrp.window_mid_fluor, usable)
    if thresholds:
        thr.update({str(k): float(v) for k, v in thresholds.items()})
    thr_vec = np.array([thr.get(str(t), np.nan) for t in targets])
    cq_thr = threshold_cq(lrp.corrected, thr_vec, np.maximum(lrp.rise_start - 2, 1))
    cq_sdm = sdm_cq(lrp.corrected, lrp.rise_start - 2, np.where(lrp.td0 > 0, np.round(lrp.td0) + 3, c).astype(int))

    cols = {
        "td0": np.where(lrp.td0 > 0, lrp.td0, np.nan),
        "cq_td0": np.where(amplified, lrp.td0, np.nan),
        "cq_threshold": np.where(amplified, cq_thr, np.nan),
        "cq_sdm": np.where(amplified, cq_sdm, np.nan),
        "cq_threshold_raw": cq_thr,
        "cq_sdm_raw": cq_sdm,
        "threshold": thr_vec,
        "efficiency": np.where(lrp.baseline_error == 0, lrp.efficiency, np.nan),
        "mean_efficiency": np.where(lrp.mean_efficiency > 0, lrp.mean_efficiency, np.nan),
        "mean_efficiency_sd": lrp.mean_efficiency_sd,
        "r2": np.where(lrp.r2 >= 0, lrp.r2, np.nan),
        "baseline": lrp.baseline,
        "window_start": lrp.window_start,
        "window_stop": lrp.window_stop,
        "n_log_phase": lrp.n_log_phase,
        "rise_snr": snr,
        "amplified_linregpcr": lrp.amplified,
        "amplified": amplified,
        "plateau": lrp.plateau,
        "baseline_error": lrp.baseline_error,
        "efficiency_outlier": lrp.efficiency_outlier,
        "used_for_mean_efficiency": lrp.used_for_mean,
    }
    table = pd.concat([lay.reset_index(drop=True), pd.DataFrame(cols)], axis=1)

    flags = qc.curve_flags(run, lrp, table, sigma)
    qc.replicate_flags(table, flags, max_sd=replicate_max_sd)
    table["flags"] = [";".join(f) for f in flags]
    table["review"] = [qc.needs_review(f) for f in flags]
    notes = list(lrp.notes)
    if "unrecorded_start" in run.meta:
        notes.append(run.meta["unrecorded_start"])
    if run.repaired:
        notes.append(f"{len(run.repaired)} curve(s) had missing readings interpolated; they are flagged for review")
    return CurveResults(run=run, table=table, corrected=lrp.corrected, thresholds=thr, linreg=lrp, notes=notes)
