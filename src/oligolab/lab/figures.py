"""Amplification curves as SVG drawn by the report itself: small, printable, no plotting library.

* :func:`curve_chart`: one target's curves on a linear or a log axis, coloured by call, the threshold dashed,
  and a well label beside the end of every labelled curve (labels pushed apart so none overlap, with a leader
  line to their curve), so a printed curve can be named.
* :func:`plate_curves`: the same curves as a plate of small charts, one per well at its position, each labelled
  with its well: every curve of the plate identifiable on paper.

Coordinates are rounded to 0.1 px; a 384-curve plate draws in about 150 kB per view.
"""

from __future__ import annotations

import math

import numpy as np

from .. import reports

#: stroke colour per call (the report's legend uses the same)
COLOURS = {"amplified": "#1a7f37", "not amplified": "#8c959f", "review": "#d4a72c", "": "#8c959f"}
LABEL_GAP = 8.0  # px between two end labels
FONT = 7.5  # px


def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if not math.isfinite(lo) or not math.isfinite(hi) or hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return [first + k * step for k in range(int((hi - first) / step) + 1)]


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    a = abs(v)
    return f"{v:.0e}" if a >= 1e5 or a < 1e-2 else f"{v:g}"


def _spread(ys: list[float], lo: float, hi: float) -> list[float]:
    """Label positions near ``ys`` (sorted order kept), at least LABEL_GAP apart, inside [lo, hi]."""
    order = sorted(range(len(ys)), key=lambda i: ys[i])
    pos = [ys[i] for i in order]
    for k in range(1, len(pos)):
        pos[k] = max(pos[k], pos[k - 1] + LABEL_GAP)
    overflow = pos[-1] - hi if pos else 0
    if overflow > 0:
        pos = [p - overflow for p in pos]
        for k in range(len(pos) - 2, -1, -1):
            pos[k] = min(pos[k], pos[k + 1] - LABEL_GAP)
    out = [0.0] * len(ys)
    for k, i in enumerate(order):
        out[i] = max(pos[k], lo)
    return out


def curve_chart(
    cycles: np.ndarray,
    values: np.ndarray,
    calls: list[str],
    labels: list[str],
    *,
    log: bool,
    threshold: float | None,
    title: str,
    width: int = 470,
    height: int = 300,
) -> str:
    """One chart (SVG) of curves (rows of ``values``) over ``cycles``; ``labels[i]`` ('' for none) is written
    beside the end of curve i. On a log axis readings at or below zero are drawn at the axis floor."""
    left, right, top, bottom = 46, 58, 18, 28
    pw, ph = width - left - right, height - top - bottom
    x0, x1 = float(cycles[0]), float(cycles[-1])
    finite = values[np.isfinite(values)]
    ylo: float
    yhi: float
    if log:
        positive = finite[finite > 0]
        hi = float(positive.max()) if positive.size else 1.0
        floor = threshold / 20 if threshold is not None and math.isfinite(threshold) and threshold > 0 else 0.0
        lo = max(float(positive.min()) if positive.size else hi / 1e4, hi / 1e4, floor)
        ylo, yhi = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
        yhi = max(yhi, ylo + 1)
        scale = lambda v: np.log10(np.clip(v, 10.0**ylo, None))  # noqa: E731
        ticks = [float(t) for t in range(int(ylo), int(yhi) + 1)]
        tick_text = [_fmt(10**t) for t in ticks]
    else:
        lo_v, hi_v = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        lo_v, hi_v = min(lo_v, 0.0), (hi_v if hi_v > lo_v else lo_v + 1.0)
        ticks = _nice_ticks(lo_v, hi_v)
        ylo, yhi = min(ticks[0], lo_v), max(ticks[-1], hi_v)
        scale = lambda v: np.asarray(v, dtype=np.float64)  # noqa: E731
        tick_text = [_fmt(t) for t in ticks]
    sx = lambda x: left + (np.asarray(x, dtype=np.float64) - x0) / max(x1 - x0, 1e-9) * pw  # noqa: E731
    sy = lambda y: top + ph - (scale(y) - ylo) / max(yhi - ylo, 1e-12) * ph  # noqa: E731

    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'xmlns="http://www.w3.org/2000/svg" font-family="Helvetica,Arial,sans-serif">',
        f'<text x="{left}" y="12" font-size="10" font-weight="600">{reports.html_escape(title)}</text>',
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#d0d7de"/>',
    ]
    for t, text in zip(ticks, tick_text):
        y = top + ph - (t - ylo) / max(yhi - ylo, 1e-12) * ph
        parts.append(
            f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eef1f5"/>'
            f'<text x="{left - 3}" y="{y + 2.5:.1f}" font-size="8" text-anchor="end">{text}</text>'
        )
    for c in _nice_ticks(x0, x1, 8):
        x = float(sx(c))
        parts.append(f'<text x="{x:.1f}" y="{top + ph + 10}" font-size="8" text-anchor="middle">{c:g}</text>')
    parts.append(f'<text x="{left + pw / 2:.0f}" y="{height - 4}" font-size="8" text-anchor="middle">cycle</text>')
    if threshold is not None and math.isfinite(threshold) and (threshold > 0 or not log):
        y = float(sy(threshold))
        if top <= y <= top + ph:
            parts.append(
                f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#cf222e" '
                'stroke-dasharray="4 3"/>'
            )
    xs = sx(cycles)
    order = sorted(range(len(values)), key=lambda i: (calls[i] == "review", calls[i] == "amplified"))
    for i in order:
        ys = sy(values[i])
        ok = np.isfinite(ys)
        pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs[ok], ys[ok]))
        colour = COLOURS.get(calls[i], COLOURS[""])
        title_text = f"<title>{reports.html_escape(labels[i] or '')}</title>" if labels[i] else ""
        parts.append(
            f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="0.9">{title_text}</polyline>'
        )
    parts += _end_labels(values, calls, labels, xs, sy, top, top + ph)
    parts.append("</svg>")
    return "".join(parts)


def _end_labels(values, calls, labels, xs, sy, lo: float, hi: float) -> list[str]:
    """Well labels beside the last reading of each labelled curve, pushed apart, with leader lines."""
    which = [i for i, text in enumerate(labels) if text]
    if not which:
        return []
    ends = []
    for i in which:
        ok = np.flatnonzero(np.isfinite(values[i]))
        ends.append(float(sy(values[i][ok[-1]])) if ok.size else hi)
    placed = _spread(ends, lo + FONT / 2, hi)
    x_end = float(xs[-1])
    out = []
    for i, y_end, y in zip(which, ends, placed):
        colour = COLOURS.get(calls[i], COLOURS[""])
        out.append(
            f'<line x1="{x_end:.1f}" y1="{y_end:.1f}" x2="{x_end + 6:.1f}" y2="{y:.1f}" stroke="{colour}" '
            'stroke-width="0.5"/>'
            f'<text x="{x_end + 7:.1f}" y="{y + FONT / 3:.1f}" font-size="{FONT}" fill="{colour}">'
            f"{reports.html_escape(labels[i])}</text>"
        )
    return out


def plate_curves(
    wells: list[str],
    values: np.ndarray,
    calls: list[str],
    rows: int,
    cols: int,
    *,
    well_index: dict[str, tuple[int, int]],
    title: str,
) -> str:
    """One small chart per well at its plate position (linear, one y scale for the plate), each labelled with
    its well; a held curve's cell is framed in amber."""
    cw, ch, pad = 44.0, 30.0, 2.0
    width, height = cols * cw + 16, rows * ch + 26
    finite = values[np.isfinite(values)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    span = hi - lo if hi > lo else 1.0
    n_cycles = values.shape[1] if values.ndim == 2 else 1
    parts = [
        f'<svg class="plate" viewBox="0 0 {width:.0f} {height:.0f}" width="100%" '
        f'xmlns="http://www.w3.org/2000/svg" font-family="Helvetica,Arial,sans-serif">',
        f'<text x="0" y="10" font-size="10" font-weight="600">{reports.html_escape(title)}</text>',
    ]
    used_rows = sorted({well_index[w][0] for w in wells if w in well_index})
    used_cols = sorted({well_index[w][1] for w in wells if w in well_index})
    parts += [
        f'<text x="8" y="{16 + r * ch + ch / 2 + 3:.0f}" font-size="8" text-anchor="middle">'
        f"{'' if r < 26 else 'A'}{chr(65 + r % 26)}</text>"
        for r in used_rows
    ]
    parts += [
        f'<text x="{16 + c * cw + cw / 2:.0f}" y="{16 + rows * ch + 9:.0f}" font-size="8" '
        f'text-anchor="middle">{c + 1}</text>'
        for c in used_cols
    ]
    cells: dict[tuple[int, int], list[int]] = {}
    for i, w in enumerate(wells):
        if w in well_index:
            cells.setdefault(well_index[w], []).append(i)
    for (r, c), members in sorted(cells.items()):
        x, y = 16 + c * cw, 16 + r * ch
        held = any(calls[i] == "review" for i in members)
        parts.append(
            f'<rect x="{x:.0f}" y="{y:.0f}" width="{cw - 1:.0f}" height="{ch - 1:.0f}" fill="none" '
            f'stroke="{"#d4a72c" if held else "#d0d7de"}" stroke-width="{1.2 if held else 0.5}"/>'
            f'<text x="{x + 1.5:.1f}" y="{y + 7:.1f}" font-size="6">{reports.html_escape(wells[members[0]])}</text>'
        )
        for i in members:
            ys = y + ch - pad - (values[i] - lo) / span * (ch - 2 * pad - 6)
            xs = x + pad + np.arange(n_cycles) / max(n_cycles - 1, 1) * (cw - 1 - 2 * pad)
            ok = np.isfinite(ys)
            pts = " ".join(f"{a:.0f},{b:.0f}" for a, b in zip(xs[ok], ys[ok]))
            parts.append(
                f'<polyline points="{pts}" fill="none" stroke="{COLOURS.get(calls[i], COLOURS[""])}" '
                'stroke-width="0.6"/>'
            )
    parts.append("</svg>")
    return "".join(parts)
