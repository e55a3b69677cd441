"""The diagnostic amplification call: each curve is ``amplified``, ``not amplified`` or ``review``.

LinRegPCR's calls (kept as the ``amplified_linregpcr`` column) are made for quantification: a curve without a
clean window of linearity is "not amplified" even when it rises by hundreds of noise units. A diagnostic
decision must never let such a curve through as negative, so the call here stands on what the curve shows:

1. **Robust baseline.** Up to 14 cycles before the rise are fitted with a straight line, then again without
   readings more than 3.5 robust SDs off (an early spike or settling step). The rise starts
   :data:`ONSET_CYCLES` before the curve's steepest acceleration, searched before its steepest rise (plateau
   noise is no onset) and used when it stands out of the noise; otherwise, as for noisy or slowly rising
   curves, two cycles before the curve leaves the level of its first cycles for good. After the window the
   baseline keeps its last value, so a drift is never extrapolated into a rise. Fewer than 8 such cycles give
   a constant (their median). The noise SD is the robust SD (1.4826 x MAD) of the residuals (with fewer than 8
   baseline cycles never below half the target's median noise), never below the readings' own resolution
   (instruments that print two decimals).
2. **Threshold crossing.** Per target, the detection threshold is :data:`THRESHOLD_NOISE_SD` times the target's
   median noise SD above the baseline (the usual "10 SD of the baseline" rule), or the value a rule set or the
   user fixes. A crossing counts when the curve then stays above the threshold (at least 4 cycles or to the end
   of the run; a SYBR curve that declines after its plateau still counts). ``cq_detect`` is the crossing cycle.
3. **Shape.** A four-parameter logistic (offset, height, midpoint, slope) is fitted to the baseline-corrected
   curve up to two cycles after its highest point by damped Gauss-Newton, all curves at once, leaving out
   short dips and the settling of the first cycles before a flat baseline. The shape is an amplification when
   the logistic explains at least :data:`MIN_SIGMOID_R2` of the variance or fits within
   :data:`FIT_WITHIN_NOISE` noise SDs (weak curves), rises no faster than 0.4 cycles per e-fold (a step), and
   either looks like a PCR (at most 12 cycles per e-fold, 4x better than a straight line; late-rising curves
   with their midpoint after the last cycle included) or climbs from the baseline band to the threshold within
   :data:`SHARP_ONSET_CYCLES` cycles (curves that keep rising without a plateau, as in long CFX runs).
4. **A baseline before the rise.** An amplification leaves a flat baseline: at least
   :data:`MIN_BASELINE_CYCLES` cycles within the baseline band before the crossing, unless it multiplies the
   signal (a rise of :data:`MIN_RELATIVE_RISE` of the first cycles' level: a very early amplification); a
   drift rises from the first cycles by a few percent. A baseline line that changes across its window by more
   than :data:`MAX_BASELINE_DRIFT` of the rise makes the call doubtful.

A curve that crosses, rises by at least :data:`CLEAR_RISE_SD` noise SDs (over its baseline and over the level
of its first cycles), has the shape and a baseline before it, with its crossing before the last
:data:`LATE_CYCLES` cycles, is ``amplified``. A curve with no crossing, a rise below :data:`FLAT_RISE_SD` and no
large drift is ``not amplified``. Everything between is ``review``, with the reason in words a technician
reads at the bench (weak rise, rise in the last cycles, not an amplification shape, no flat baseline, a
drifting baseline). Thresholds were set on the real runs in data/qpcr and data/qpcr/realworld; the figures
per file are in benchmarks/RESULTS.md (benchmarks/lab_calls.py; asserted by tests/test_lab_realworld.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

AMPLIFIED, NOT_AMPLIFIED, REVIEW = "amplified", "not amplified", "review"
CALLS = (AMPLIFIED, NOT_AMPLIFIED, REVIEW)
#: rise over the baseline (noise SDs) of a clear amplification
CLEAR_RISE_SD = 20.0
#: rise (noise SDs) below which a curve without a threshold crossing is flat
FLAT_RISE_SD = 8.0
#: automatic detection threshold, in the target's median noise SDs above the baseline
THRESHOLD_NOISE_SD = 10.0
#: cycles a curve must stay above the threshold after crossing it
SUSTAIN_CYCLES = 4
#: a crossing in the last cycles leaves no room to see the shape
LATE_CYCLES = 3
#: least variance of the corrected curve the fitted logistic must explain
MIN_SIGMOID_R2 = 0.97
#: ... or leave residuals (RMS) of at most this many noise SDs (a weak curve cannot fit better than its noise)
FIT_WITHIN_NOISE = 2.0
#: the logistic must leave at most this fraction of a straight line's residual (drift is a line)
MAX_SIGMOID_VS_LINE = 0.25
#: logistic slope range (cycles per e-fold) of an amplification
SIGMOID_SCALE_RANGE = (0.4, 12.0)
#: baseline cycles needed to fit a slope (fewer: constant baseline)
MIN_LINE_CYCLES = 8
#: cycles before the threshold crossing the curve must spend flat on its baseline (a drift rises from the start)
MIN_BASELINE_CYCLES = 5
#: ... unless it rises by at least this fraction of the level of its first cycles (a drift adds a few percent)
MIN_RELATIVE_RISE = 0.5
#: a baseline line that changes across its window by more than this fraction of the rise makes the call doubtful
MAX_BASELINE_DRIFT = 0.6
#: a baseline reading lies within this many noise SDs of the baseline (or within BASELINE_BAND_RISE of the rise)
BASELINE_BAND_SD = 4.0
#: ... or within this fraction of the curve's rise (a slightly curved baseline under a huge rise is flat)
BASELINE_BAND_RISE = 0.03
#: a sharp onset climbs from the baseline band to the threshold within this many cycles (then the logistic may
#: rise slowly after it: curves without a plateau)
SHARP_ONSET_CYCLES = 4.0
#: the first cycles skipped by the baseline (lamp and detector settling)
SKIP_CYCLES = 2
#: the baseline window ends this many cycles before the steepest acceleration of the curve
ONSET_CYCLES = 5
#: the baseline window holds at most this many cycles (the ones nearest the rise: early drift is curved)
MAX_WINDOW_CYCLES = 14


@dataclass
class CallResult:
    """Per-curve results of the diagnostic call (arrays over curves; fluorescence in the file's units)."""

    call: np.ndarray  # AMPLIFIED / NOT_AMPLIFIED / REVIEW
    reason: np.ndarray  # '' or the technician's words
    corrected: np.ndarray  # (curves, cycles) readings minus the robust baseline
    noise: np.ndarray  # noise SD of single readings
    rise_sd: np.ndarray  # highest 3-cycle mean of the corrected curve, in noise SDs
    threshold: np.ndarray  # detection threshold of each curve's target
    cq_detect: np.ndarray  # cycle where the curve crosses the detection threshold for good (NaN: never)
    sigmoid_r2: np.ndarray  # variance explained by the fitted logistic (NaN: not fitted)
    sigmoid_mid: np.ndarray  # its midpoint (cycle)
    sigmoid_scale: np.ndarray  # its slope (cycles per e-fold)
    shape_ok: np.ndarray  # bool: the shape is an amplification


def baseline_window_end(fluor: np.ndarray) -> np.ndarray:
    """Index where each curve's baseline window ends: a few cycles before its steepest acceleration.

    The acceleration is the 3-cycle mean of the second difference; its peak is an amplification's onset only
    when it stands out of the curve's own second-difference noise (robust SD over the whole curve, where the
    rise occupies a minority of cycles). A curve without such a peak (flat or drifting) uses every cycle.
    """
    n, c = fluor.shape
    if c < 8:
        return np.full(n, c)
    d2 = np.diff(fluor, 2, axis=1)
    acc = (d2[:, :-2] + d2[:, 1:-1] + d2[:, 2:]) / 3.0  # centred on cycle index k + 2
    search = acc.copy()
    search[:, :SKIP_CYCLES] = -np.inf  # settling of the first cycles is no onset
    # the onset comes before the steepest rise: plateau noise (often larger than the baseline's) is no onset
    steepest = steepest_cycle(fluor)
    search[np.arange(acc.shape[1])[None, :] + 2 > steepest[:, None]] = -np.inf
    peak = np.argmax(search, axis=1)
    # the noise of the acceleration before the peak (the deceleration after it is part of the curve)
    k = np.arange(acc.shape[1])[None, :]
    before = (k >= SKIP_CYCLES) & (k < (peak - 3)[:, None])
    before = np.where((before.sum(axis=1) >= 6)[:, None], before, True)
    centre = _masked_median(acc, before, np.zeros(n))
    spread = 1.4826 * _masked_median(np.abs(acc - centre[:, None]), before, np.zeros(n))
    acc = search
    standout = acc[np.arange(n), peak] > 3.0 * np.maximum(spread, _resolution(fluor))
    return np.where(standout, peak + 2 - ONSET_CYCLES, _level_rise_end(fluor))


def steepest_cycle(fluor: np.ndarray) -> np.ndarray:
    """Index of each curve's steepest rise (largest 3-cycle mean of the first difference) after the settling
    cycles."""
    d1 = np.diff(fluor, axis=1)
    if d1.shape[1] < 3:
        return np.full(fluor.shape[0], fluor.shape[1] - 1)
    slope = (d1[:, :-2] + d1[:, 1:-1] + d1[:, 2:]) / 3.0  # centred on cycle index k + 2 (k+1..k+2)
    slope[:, :SKIP_CYCLES] = -np.inf
    return np.argmax(slope, axis=1) + 2


def _level_rise_end(fluor: np.ndarray) -> np.ndarray:
    """For curves without a sharp onset: two cycles before the 3-cycle mean leaves the level of the first
    cycles (by 5 step-noise SDs) for good; the first half of the run when it never does."""
    n, c = fluor.shape
    lo = min(SKIP_CYCLES, max(c - 6, 0))
    level = np.median(fluor[:, lo : lo + 6], axis=1)
    steps = np.diff(fluor[:, lo : min(c, lo + MAX_WINDOW_CYCLES)], axis=1)
    noise = 1.4826 * np.median(np.abs(steps - np.median(steps, axis=1)[:, None]), axis=1) / np.sqrt(2.0)
    noise = np.maximum(noise, _resolution(fluor))
    smooth = fluor.copy()
    smooth[:, 1:-1] = (fluor[:, :-2] + fluor[:, 1:-1] + fluor[:, 2:]) / 3.0
    above = smooth > (level + 5.0 * noise)[:, None]
    stays = np.cumsum(above[:, ::-1], axis=1)[:, ::-1] == np.arange(c, 0, -1)[None, :]
    start = np.where(stays.any(axis=1), np.argmax(stays, axis=1), c)
    return np.where(start < c - 2, start - 2, max(SKIP_CYCLES + MIN_LINE_CYCLES, c // 2))


def _line_fit(x: np.ndarray, y: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares intercept and slope per row over the masked cycles."""
    m = mask.astype(np.float64)
    k = np.maximum(m.sum(axis=1), 1.0)
    yy = np.where(mask, y, 0.0)
    sx, sy = (m * x).sum(1), yy.sum(1)
    sxx, sxy = (m * x * x).sum(1), (yy * x).sum(1)
    den = sxx - sx * sx / k
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = np.where(den > 0, (sxy - sx * sy / k) / den, 0.0)
    return (sy - slope * sx) / k, slope


def robust_baseline(fluor: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(baseline values (curves, cycles), noise SD per curve, each baseline window as (first index, end index)):
    see the module docstring, step 1.

    The window is fitted twice: when the first fit shows the curve already rising for good inside its window
    (a slow rise without a sharp onset), the window is cut before that rise and fitted again.
    """
    n, c = fluor.shape
    x = np.arange(c, dtype=np.float64)[None, :]
    lo = min(SKIP_CYCLES, max(c - 4, 0))
    end = np.maximum(baseline_window_end(fluor), lo + 3)
    base, sigma = _fit_window(fluor, x, lo, end)
    above = (fluor - base) > 4.0 * sigma[:, None]
    tail = np.cumsum(above[:, ::-1], axis=1)[:, ::-1] >= 0.9 * np.arange(c, 0, -1)[None, :]
    rising = tail & above
    start = np.where(rising.any(axis=1), np.argmax(rising, axis=1), c)
    cut = np.maximum(np.minimum(end, start - 1), lo + 3)
    if (cut < end).any():
        base2, sigma2 = _fit_window(fluor, x, lo, cut)
        redo = cut < end
        base, sigma = np.where(redo[:, None], base2, base), np.where(redo, sigma2, sigma)
    # a window that holds the start of a slow rise overstates the noise: the first cycles' step-to-step noise
    # (a drift does not change the steps) caps it
    steps = np.diff(fluor[:, lo : min(c, lo + MAX_WINDOW_CYCLES)], axis=1)
    early = 1.4826 * np.median(np.abs(steps - np.median(steps, axis=1)[:, None]), axis=1) / np.sqrt(2.0)
    sigma = np.minimum(sigma, np.where(early > 0, early, np.inf))
    floor = np.zeros(n)
    few = (np.minimum(cut, end) - np.maximum(lo, np.minimum(cut, end) - MAX_WINDOW_CYCLES)) < MIN_LINE_CYCLES
    for g in np.unique(groups):  # a curve with few baseline cycles: not below half its target's median noise
        sel = groups == g
        floor[sel & few] = 0.5 * np.median(sigma[sel])
    level = np.abs(np.median(fluor, axis=1))
    sigma = np.maximum.reduce([sigma, floor, _resolution(fluor), 1e-9 * (level + 1.0)])
    window_end = np.minimum(cut, end)
    return base, sigma, np.stack([np.maximum(lo, window_end - MAX_WINDOW_CYCLES), window_end], axis=1)


def _fit_window(fluor: np.ndarray, x: np.ndarray, lo: int, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Robust line (or constant, for short windows) through cycles [end - 14, end) of each curve, and the
    robust SD of its residuals."""
    n = fluor.shape[0]
    first = np.maximum(lo, end - MAX_WINDOW_CYCLES)
    mask = (x >= first[:, None]) & (x < end[:, None])
    sigma0 = _resolution(fluor)
    line = mask.sum(axis=1) >= MIN_LINE_CYCLES
    med = _masked_median(fluor, mask, np.zeros(n))
    a, b = _line_fit(x, fluor, mask)
    a, b = np.where(line, a, med), np.where(line, b, 0.0)
    for _ in range(2):
        resid = fluor - (a[:, None] + b[:, None] * x)
        mad = _robust_sd(resid, mask)
        keep = mask & (np.abs(resid) <= 3.5 * np.maximum(mad, sigma0)[:, None])
        a2, b2 = _line_fit(x, fluor, keep)
        med2 = _masked_median(fluor, keep, med)
        a, b = np.where(line, a2, med2), np.where(line, b2, 0.0)
    sigma = _robust_sd(fluor - (a[:, None] + b[:, None] * x), mask)
    # after the window the baseline stays at its last value: a drift is not extrapolated into a "rise"
    held = np.minimum(x, (end - 1)[:, None].astype(np.float64))
    return a[:, None] + b[:, None] * held, np.maximum(sigma, sigma0)


def _masked_median(values: np.ndarray, mask: np.ndarray, default: np.ndarray) -> np.ndarray:
    """Median of each row over its masked cells (``default`` where none); one sort, no masked arrays."""
    n, c = values.shape
    if c == 0:
        return np.asarray(default, dtype=np.float64)
    k = mask.sum(axis=1)
    ordered = np.sort(np.where(mask, values, np.inf), axis=1)
    rows = np.arange(n)
    lo, hi = np.clip((k - 1) // 2, 0, c - 1), np.clip(k // 2, 0, c - 1)
    with np.errstate(invalid="ignore"):
        med = 0.5 * (ordered[rows, lo] + ordered[rows, hi])
    return np.where(k > 0, med, default)


def _robust_sd(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """1.4826 x the median absolute deviation of each row over its masked cells (0 where none)."""
    zero = np.zeros(values.shape[0])
    centre = _masked_median(values, mask, zero)
    return 1.4826 * _masked_median(np.abs(values - centre[:, None]), mask, zero)


def _resolution(fluor: np.ndarray) -> np.ndarray:
    """Half the smallest step between readings of each curve (the printed resolution; 0 for float exports)."""
    steps = np.abs(np.diff(fluor, axis=1))
    steps = np.where(steps > 0, steps, np.inf)
    smallest = steps.min(axis=1) if steps.size else np.zeros(fluor.shape[0])
    return np.where(np.isfinite(smallest), 0.5 * smallest, 0.0)


def detection_thresholds(
    noise: np.ndarray, targets: np.ndarray, fixed: dict[str, float] | None, groups: np.ndarray | None = None
) -> np.ndarray:
    """Per-curve detection threshold: the fixed value of its target, else THRESHOLD_NOISE_SD x the median noise
    SD of its target (``groups``: of its target in its run, when several runs are analysed together)."""
    out = np.empty(noise.size)
    fixed = fixed or {}
    groups = pd.factorize(targets)[0] if groups is None else groups
    for g in np.unique(groups):
        sel = groups == g
        value = fixed.get(str(targets[np.argmax(sel)]))
        out[sel] = float(value) if value is not None else THRESHOLD_NOISE_SD * float(np.median(noise[sel]))
    return out


def sustained_crossing(corrected: np.ndarray, threshold: np.ndarray) -> np.ndarray:
    """Fractional cycle (1-based) where each curve crosses its threshold into the stretch above it that holds
    the curve's highest point, when that stretch lasts at least :data:`SUSTAIN_CYCLES` cycles (or to the end of
    the run); NaN otherwise.

    A spike or bubble crosses for a cycle or two; an amplification stays up (a SYBR curve may decline after
    its plateau, which is still an amplification).
    """
    n, c = corrected.shape
    above = corrected >= threshold[:, None]
    run = np.zeros((n, c), dtype=np.int64)  # readings above the threshold from each cycle on, in a row
    run[:, -1] = above[:, -1]
    for j in range(c - 2, -1, -1):
        run[:, j] = np.where(above[:, j], run[:, j + 1] + 1, 0)
    # the stretch above the threshold that holds the curve's highest 3-cycle mean (the amplification)
    smooth = corrected.copy()
    smooth[:, 1:-1] = (corrected[:, :-2] + corrected[:, 1:-1] + corrected[:, 2:]) / 3.0
    smooth[:, : min(SKIP_CYCLES, c - 1)] = -np.inf  # a settling start is not the curve's highest point
    peak = np.argmax(smooth, axis=1)
    rows_ = np.arange(n)
    below_before = ~above & (np.arange(c)[None, :] < peak[:, None])
    last_below = np.where(below_before.any(axis=1), c - 1 - np.argmax(below_before[:, ::-1], axis=1), -1)
    k = last_below + 1
    kk = np.minimum(k, c - 1)
    has = above[rows_, peak] & (run[rows_, kk] >= np.minimum(SUSTAIN_CYCLES, c - kk))
    rows = np.arange(n)
    lo, hi = corrected[rows, np.maximum(k - 1, 0)], corrected[rows, k]
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(hi > lo, (threshold - lo) / (hi - lo), 1.0)
    frac = np.clip(np.nan_to_num(frac, nan=1.0), 0.0, 1.0)
    cycle = np.where(k > 0, k + frac, 1.0)  # index k is cycle k+1; the crossing lies between k and k+1
    return np.where(has, cycle, np.nan)


def fit_logistic(
    y: np.ndarray,
    fit: np.ndarray,
    *,
    steps: int = 40,
    leave_out: np.ndarray | None = None,
    plates: np.ndarray | None = None,
) -> tuple[np.ndarray, ...]:
    """Fit d + h / (1 + exp(-(x - m) / s)) to the rows of ``y`` selected by ``fit`` (x = cycle 1..c).

    Damped Gauss-Newton (Levenberg-Marquardt) on all rows at once; returns (r2, midpoint, scale, height,
    sse of the logistic, sse of a straight line, readings fitted), NaN where not fitted.
    ``leave_out`` (curves x cycles, bool)
    marks readings the fit ignores (off the baseline before the rise: settling, dips). The iterations of a run
    stop together; ``plates`` (run number per row) fits several runs at once, each stopping as it would alone.
    """
    n, c = y.shape
    out = [np.full(n, np.nan) for _ in range(7)]
    idx = np.flatnonzero(fit)
    if idx.size == 0 or c < 6:
        return tuple(out)
    yy = y[idx]
    x = np.arange(1, c + 1, dtype=np.float64)[None, :]
    # the fit ends two cycles after the highest 3-cycle mean: a decline after the plateau (the "hook" of SYBR
    # curves) is not part of the amplification shape
    smooth = yy.copy()
    smooth[:, 1:-1] = (yy[:, :-2] + yy[:, 1:-1] + yy[:, 2:]) / 3.0
    smooth[:, : min(SKIP_CYCLES, c - 1)] = -np.inf
    stop = np.maximum(np.argmax(smooth, axis=1) + 3, 6)
    w = (np.arange(c)[None, :] < stop[:, None]).astype(np.float64)
    if leave_out is not None:
        w[leave_out[idx]] = 0.0
    top = ((yy[:, :-2] + yy[:, 1:-1] + yy[:, 2:]) / 3.0).max(axis=1)  # 3-cycle mean: starting height
    h = np.maximum(top, 1e-12)
    half = yy >= (h / 2)[:, None]
    m = np.where(half.any(axis=1), np.argmax(half, axis=1) + 1.0, float(c))
    p = np.stack([np.zeros(idx.size), h, m, np.log(np.full(idx.size, 1.5))], axis=1)
    lam = np.full(idx.size, 1e-2)
    sse = _logistic_sse(p, x, yy, w)
    run = np.zeros(idx.size, dtype=np.int64) if plates is None else pd.factorize(plates[idx])[0]
    active = np.ones(idx.size, dtype=bool)  # rows of the runs still iterating
    for _ in range(steps):
        jac, resid = _logistic_jacobian(p, x, yy)
        jac, resid = jac * w[:, :, None], resid * w
        jtj = np.einsum("nci,ncj->nij", jac, jac)
        jtr = np.einsum("nci,nc->ni", jac, resid)
        diag = np.einsum("nii->ni", jtj)
        a = jtj + lam[:, None, None] * (np.eye(4)[None] * (diag[:, :, None] + 1e-12))
        delta, solved = _solve_per_run(a, jtr, run, active)
        active &= solved  # a singular system stops its run's iterations
        if not active.any():
            break
        trial = p + delta
        trial[:, 3] = np.clip(trial[:, 3], np.log(0.05), np.log(50.0))
        trial[:, 2] = np.clip(trial[:, 2], -c, 3.0 * c)
        new = _logistic_sse(trial, x, yy, w)
        better = np.isfinite(new) & (new < sse) & active
        gain = np.where(better, sse - new, 0.0)
        p = np.where(better[:, None], trial, p)
        sse = np.where(better, new, sse)
        lam = np.where(active, np.where(better, lam * 0.3, lam * 10.0), lam)
        # converged: no curve of the run improves its fit by more than 1e-9 of it, or every step is refused
        still = ~((gain <= 1e-9 * sse) | (lam > 1e8))
        active &= np.bincount(run, weights=still, minlength=run.max() + 1)[run] > 0
        if not active.any():
            break
    mean = (yy * w).sum(axis=1) / w.sum(axis=1)
    total = (w * (yy - mean[:, None]) ** 2).sum(axis=1)
    a0, b0 = _line_fit(x, yy, w > 0)
    line_sse = (w * (yy - (a0[:, None] + b0[:, None] * x)) ** 2).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = 1.0 - sse / total
    for arr, values in zip(out, (r2, p[:, 2], np.exp(p[:, 3]), p[:, 1], sse, line_sse, w.sum(axis=1))):
        arr[idx] = values
    return tuple(out)


def _solve_per_run(a: np.ndarray, b: np.ndarray, run: np.ndarray, active: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Solve the rows' 4 x 4 systems; (solutions, False on the rows of a run with a singular system)."""
    try:
        return np.linalg.solve(a, b[:, :, None])[:, :, 0], np.ones(run.size, dtype=bool)
    except np.linalg.LinAlgError:
        pass
    delta, solved = np.zeros_like(b), np.ones(run.size, dtype=bool)
    for r in np.unique(run[active]):
        sel = run == r
        try:
            delta[sel] = np.linalg.solve(a[sel], b[sel][:, :, None])[:, :, 0]
        except np.linalg.LinAlgError:
            solved[sel] = False
    return delta, solved


def _logistic_sse(p: np.ndarray, x: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        g = p[:, 0:1] + p[:, 1:2] / (1.0 + np.exp(-(x - p[:, 2:3]) / np.exp(p[:, 3:4])))
    return (w * (y - g) ** 2).sum(axis=1)


def _logistic_jacobian(p: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = np.exp(p[:, 3:4])
    z = np.clip((x - p[:, 2:3]) / s, -60, 60)
    e = 1.0 / (1.0 + np.exp(-z))
    g = p[:, 0:1] + p[:, 1:2] * e
    de = e * (1.0 - e)
    jac = np.stack([np.ones_like(e), e, -p[:, 1:2] * de / s, -p[:, 1:2] * de * z], axis=2)
    return jac, y - g


def call_curves(
    fluor: np.ndarray,
    targets: np.ndarray,
    *,
    used: np.ndarray | None = None,
    thresholds: dict[str, float] | None = None,
    groups: np.ndarray | None = None,
    plates: np.ndarray | None = None,
) -> CallResult:
    """The diagnostic call for every curve of a gap-free (curves x cycles) array of raw readings.

    Several runs at once: ``plates`` numbers each curve's run and ``groups`` its (run, target); each curve gets
    the call it gets in its own run.
    """
    n, c = fluor.shape
    if groups is None:
        groups = pd.factorize(pd.Series(targets, dtype=object))[0]
    baseline, noise, window = robust_baseline(fluor, groups)
    corrected = fluor - baseline
    top = _smooth_max(corrected)
    rise_sd = top / noise
    thr = detection_thresholds(noise, np.asarray(targets, dtype=object), thresholds, groups)
    cq = sustained_crossing(corrected, thr)
    fit = (np.isfinite(cq) | (rise_sd >= FLAT_RISE_SD)) & (used if used is not None else True)
    flat_before, creep, left_out = onset_features(corrected, baseline, noise, top, cq, window)
    r2, mid, scale, _height, sse, line_sse, points = fit_logistic(corrected, fit, leave_out=left_out, plates=plates)
    with np.errstate(invalid="ignore", divide="ignore"):
        # the logistic explains the curve, or fits it as closely as the readings' own noise allows (weak curves)
        fits = (r2 >= MIN_SIGMOID_R2) | (np.sqrt(sse / points) <= FIT_WITHIN_NOISE * noise)
        pcr_like = (scale <= SIGMOID_SCALE_RANGE[1]) & (mid <= c + 8) & (sse <= MAX_SIGMOID_VS_LINE * line_sse)
        shape_ok = fits & (scale >= SIGMOID_SCALE_RANGE[0]) & (pcr_like | (creep <= SHARP_ONSET_CYCLES))
    lo = min(SKIP_CYCLES, max(c - 6, 0))
    start_level = np.median(fluor[:, lo : lo + 6], axis=1)
    ends = np.take_along_axis(baseline, np.clip(window - [0, 1], 0, c - 1), axis=1)
    tests = CurveTests(
        cq=cq,
        rise_sd=rise_sd,
        shape_ok=shape_ok,
        n_cycles=c,
        drift_sd=(np.median(fluor[:, -3:], axis=1) - start_level) / noise,
        above_start_sd=(_smooth_max(fluor) - start_level) / noise,
        flat_before=flat_before,
        relative_rise=top / np.maximum(np.abs(start_level), 1e-300),
        baseline_drift=np.abs(ends[:, 1] - ends[:, 0]) / np.maximum(top, 1e-300),
    )
    call, reason = decide(tests)
    return CallResult(
        call=call,
        reason=reason,
        corrected=corrected,
        noise=noise,
        rise_sd=rise_sd,
        threshold=thr,
        cq_detect=cq,
        sigmoid_r2=r2,
        sigmoid_mid=mid,
        sigmoid_scale=scale,
        shape_ok=shape_ok,
    )


def _smooth_max(values: np.ndarray) -> np.ndarray:
    """Highest 3-cycle mean of each row (the highest reading for runs under 3 cycles)."""
    if values.shape[1] < 3:
        return values.max(axis=1)
    return ((values[:, :-2] + values[:, 1:-1] + values[:, 2:]) / 3.0).max(axis=1)


@dataclass
class CurveTests:
    """What :func:`decide` weighs, per curve (see the module docstring)."""

    cq: np.ndarray  # sustained threshold crossing (cycle; NaN: none)
    rise_sd: np.ndarray  # highest 3-cycle mean over the baseline, in noise SDs
    shape_ok: np.ndarray  # the rise has an amplification shape
    n_cycles: int
    drift_sd: np.ndarray  # last cycles minus first cycles, in noise SDs
    above_start_sd: np.ndarray  # highest 3-cycle mean over the first cycles' level, in noise SDs
    flat_before: np.ndarray  # cycles flat on the baseline before the crossing
    relative_rise: np.ndarray  # rise / level of the first cycles (a drift adds a few percent)
    baseline_drift: np.ndarray  # change of the baseline line across its window / rise


def onset_features(
    corrected: np.ndarray, baseline: np.ndarray, noise: np.ndarray, top: np.ndarray, cq: np.ndarray, window: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What the start of each rise looks like: (cycles the curve spends flat on its baseline before the
    crossing, after the settling cycles; cycles from its last flat reading to the crossing (an exponential phase
    climbs from the baseline band to the threshold in a few cycles, a drift creeps), inf without a crossing;
    readings the shape test leaves out (curves x cycles): short dips (1-2 readings) below the baseline band
    before the crossing, readings off the band before a flat baseline window, such as the settling of the
    first cycles, and the bend of a sloped baseline under a curve that rises to the end of the run). Otherwise
    a long stretch below the band is part of the curve's shape (a V-shaped baseline that turns up and falls
    back is not an amplification)."""
    c = corrected.shape[1]
    cycle = np.arange(1, c + 1, dtype=np.float64)[None, :]
    band = np.maximum(BASELINE_BAND_SD * noise, BASELINE_BAND_RISE * top)[:, None]
    with np.errstate(invalid="ignore"):
        before = (cycle > SKIP_CYCLES) & (cycle < cq[:, None])
        flat = before & (np.abs(corrected) <= band)
        ends = np.take_along_axis(baseline, np.clip(window - [0, 1], 0, c - 1), axis=1)
        window_flat = np.abs(ends[:, 1] - ends[:, 0]) <= band[:, 0]
        settling = (cycle <= window[:, :1]) & (np.abs(corrected) > band) & window_flat[:, None]
        # a curve still rising at the end of the run: a stretch below the band before it is the baseline's bend
        rising_end = np.argmax(corrected, axis=1) >= c - 3
        below = corrected < -band
        dips = (cycle < cq[:, None]) & (short_runs(below, 2) | (below & rising_end[:, None]) | settling)
    last_flat = np.where(flat.any(axis=1), c - np.argmax(flat[:, ::-1], axis=1), SKIP_CYCLES)
    creep = np.where(np.isfinite(cq), cq - last_flat, np.inf)
    return flat.sum(axis=1), creep, dips


def short_runs(mask: np.ndarray, longest: int) -> np.ndarray:
    """The cells of ``mask`` that lie in a run of at most ``longest`` True cells along each row."""
    n, c = mask.shape
    fwd = np.zeros((n, c), dtype=np.int64)
    bwd = np.zeros((n, c), dtype=np.int64)
    for k in range(c):
        fwd[:, k] = np.where(mask[:, k], (fwd[:, k - 1] if k else 0) + 1, 0)
        j = c - 1 - k
        bwd[:, j] = np.where(mask[:, j], (bwd[:, j + 1] if k else 0) + 1, 0)
    return mask & (fwd + bwd - 1 <= longest)


def decide(t: CurveTests) -> tuple[np.ndarray, np.ndarray]:
    """Call and reason per curve. ``amplified`` needs every test; ``not amplified`` a flat curve (no crossing,
    a rise under FLAT_RISE_SD and no large drift: a curve that ends far above where it started is never "not
    amplified", whatever its baseline line says); the rest is ``review`` with the first reason that applies."""
    n = t.cq.size
    crossed = np.isfinite(t.cq)
    with np.errstate(invalid="ignore"):
        late = crossed & (t.cq > t.n_cycles - LATE_CYCLES)
    flat = ~crossed & (t.rise_sd < FLAT_RISE_SD) & (t.drift_sd < CLEAR_RISE_SD)
    call = np.where(flat, NOT_AMPLIFIED, REVIEW).astype(object)
    reason = np.full(n, "", dtype=object)
    for i in np.flatnonzero(~flat):
        reason[i] = _review_reason(t, int(i), bool(late[i]))
        if not reason[i]:
            call[i] = AMPLIFIED
    return call, reason


def _review_reason(t: CurveTests, i: int, late: bool) -> str:
    """Why curve ``i`` (not flat) is held, in a technician's words; '' when it is amplified."""
    cq, rise = t.cq[i], t.rise_sd[i]
    if late:
        return (
            f"rises only in the last {LATE_CYCLES} cycles (threshold crossed at cycle {cq:.1f} of "
            f"{t.n_cycles}): too late to confirm the curve shape"
        )
    if not np.isfinite(cq):
        if rise < FLAT_RISE_SD:
            return (
                f"ends {t.drift_sd[i]:.0f}x the noise above its first cycles without an amplification shape "
                "(drift?): look at the curve"
            )
        return f"rises {rise:.0f}x the noise but does not stay above the detection threshold to the end of the run"
    if rise < CLEAR_RISE_SD:
        return f"weak rise ({rise:.0f}x the noise) above the threshold: weak or late amplification?"
    if not t.shape_ok[i]:
        return (
            f"rises {rise:.0f}x the noise but not with an amplification shape (drift, step or bubble?): "
            "look at the curve"
        )
    if t.flat_before[i] < MIN_BASELINE_CYCLES and t.relative_rise[i] < MIN_RELATIVE_RISE:
        return (
            f"rises from the first cycles (threshold crossed at cycle {cq:.1f}) without a flat baseline before "
            "it: drift or a very early amplification? look at the curve"
        )
    if t.baseline_drift[i] > MAX_BASELINE_DRIFT:
        return (
            f"its baseline drifts by {100 * t.baseline_drift[i]:.0f}% of the rise before it: drift or "
            "amplification? look at the curve"
        )
    if t.above_start_sd[i] < CLEAR_RISE_SD:
        return (
            f"rises back from a dip only to {t.above_start_sd[i]:.0f}x the noise above its first cycles: drift or "
            "amplification? look at the curve"
        )
    return ""
