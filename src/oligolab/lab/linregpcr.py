"""LinRegPCR on raw amplification curves: baseline, window of linearity, PCR efficiency and TD0 (the Cq).

This is an independent, vectorised implementation of the method as RDML-Tools / rdmlpython (2.x) define it
(Ruijter et al. 2009, Nucleic Acids Res 37:e45; Untergasser et al. 2021, BMC Bioinformatics 22:398):

* **TD0** is the cycle where the third derivative of the raw curve (taken on a 3-cycle mean of the second
  derivative) crosses zero downwards, searched only where the fluorescence rises for several cycles: the
  onset of the exponential phase's deceleration, independent of any baseline or threshold. It is the Cq.
* **Baseline**: in the window of up to 9 cycles that ends half a cycle before TD0 (and starts after the
  last non-rising cycle), the constant background is found by bisection so that the log-fluorescence slopes of
  the window's lower and upper halves are equal: a straight line in log space (the window of linearity).
* **Individual PCR efficiency** is 10^slope of that line (2.0 = doubling per cycle); the **mean efficiency
  of a target** is the mean over its usable reactions after a skewness-gated Grubbs outlier test.
* **Amplification** needs a TD0, at least four rising cycles before it and an efficiency above 1.4;
  **no plateau** is flagged when the fitted exponential, extended to the last cycle, stays below 5x the last
  baseline-corrected reading. Both are kept exactly as the reference defines them, so that calls agree
  reaction for reaction.

Everything works on a (reactions x cycles) array at once; loops run over cycles or bisection steps, never over
reactions. Inputs must be gap-free (see :func:`oligolab.lab.run.repair_gaps`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

import numpy as np

#: efficiency above which a reaction with a TD0 and four rising cycles counts as amplified (fold per cycle)
MIN_AMPLIFICATION_EFFICIENCY = 1.4
#: maximum number of cycles in the window of linearity
MAX_WINDOW_CYCLES = 9
#: minimum number of cycles in the window of linearity
MIN_WINDOW_CYCLES = 4
#: bisection steps and convergence tolerance on the difference of the half-window log10 slopes
BISECTION_STEPS = 50
SLOPE_TOLERANCE = 1e-5
#: no plateau when the fitted exponential would reach less than this multiple of the last reading
NO_PLATEAU_RATIO = 5.0

#: baseline error codes (0 = baseline found); the same numbers as RDML-Tools reports
BASELINE_ERRORS = {
    0: "baseline found",
    1: "baseline bisection did not converge",
    2: "no TD0 found",
    3: "TD0 too early for a window (stop cycle < 4)",
    4: "fewer than 4 rising cycles before TD0",
    5: "window already decelerates before baseline subtraction",
    6: "window still accelerates after subtracting the largest possible baseline",
}

#: the note of a run with readings <= 0
NONPOSITIVE_NOTE = "fluorescence has values <= 0: use raw data without baseline correction where possible"
#: RDML sample types that never contribute to a target's mean efficiency (negative controls, calibrators)
NEGATIVE_SAMPLE_TYPES = frozenset({"ntc", "nac", "ntp", "nrt", "opt"})


@dataclass
class LinRegResult:
    """Per-reaction LinRegPCR results (arrays of length n_reactions; cycles are 1-based, NaN = not found)."""

    td0: np.ndarray  # Cq by the third-derivative zero, cycles; -1 where none
    baseline: np.ndarray  # constant background subtracted, fluorescence units
    corrected: np.ndarray  # baseline-corrected fluorescence, (n, cycles)
    baseline_error: np.ndarray  # int code, see BASELINE_ERRORS
    efficiency: np.ndarray  # individual PCR efficiency, fold per cycle (1.0 where none)
    r2: np.ndarray  # R^2 of the log-linear fit in the window (-1 where none)
    window_start: np.ndarray  # first cycle of the window of linearity (-1 where none)
    window_stop: np.ndarray  # last cycle of the window of linearity (-1 where none)
    window_mid_cycle: np.ndarray  # mean cycle of the window (-1 where none)
    window_mid_fluor: np.ndarray  # geometric-mean corrected fluorescence in the window (-1 where none)
    n0: np.ndarray  # fitted fluorescence at the window's first cycle, back-extrapolated (0 where none)
    rise_start: np.ndarray  # first cycle of the uninterrupted rise that ends at the 2nd-derivative peak
    n_log_phase: np.ndarray  # cycles from rise_start to window_stop (-1 where < 2)
    four_rising: np.ndarray  # bool: at least four rising cycles before TD0
    amplified: np.ndarray  # bool: LinRegPCR amplification call
    plateau: np.ndarray  # bool: a plateau was reached (False = "no plateau")
    mean_efficiency: np.ndarray  # mean PCR efficiency of the reaction's group (-1 where none)
    mean_efficiency_sd: np.ndarray  # its standard deviation (population, ddof=0)
    efficiency_outlier: np.ndarray  # bool: excluded from the group mean as an efficiency outlier
    used_for_mean: np.ndarray  # bool: contributed to the group mean efficiency
    negative_shift: np.ndarray  # constant added to rows with readings <= 0 before the log fit
    nonpositive: np.ndarray  # bool: the reaction has readings <= 0 (baseline-subtracted export)
    notes: list[str] = field(default_factory=list)

    def take(self, rows: slice) -> LinRegResult:
        """The results of the reactions ``rows`` (one run of several analysed together), with their notes."""
        cut = {f.name: getattr(self, f.name)[rows] for f in fields(self) if f.name != "notes"}
        return LinRegResult(**cut, notes=[NONPOSITIVE_NOTE] if cut["nonpositive"].any() else [])


# --------------------------------------------------------------------------------------------- derivatives


def derivatives(fluor: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """First difference (n, c-1), 3-cycle-mean second difference (n, c) and its difference (n, c-1).

    Index conventions (0-based array index i of an (n, c) array is cycle i+1): ``fd[:, j]`` lies between cycles
    j+1 and j+2; ``mean_sd[:, i]`` is centred on cycle i+1 (NaN at the two ends and their neighbours);
    ``td[:, j]`` lies between cycles j+1 and j+2.
    """
    n, c = fluor.shape
    fd = np.diff(fluor, axis=1)
    sd = np.full((n, c), np.nan)
    sd[:, 1:-1] = np.diff(fd, axis=1)
    mean_sd = np.full((n, c), np.nan)
    mean_sd[:, 1:-1] = (sd[:, :-2] + sd[:, 1:-1] + sd[:, 2:]) / 3.0
    td = np.diff(mean_sd, axis=1)
    return fd, mean_sd, td


def find_td0(fluor: np.ndarray) -> dict[str, np.ndarray]:
    """TD0 and the rise bounds of every curve (see module docstring); all cycle numbers are 1-based."""
    n, c = fluor.shape
    rows = np.arange(n)
    fd, mean_sd, td = derivatives(fluor)

    # Peak of the first derivative; extended by 2 cycles when the curve still rises after it.
    max_fd = np.argmax(fd, axis=1) + 1
    inner = max_fd <= c - 2
    safe = np.clip(max_fd, 1, c - 2)
    rising_after = (fluor[rows, safe + 1] > fluor[rows, safe]) & (fluor[rows, safe] > fluor[rows, safe - 1])
    max_fd = np.where(inner, np.where(rising_after, max_fd + 2, max_fd), c)

    # Peak of the smoothed second derivative among cycles 3 .. max_fd-1 (first occurrence, must be > 0).
    cyc = np.arange(1, c + 1)
    allowed = (cyc[None, :] >= 3) & (cyc[None, :] <= (max_fd - 1)[:, None]) & np.isfinite(mean_sd)
    masked = np.where(allowed, mean_sd, -np.inf)
    best = np.argmax(masked, axis=1)
    has_peak = masked[rows, best] > 0.0
    max_sd = np.where(has_peak, best + 1, c)
    max_sd = np.where(max_sd + 2 >= c, c, max_sd)

    # Walk left from the peak while the fluorescence keeps rising (never below cycle 3).
    rises = np.zeros((n, c), dtype=bool)
    rises[:, 1:] = fluor[:, :-1] < fluor[:, 1:]  # rises[:, i]: cycle i+1 is above cycle i
    idx = np.broadcast_to(np.arange(c), (n, c))
    last_flat = np.maximum.accumulate(np.where(rises, -1, idx), axis=1)
    run_len = (max_sd - 1) - last_flat[rows, max_sd - 1]  # consecutive rises ending at cycle max_sd
    rise_start = np.where(max_sd > 3, np.maximum(max_sd - run_len, 3), max_sd)

    # One cycle past the peak if still rising.
    up = (max_sd < c) & (fluor[rows, np.minimum(max_sd, c - 1)] > fluor[rows, max_sd - 1])
    rise_stop = np.where(up, max_sd + 1, max_sd)

    # Downward zero crossing of the third derivative, searched backwards from the stop cycle.
    temp_stop = np.minimum(np.minimum(c - 1, max_sd + 2), rise_stop - 1)
    td_next = np.concatenate([td[:, 1:], np.full((n, 1), np.nan)], axis=1)
    with np.errstate(invalid="ignore"):
        crossing = (td >= 0.0) & (td_next < 0.0)
    j = np.arange(c - 1)
    crossing &= (j[None, :] >= rise_start[:, None]) & (j[None, :] < temp_stop[:, None])
    any_cross = crossing.any(axis=1)
    last = (c - 2) - np.argmax(crossing[:, ::-1], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        a = td[rows, last]
        b = td_next[rows, last]
        td0 = np.where(any_cross, last + 1.5 + a / (a - b), -1.0)
    four_rising = (np.trunc(td0).astype(np.int64) - rise_start + 1) > 3
    return {"td0": td0, "rise_start": rise_start, "max_sd": max_sd, "four_rising": four_rising}


# ------------------------------------------------------------------------------------------- window fits


def _log10(x: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.log10(x)


def _masked_slope(y: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Least-squares slope of y against its column index over the masked cells of each row (NaN propagates)."""
    x = np.arange(y.shape[1], dtype=np.float64)[None, :]
    m = mask.astype(np.float64)
    nin = m.sum(axis=1)
    ym = np.where(mask, y, 0.0)
    sx = (m * x).sum(axis=1)
    sy = ym.sum(axis=1)
    sxx = (m * x * x).sum(axis=1)
    sxy = (ym * x).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (sxy - sx * sy / nin) / (sxx - sx * sx / nin)


def _half_masks(length: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Lower- and upper-half masks of windows of ``length`` cells (the halves share the centre cell if odd)."""
    centre = length / 2.0
    lower_last = np.trunc(centre - 0.4).astype(np.int64)
    upper_first = np.trunc(centre).astype(np.int64)
    k = np.arange(width)[None, :]
    lower = k <= lower_last[:, None]
    upper = (k >= upper_first[:, None]) & (k < length[:, None])
    return lower, upper


def _half_slopes(values: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = _log10(values)
    return _masked_slope(y, lower), _masked_slope(y, upper)


def fit_windows(pos_fluor: np.ndarray, td0: np.ndarray, rise_start: np.ndarray) -> dict[str, np.ndarray]:
    """Baseline by bisection and the log-linear fit in each curve's window of linearity."""
    n, c = pos_fluor.shape
    rows = np.arange(n)
    width = MAX_WINDOW_CYCLES
    error = np.ones(n, dtype=np.int64)
    stop = np.trunc(td0 - 0.5).astype(np.int64)
    start = np.maximum(rise_start + 1, stop - width + 1)
    length = stop - start + 1
    error[td0 < 3.0] = 2
    error[(error == 1) & (stop < 4)] = 3
    error[(error == 1) & (length < MIN_WINDOW_CYCLES)] = 4
    ok = error == 1
    window_start = np.where(ok | (error == 4), start, -1)
    window_stop = np.where(td0 >= 3.0, np.where(stop >= 4, stop, -1), -1)
    n_incl = np.where((td0 >= 3.0) & (stop >= 4), length, -1)

    # (n, width) windows; cells past the window's length are masked out.
    k = np.arange(width)[None, :]
    col = np.clip(np.where(ok, start - 1, 0)[:, None] + k, 0, c - 1)
    win = pos_fluor[rows[:, None], col]
    length_ok = np.where(ok, length, MIN_WINDOW_CYCLES)
    inside = k < length_ok[:, None]
    win = np.where(inside, win, np.nan)
    lower, upper = _half_masks(length_ok, width)

    low, high = _half_slopes(win, lower, upper)
    with np.errstate(invalid="ignore"):
        err5 = ok & (low > high)
    error[err5] = 5
    ok &= ~err5
    first = win[:, :1]
    low, high = _half_slopes(win - first + 1e-8, lower, upper)
    with np.errstate(invalid="ignore"):
        err6 = ok & (low < high)
    error[err6] = 6
    ok &= ~err6

    background, found = _bisect_background(win, first[:, 0], ok, lower, upper)
    error[found] = 0
    return {
        "error": error,
        "background": background,
        "window_start": window_start,
        "window_stop": window_stop,
        "n_included": n_incl,
        **_window_fit(win, background, found, inside, upper, start),
    }


def _bisect_background(
    win: np.ndarray, first: np.ndarray, ok: np.ndarray, lower: np.ndarray, upper: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The constant background that makes the window's lower- and upper-half log slopes equal, by bisection
    (BISECTION_STEPS halvings from half the first reading); NaN and not found where it does not converge."""
    n = win.shape[0]
    base = first * 0.5
    step = base * 0.5
    found = np.zeros(n, dtype=bool)
    background = np.full(n, np.nan)
    for _ in range(BISECTION_STEPS):
        active = ok & ~found
        if not active.any():
            break
        low, high = _half_slopes(win - base[:, None], lower, upper)
        with np.errstate(invalid="ignore"):
            done = active & (np.abs(low - high) < SLOPE_TOLERANCE)
            too_high = low > high
        background[done] = base[done]
        found |= done
        move = active & ~done
        base = np.where(move, np.where(too_high, base - step, base + step), base)
        step = np.where(move, step * 0.5, step)
    return background, found


def _window_fit(
    win: np.ndarray, background: np.ndarray, found: np.ndarray, inside: np.ndarray, upper: np.ndarray, start: np.ndarray
) -> dict[str, np.ndarray]:
    """The log-linear fit over the whole window of the converged curves: efficiency (from the upper half's
    slope), R^2, mid-point cycle and fluorescence, and N0."""
    n, width = win.shape
    out = {
        "efficiency": np.ones(n),
        "r2": -np.ones(n),
        "mid_cycle": -np.ones(n),
        "mid_fluor": -np.ones(n),
        "n0": np.zeros(n),
    }
    if not found.any():
        return out
    w = win[found] - background[found][:, None]
    m = inside[found]
    y = _log10(w)
    high_slope = _masked_slope(y, upper[found])
    x = np.arange(width, dtype=np.float64)[None, :]
    mf = m.astype(np.float64)
    nin = mf.sum(axis=1)
    ym = np.where(m, y, 0.0)
    sx, sy = (mf * x).sum(1), ym.sum(1)
    sxx, syy, sxy = (mf * x * x).sum(1), (ym * ym).sum(1), (ym * x).sum(1)
    ssx, ssy, spxy = sxx - sx * sx / nin, syy - sy * sy / nin, sxy - sx * sy / nin
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = spxy / ssx
        intercept = sy / nin - slope * sx / nin
        corr = spxy / np.sqrt(ssx * ssy)
    out["efficiency"][found] = np.power(10.0, high_slope)
    out["r2"][found] = corr * corr
    out["mid_cycle"][found] = sx / nin + start[found]
    out["mid_fluor"][found] = np.power(10.0, sy / nin)
    out["n0"][found] = np.power(10.0, intercept)
    return out


# ------------------------------------------------------------------------------------ group efficiencies


def _skewness(values: np.ndarray) -> float:
    """Adjusted Fisher-Pearson sample skewness G1 (as scipy.stats.skew(bias=False))."""
    n = values.size
    d = values - values.mean()
    m2 = np.mean(d * d)
    m3 = np.mean(d * d * d)
    if m2 == 0.0:
        return 0.0
    g1 = m3 / m2**1.5
    return float(g1 * np.sqrt(n * (n - 1.0)) / (n - 2.0))


def _t_central_probability(t: float, dof: int) -> float:
    """P(|T| <= t) for Student's t with an integer number of degrees of freedom (Abramowitz & Stegun 26.7.3-4)."""
    theta = math.atan(t / math.sqrt(dof))
    s, c = math.sin(theta), math.cos(theta)
    if dof % 2 == 1:
        total, term = 0.0, c
        for k in range(1, dof - 1, 2):  # cos + 2/3 cos^3 + (2*4)/(3*5) cos^5 ...
            total += term
            term *= c * c * (k + 1) / (k + 2)
        return (2.0 / math.pi) * (theta + s * total) if dof > 1 else 2.0 * theta / math.pi
    total, term = 0.0, 1.0
    for k in range(1, dof, 2):  # 1 + 1/2 cos^2 + (1*3)/(2*4) cos^4 ...
        total += term
        term *= c * c * k / (k + 1)
    return s * total


def t_quantile(p: float, dof: int) -> float:
    """Upper quantile of Student's t (p > 0.5) for integer ``dof``, by bisection to 1e-12."""
    target = 2.0 * p - 1.0
    lo, hi = 0.0, 1.0
    while _t_central_probability(hi, dof) < target:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if _t_central_probability(mid, dof) < target:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12:
            break
    return 0.5 * (lo + hi)


def grubbs_outliers(values: np.ndarray, alpha: float = 0.05) -> np.ndarray:
    """Indices removed by the skewness-gated Grubbs test used for PCR efficiencies (iterative, one at a time).

    While the remaining values are significantly skewed (two-sided normal test on G1 at alpha/2), the extreme
    value on the skewed side is removed if its Grubbs statistic exceeds the critical value.
    """
    remaining = list(range(values.size))
    removed: list[int] = []
    while len(remaining) >= 3:
        v = values[remaining]
        count = v.size
        skew = _skewness(v)
        se = math.sqrt(6.0 * count * (count - 1) / ((count - 2) * (count + 1) * (count + 3)))
        p = math.erfc(abs(skew) / se / math.sqrt(2.0))  # two-sided normal p-value
        if not p < alpha / 2.0:
            break
        t = t_quantile(1.0 - (alpha / count) / 2.0, count - 2)
        g_crit = (count - 1) / math.sqrt(count) * math.sqrt(t * t / (count - 2 + t * t))
        mean, sd = v.mean(), v.std(ddof=1)
        pos = int(np.argmax(v)) if skew > 0.0 else int(np.argmin(v))
        g = abs(v[pos] - mean) / sd if sd > 0 else 0.0
        if g > g_crit:
            removed.append(remaining.pop(pos))
        else:
            break
    return np.asarray(removed, dtype=np.int64)


def group_efficiencies(
    efficiency: np.ndarray, groups: np.ndarray, usable: np.ndarray, outlier_test: bool = True
) -> dict[str, np.ndarray]:
    """Mean and SD (ddof=0) of the individual efficiencies per group over usable reactions (-1 if none)."""
    n = efficiency.size
    mean = -np.ones(n)
    sd = np.full(n, np.nan)
    outlier = np.zeros(n, dtype=bool)
    candidate = usable & np.isfinite(efficiency) & (efficiency >= 1.001)
    for g in np.unique(groups):
        members = np.flatnonzero(groups == g)
        pick = members[candidate[members]]
        if outlier_test and pick.size >= 3:
            drop = pick[grubbs_outliers(efficiency[pick])]
            outlier[drop] = True
            pick = np.setdiff1d(pick, drop)
        if pick.size:
            mean[members] = efficiency[pick].mean()
            sd[members] = efficiency[pick].std()
    used = candidate & ~outlier
    return {"mean": mean, "sd": sd, "outlier": outlier, "used": used}


# ------------------------------------------------------------------------------------------------- entry


def linregpcr(
    fluor: np.ndarray,
    groups: np.ndarray | None = None,
    exclude_from_mean: np.ndarray | None = None,
    *,
    exclude_no_plateau: bool = True,
    outlier_test: bool = True,
    plates: np.ndarray | None = None,
) -> LinRegResult:
    """Run LinRegPCR on gap-free raw fluorescence ``fluor`` (reactions x cycles, cycle 1 first).

    ``groups`` assigns each reaction to a PCR-efficiency group (normally its target); ``exclude_from_mean``
    marks reactions that must not contribute to their group's mean efficiency (negative controls, exclusions).
    ``plates`` (0, 1, ... per reaction, in blocks) analyses several runs at once: each reaction gets the results
    it gets in its own run (groups must then not span runs); :meth:`LinRegResult.take` gives one run's.
    """
    fluor = np.asarray(fluor, dtype=np.float64)
    if fluor.ndim != 2 or fluor.shape[1] < 8:
        raise ValueError("linregpcr needs a (reactions x cycles) array with at least 8 cycles")
    if not np.isfinite(fluor).all():
        raise ValueError("linregpcr needs gap-free fluorescence; repair or refuse missing readings first")
    n, c = fluor.shape
    groups = np.zeros(n, dtype=np.int64) if groups is None else np.asarray(groups)
    exclude = np.zeros(n, dtype=bool) if exclude_from_mean is None else np.asarray(exclude_from_mean, bool).copy()
    notes: list[str] = []

    peaks = find_td0(fluor)
    td0, rise_start, four = peaks["td0"], peaks["rise_start"], peaks["four_rising"]
    exclude |= ~four

    # Readings <= 0 (baseline-subtracted exports) cannot be logged: shift such rows to a small positive floor.
    shift = np.zeros(n)
    row_min = fluor.min(axis=1)
    neg = row_min < 1e-8
    if neg.any():
        notes.append(NONPOSITIVE_NOTE)
        row_max = fluor.max(axis=1)
        run_max = (
            np.full(n, row_max.max()) if plates is None else np.maximum.reduceat(row_max, block_starts(plates))[plates]
        )
        shift[neg] = (run_max[neg] - row_min[neg]) / 100.0 - row_min[neg]
    pos = fluor + shift[:, None]

    fit = fit_windows(pos, td0, rise_start)
    err = fit["error"]
    background = np.where(err == 0, fit["background"], pos.min(axis=1) * 0.99)
    corrected = pos - background[:, None]
    exclude |= err != 0

    eff = fit["efficiency"]
    amplified = (td0 > 2.0) & four & (eff > MIN_AMPLIFICATION_EFFICIENCY)
    exclude |= ~amplified
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        expected_end = fit["n0"] * np.power(eff, c)
        no_plateau = (fit["n0"] > 0.0) & (eff > 1.1) & (expected_end / corrected[:, -1] < NO_PLATEAU_RATIO)
    if exclude_no_plateau:
        exclude |= no_plateau

    stop = fit["window_stop"]
    n_log = np.where(stop - rise_start + 1 > 1, stop - rise_start + 1, -1)
    means = group_efficiencies(eff, groups, ~exclude, outlier_test=outlier_test)
    return LinRegResult(
        td0=td0,
        baseline=background - shift,
        corrected=corrected,
        baseline_error=err,
        efficiency=eff,
        r2=fit["r2"],
        window_start=fit["window_start"],
        window_stop=stop,
        window_mid_cycle=fit["mid_cycle"],
        window_mid_fluor=fit["mid_fluor"],
        n0=fit["n0"],
        rise_start=rise_start,
        n_log_phase=n_log,
        four_rising=four,
        amplified=amplified,
        plateau=~no_plateau,
        mean_efficiency=means["mean"],
        mean_efficiency_sd=means["sd"],
        efficiency_outlier=means["outlier"],
        used_for_mean=means["used"],
        negative_shift=shift,
        nonpositive=neg,
        notes=notes,
    )


def block_starts(plates: np.ndarray) -> np.ndarray:
    """Index of the first row of each run in a ``plates`` array (0, 0, 1, 1, 1, 2, ...)."""
    return np.flatnonzero(np.r_[True, plates[1:] != plates[:-1]])
