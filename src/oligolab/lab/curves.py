"""Curve analysis of a run: Cq by three methods, PCR efficiency, the amplification call and QC flags.

* ``td0`` (LinRegPCR TD0, the default Cq): see :mod:`.linregpcr`.
* ``cq_threshold``: the fractional cycle where the baseline-corrected curve first crosses a per-target
  threshold, interpolated in log space. The automatic threshold is the geometric median, over the target's
  amplified curves, of the window-of-linearity mid-point fluorescence, so it lies in every curve's exponential
  phase and above background (LinRegPCR's common-threshold idea); a lab may fix thresholds per target.
* ``cq_sdm``: the second-derivative maximum of the baseline-corrected curve, refined by a parabola through the
  three discrete second differences around the peak.

The amplification call is the diagnostic one of :mod:`.calling` (robust baseline, threshold crossing,
logistic shape: ``amplified``, ``not amplified`` or ``review`` with a reason). LinRegPCR's own call stays as
the ``amplified_linregpcr`` column and its efficiency and window as quantification columns; they no longer
decide detection.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import InputError
from . import qc
from .calling import AMPLIFIED, call_curves
from .linregpcr import NEGATIVE_SAMPLE_TYPES, LinRegResult, linregpcr
from .run import Run, check_complete, pad_unrecorded_start, repair_gaps

#: cycles that may be missing at the start of every curve before the run is refused
MAX_UNRECORDED_START = 5
CQ_METHODS = ("td0", "threshold", "sdm")
#: curves analysed together at most (runs of one file with the same cycles; bounds the arrays of a batch)
BATCH_CURVES = 4096


@dataclass
class CurveResults:
    """All curves of one run after analysis: a table (one row per curve) and the arrays behind the plots."""

    run: Run
    table: pd.DataFrame
    corrected: np.ndarray  # baseline-corrected fluorescence (curves x cycles)
    thresholds: dict[str, float]  # per target, in baseline-corrected fluorescence units
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
            raise InputError(
                run.source,
                f"no curve has readings for cycles 1-{first}",
                "export the whole run, or analyse with --repair-gaps",
            )
        run = pad_unrecorded_start(run)
    if gaps == "refuse":
        check_complete(run)
    elif np.isnan(run.fluor).any():
        run = repair_gaps(run)
    return _blank_unused(run)


def _blank_unused(run: Run) -> Run:
    """Curves of empty wells are not analysed: their missing readings become 0 so the array is gap-free."""
    unused = (run.layout["role"] == "empty").to_numpy()[:, None]
    if not (unused & np.isnan(run.fluor)).any():
        return run
    fluor = np.where(unused & np.isnan(run.fluor), 0.0, run.fluor)
    return dataclasses.replace(run, fluor=fluor)


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


def analyze_curves(
    run: Run, *, thresholds: dict[str, float] | None = None, replicate_max_sd: float = qc.REPLICATE_MAX_SD
) -> CurveResults:
    """Analyse every curve of a gap-free run (see :func:`prepare`). The numerics handle NaN and overflow of
    degenerate curves explicitly (a flat curve has no log slope), so numpy's floating-point warnings are off."""
    return analyze_runs([run], thresholds=thresholds, replicate_max_sd=replicate_max_sd)[0]


def analyze_runs(
    runs: list[Run], *, thresholds: dict[str, float] | None = None, replicate_max_sd: float = qc.REPLICATE_MAX_SD
) -> list[CurveResults]:
    """Analyse several gap-free runs (the runs of one file), each exactly as :func:`analyze_curves` would.

    Runs with the same number of cycles are analysed as one array (up to :data:`BATCH_CURVES` curves), every
    per-target and per-run figure kept per run: a file of many small runs (64 runs of 6 curves) would otherwise
    pay numpy's fixed cost per call once per run, about 10 ms a run.
    """
    if any(np.isnan(run.fluor).any() for run in runs):
        raise ValueError("analyze_curves needs a gap-free run: call prepare() first")
    out: list[CurveResults | None] = [None] * len(runs)
    batches: dict[int, list[list[int]]] = {}
    for i, run in enumerate(runs):
        same = batches.setdefault(run.n_cycles, [[]])
        if same[-1] and sum(runs[j].n_curves for j in same[-1]) + run.n_curves > BATCH_CURVES:
            same.append([])
        same[-1].append(i)
    with np.errstate(all="ignore"):
        for batch in (b for same in batches.values() for b in same):
            for i, res in zip(batch, _analyze_together([runs[i] for i in batch], thresholds, replicate_max_sd)):
                out[i] = res
    return [r for r in out if r is not None]


def _analyze_together(
    runs: list[Run], thresholds: dict[str, float] | None, replicate_max_sd: float
) -> list[CurveResults]:
    """The curve numerics of runs with the same cycles as one array; tables, flags and notes per run."""
    sizes = [run.n_curves for run in runs]
    plates = np.repeat(np.arange(len(runs)), sizes)
    ends = np.cumsum(sizes)
    cuts = [slice(int(e - k), int(e)) for e, k in zip(ends, sizes)]
    fluor = runs[0].fluor if len(runs) == 1 else np.concatenate([run.fluor for run in runs])
    n, c = fluor.shape

    def column(name: str) -> np.ndarray:
        return np.concatenate([run.layout[name].to_numpy(dtype=object) for run in runs])

    targets, roles = column("target"), column("role")
    excluded = column("excluded") != ""
    stype = [str(v).lower() for v in column("sample_type")]
    negative = np.isin(roles, ["ntc", "empty"]) | np.isin(stype, list(NEGATIVE_SAMPLE_TYPES))
    target_code = pd.factorize(targets)[0]
    groups = plates * (int(target_code.max()) + 1) + target_code  # a target within its run
    lrp = linregpcr(fluor, groups, negative | excluded, plates=plates)

    used = (roles != "empty") & ~excluded
    dx = call_curves(fluor, targets, used=used, thresholds=thresholds, groups=groups, plates=plates)
    amplified = (dx.call == AMPLIFIED) & used
    usable = amplified & (lrp.baseline_error == 0) & (roles != "empty") & ~excluded
    per_run: list[dict[str, float]] = []
    thr_vec = np.empty(n)
    for cut in cuts:
        thr = auto_thresholds(targets[cut], lrp.window_mid_fluor[cut], usable[cut])
        if thresholds:
            thr.update({str(k): float(v) for k, v in thresholds.items()})
        thr_vec[cut] = [thr.get(str(t), np.nan) for t in targets[cut]]
        per_run.append(thr)
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
        "rise_snr": dx.rise_sd,
        "amplified_linregpcr": lrp.amplified,
        "amplified": amplified,
        "call": np.where(roles == "empty", "", dx.call),
        "call_reason": np.where(used, dx.reason, ""),
        "cq_detect": dx.cq_detect,
        "detection_threshold": dx.threshold,
        "sigmoid_r2": dx.sigmoid_r2,
        "plateau": lrp.plateau,
        "baseline_error": lrp.baseline_error,
        "efficiency_outlier": lrp.efficiency_outlier,
        "used_for_mean_efficiency": lrp.used_for_mean,
    }
    return [
        _run_results(run, {k: v[cut] for k, v in cols.items()}, lrp.take(cut), dx.noise[cut], thr, replicate_max_sd)
        for run, cut, thr in zip(runs, cuts, per_run)
    ]


def _run_results(
    run: Run,
    cols: dict[str, np.ndarray],
    lrp: LinRegResult,
    sigma: np.ndarray,
    thr: dict[str, float],
    replicate_max_sd: float,
) -> CurveResults:
    """One run's table (layout + results), QC flags and notes."""
    lay = run.layout
    columns = {**{k: lay[k].to_numpy() for k in lay.columns}, **cols}  # the table's columns, before the flags
    flags = qc.curve_flags(run, lrp, columns, sigma)
    qc.replicate_flags(columns, flags, max_sd=replicate_max_sd)
    table = pd.DataFrame(
        {
            **{k: lay[k].array for k in lay.columns},
            **cols,
            "flags": [";".join(f) for f in flags],
            "review": [qc.needs_review(f) for f in flags],
        },
        copy=False,
    )
    notes = list(lrp.notes)
    notes += [run.meta[k] for k in ("layout_note", "unrecorded_start", "cycle_zero") if k in run.meta]
    if run.repaired:
        notes.append(f"{len(run.repaired)} curve(s) had missing readings interpolated; they are flagged for review")
    return CurveResults(run=run, table=table, corrected=lrp.corrected, thresholds=thr, linreg=lrp, notes=notes)
