"""Quality flags on amplification curves: what a specialist should look at before a result is released.

Each flag has a severity: ``review`` holds the sample's result until someone signs it off, ``info`` is shown
but does not hold anything. Thresholds were set on the shipped real runs so that ordinary curves raise
nothing (see docs/lab.md, "QC flags").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from .linregpcr import LinRegResult
from .run import Run

#: code -> (severity, meaning shown in reports)
FLAGS: dict[str, tuple[str, str]] = {
    "excluded": ("review", "excluded in the run file or unrepairable (no usable readings)"),
    "gap_repaired": ("review", "missing readings were interpolated"),
    "doubtful": ("review", "the amplification call needs a person's eyes"),
    "late_rise": ("review", "rise starts in the last 5 cycles: no room to confirm the curve shape"),
    "baseline_error": ("info", "the curve rises but no log-linear window could be fitted"),
    "atypical_efficiency": ("info", "PCR efficiency outside 1.5-2.2 (not a normal amplification shape)"),
    "baseline_drift": ("review", "the baseline drifts by more than 15% of the amplification height"),
    "jump": ("review", "a single reading or step departs from the smooth curve"),
    "early_jump": ("info", "a step in the first 5 cycles (instrument settling)"),
    "saturation": ("review", "readings are clipped at the detector maximum"),
    "replicate_spread": ("review", "replicates of this sample and target disagree"),
    "no_plateau": ("info", "no plateau reached (LinRegPCR criterion)"),
    "efficiency_outlier": ("info", "efficiency is an outlier within its target"),
}

#: replicate Cq standard deviation above which replicates are flagged (cycles)
REPLICATE_MAX_SD = 0.5
#: baseline drift, as a fraction of the amplification height, above which a curve is flagged
MAX_DRIFT_FRACTION = 0.15
#: residual of a reading from its neighbours' local quadratic, in noise SDs, that counts as a jump
JUMP_NOISE_SD = 12.0
#: ... and as a fraction of the reading's height above baseline (amplification curves are smooth to ~4%)
JUMP_HEIGHT_FRACTION = 0.15
EFFICIENCY_RANGE = (1.5, 2.2)


def needs_review(flags: list[str]) -> bool:
    """True if any flag holds the result for review."""
    return any(FLAGS.get(f.split(":")[0], ("review", ""))[0] == "review" for f in flags)


def describe(flag: str) -> str:
    """Human text for a flag code (codes may carry a detail after ':')."""
    code, _, detail = flag.partition(":")
    text = FLAGS.get(code, ("review", code))[1]
    return f"{text} ({detail})" if detail else text


def _jump_cycles(fluor: np.ndarray, sigma: np.ndarray, base: np.ndarray) -> np.ndarray:
    """(curves x cycles) ratio of each reading's departure from a quadratic through its two neighbours on each
    side to the allowed departure; above 1 is a jump (the worst reading of a jump has the largest ratio)."""
    n, c = fluor.shape
    out = np.zeros((n, c))
    if c < 5:
        return out
    a1 = (fluor[:, 1:-3] + fluor[:, 3:-1]) / 2.0  # mean of the +-1 neighbours, centre index 2..c-3
    a2 = (fluor[:, :-4] + fluor[:, 4:]) / 2.0  # mean of the +-2 neighbours
    predicted = a1 - (a2 - a1) / 3.0  # even quadratic through (+-1, a1), (+-2, a2) at 0
    resid = np.abs(fluor[:, 2:-2] - predicted)
    height = np.abs(fluor[:, 2:-2] - base[:, None])
    limit = np.maximum(JUMP_NOISE_SD * sigma[:, None], JUMP_HEIGHT_FRACTION * height)
    out[:, 2:-2] = resid / limit
    return out


def _baseline_drift(fluor: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Change of a straight line fitted to cycles 3..end of each curve over that span (NaN if < 6 cycles)."""
    n, c = fluor.shape
    x = np.arange(c, dtype=np.float64)[None, :]
    mask = (x >= 2) & (x < end[:, None])
    m = mask.astype(np.float64)
    k = m.sum(axis=1)
    y = np.where(mask, fluor, 0.0)
    sx, sy = (m * x).sum(1), y.sum(1)
    sxx, sxy = (m * x * x).sum(1), (y * x).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = (sxy - sx * sy / k) / (sxx - sx * sx / k)
    return np.where(k >= 6, slope * k, np.nan)


def _saturated(fluor: np.ndarray) -> np.ndarray:
    """Curves whose top readings repeat the plate's maximum value (clipped detector)."""
    top = np.nanmax(fluor)
    at_top = np.isclose(fluor, top, rtol=0, atol=abs(top) * 1e-9)
    pairs = at_top[:, 1:] & at_top[:, :-1]
    return pairs.any(axis=1)


def curve_flags(run: Run, lrp: LinRegResult, table: Mapping[str, Any], sigma: np.ndarray) -> list[list[str]]:
    """Flags for every curve (list of codes, with details after ':'); ``table``: the curve table's columns (a
    DataFrame or arrays by name)."""
    fluor = run.fluor
    n, c = fluor.shape
    flags: list[list[str]] = [[] for _ in range(n)]
    amplified = np.asarray(table["amplified"])
    roles = np.asarray(table["role"], dtype=object)
    targets = np.asarray(table["target"], dtype=object)
    excluded = np.asarray(table["excluded"], dtype=object) != ""
    calls, reasons = np.asarray(table["call"], dtype=object), np.asarray(table["call_reason"], dtype=object)

    base_level = np.median(fluor[:, 2:8], axis=1)
    height = np.mean(fluor[:, -3:], axis=1) - base_level
    # reference height per target for curves that did not amplify: the typical amplified height
    ref = {}
    for t in pd.unique(targets):
        sel = amplified & (targets == t)
        if sel.any():
            ref[t] = float(np.median(height[sel]))
    any_ref = float(np.median(height[amplified])) if amplified.any() else np.nan
    drift = _baseline_drift(fluor, np.where(amplified, lrp.rise_start - 1, c))
    jumps = _jump_cycles(fluor, sigma, base_level)
    saturated = _saturated(fluor)

    for i in range(n):
        if roles[i] == "empty":
            continue
        f = flags[i]
        if excluded[i]:
            f.append("excluded")
        if i in run.repaired:
            f.append(f"gap_repaired:cycles {run.repaired[i]}")
        if calls[i] == "review":
            f.append(f"doubtful:{reasons[i]}")
        if amplified[i] and lrp.td0[i] > c - 5:
            f.append(f"late_rise:TD0 {lrp.td0[i]:.1f} of {c}")
        if lrp.four_rising[i] and lrp.baseline_error[i] != 0 and lrp.td0[i] > 0:
            f.append(f"baseline_error:code {lrp.baseline_error[i]}")
        eff = lrp.efficiency[i]
        if amplified[i] and not (EFFICIENCY_RANGE[0] <= eff <= EFFICIENCY_RANGE[1]):
            f.append(f"atypical_efficiency:{eff:.2f}")
        scale = height[i] if amplified[i] else ref.get(targets[i], any_ref)
        if np.isfinite(drift[i]) and np.isfinite(scale) and scale > 0 and abs(drift[i]) > MAX_DRIFT_FRACTION * scale:
            f.append(f"baseline_drift:{'up' if drift[i] > 0 else 'down'} {abs(drift[i]) / scale:.0%} of height")
        ratio = jumps[i]
        late = ratio[5:]
        if late.size and late.max() > 1.0:
            f.append(f"jump:cycle {int(np.argmax(late)) + 6}")
        elif ratio[:5].max() > 1.0:
            f.append(f"early_jump:cycle {int(np.argmax(ratio[:5])) + 1}")
        if saturated[i]:
            f.append("saturation")
        if amplified[i] and not lrp.plateau[i]:
            f.append("no_plateau")
        if amplified[i] and lrp.efficiency_outlier[i]:
            f.append("efficiency_outlier")
    return flags


def replicate_flags(
    table: Mapping[str, Any], flags: list[list[str]], *, max_sd: float = REPLICATE_MAX_SD, cq_column: str = "cq_td0"
) -> None:
    """Flag replicate groups (same sample, target, role) whose amplification calls or Cq values disagree;
    ``table`` as for :func:`curve_flags`."""
    roles = np.asarray(table["role"], dtype=object)
    used = roles != "empty"
    keys = list(zip(np.asarray(table["sample"], dtype=object), np.asarray(table["target"], dtype=object), roles))
    index: dict[tuple, int] = {}
    codes = np.array([index.setdefault(k, len(index)) for k in keys], dtype=np.int64)
    codes = np.where(used, codes, -1)
    amp = np.asarray(table["amplified"])
    cq = np.asarray(table[cq_column], dtype=np.float64)
    order = np.argsort(codes, kind="stable")
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    for members in np.split(order, bounds):
        if members.size < 2 or codes[members[0]] < 0:
            continue
        a = amp[members]
        detail = None
        if a.any() and not a.all():
            detail = f"{int(a.sum())} of {a.size} amplified"
        elif a.all():
            sd = float(np.std(cq[members], ddof=1))
            if sd > max_sd:
                detail = f"Cq SD {sd:.2f} cycles"
        if detail:
            for i in members:
                flags[int(i)].append(f"replicate_spread:{detail}")
