"""Outputs of an analysed plate: per-sample CSV, per-well CSV, controls CSV, result JSON and a printable HTML
report with the curves, the plate layout, the calls, the flags and the audit trail.

All files are written through the shared report toolkit (:mod:`oligolab.reports`), atomically.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from .. import reports
from . import qc
from .analysis import PlateResult
from .run import well_sort_key

#: per-well columns exported (in this order) and their headers
WELL_COLUMNS = {
    "well": "well", "sample": "sample", "role": "role", "target": "target", "dye": "dye",
    "amplified": "amplified", "cq_threshold": "cq_threshold", "cq_td0": "cq_td0", "cq_sdm": "cq_sdm",
    "td0": "td0_raw", "efficiency": "efficiency", "mean_efficiency": "mean_efficiency", "r2": "r2",
    "baseline": "baseline", "n_log_phase": "n_log_phase", "rise_snr": "rise_snr",
    "amplified_linregpcr": "amplified_linregpcr", "plateau": "plateau", "baseline_error": "baseline_error",
    "threshold": "threshold", "instrument_cq": "instrument_cq", "flags": "flags", "review": "review",
    "excluded": "excluded",
}
#: CSS class (report style) of each call, shared with the web service's pages
CALL_CLASS = {"positive": "bad", "negative": "ok", "inconclusive": "warn", "invalid": "warn",
               "screen_positive": "bad", "review": "warn", "run_invalid": "bad"}
_STATUS_CLASS = {"release": "ok", "review": "warn", "rerun": "bad"}


def wells_frame(result: PlateResult) -> pd.DataFrame:
    """The per-well (per-curve) export table, sorted by well."""
    t = result.table
    cols = [c for c in WELL_COLUMNS if c in t.columns]
    out = t[cols].rename(columns=WELL_COLUMNS)
    wells, targets = out["well"].tolist(), out["target"].tolist()
    order = sorted(range(len(out)), key=lambda i: (well_sort_key(wells[i]), targets[i]))
    return out.iloc[order].reset_index(drop=True)


def samples_frame(result: PlateResult) -> pd.DataFrame:
    """The per-sample export table (final call first)."""
    s = result.samples.copy()
    if s.empty:
        return s
    front = [c for c in ("sample", "final_call", "status", "call", "report", "action") if c in s.columns]
    rest = [c for c in s.columns if c not in front]
    s = s[front + rest]
    s.insert(0, "run", result.run.name)
    return s


def derived_tables(result: PlateResult) -> dict[str, str]:
    """The plate's tables as the CSV text written to disk (samples.csv, wells.csv, controls.csv when the rule
    set has controls): what a sign-off hashes."""
    frames = {"samples.csv": samples_frame(result), "wells.csv": wells_frame(result)}
    if not result.controls.empty:
        frames["controls.csv"] = result.controls
    return {name: frame.to_csv(index=False, lineterminator="\n", na_rep="") for name, frame in frames.items()}


def write_outputs(result: PlateResult, out_dir: str | Path, *, html: bool = True,
                  derived_from: dict | None = None) -> dict[str, Path]:
    """Write samples.csv, wells.csv, controls.csv, result.json and report.html into ``out_dir``.

    ``result.json`` records each table's SHA-256 (``files``) and, when given, the audit-log state the results
    were derived from (``derived_from``; see :mod:`.store`).
    """
    out = Path(out_dir)
    keys = {"samples.csv": "samples", "wells.csv": "wells", "controls.csv": "controls"}
    paths, files = {}, {}
    for name, text in derived_tables(result).items():
        paths[keys[name]] = reports.write_text(out / name, text)
        files[name] = hashlib.sha256(text.encode()).hexdigest()
    samples_sha = files["samples.csv"]
    doc = {"run_id": result.run_id, "summary": result.summary(), "valid": result.valid,
           "problems": result.problems, "holds": result.holds, "provenance": result.provenance,
           "samples_sha256": samples_sha, "files": files,
           "signoff": result.signoff.__dict__ if result.signoff else None,
           "overrides": [e.__dict__ for e in result.overrides]}
    if derived_from is not None:
        doc["derived_from"] = derived_from
    paths["result"] = reports.write_json(out / "result.json", doc)
    if html:
        paths["report"] = reports.write_text(out / "report.html", render_html(result, samples_sha))
    return paths


# ------------------------------------------------------------------------------------------------ figures

def _curve_figures(result: PlateResult) -> list[tuple[str, str]]:
    """One log-scale chart of baseline-corrected curves per target: amplified, not amplified, flagged."""
    t = result.table
    corrected = result.curves.corrected
    cycles = result.run.cycles.tolist()
    wells, samples, roles = (t[c].to_numpy(dtype=object) for c in ("well", "sample", "role"))
    targets = t["target"].to_numpy(dtype=object)
    review, amplified = t["review"].to_numpy(), t["amplified"].to_numpy()
    colors = {"amplified": "#1a7f37", "not amplified": "#8c959f", "flagged for review": "#d4a72c"}
    out = []
    used = roles != "empty"
    for target in dict.fromkeys(targets[used]):
        idx = np.flatnonzero((targets == target) & used)
        groups: dict[str, list[int]] = {k: [] for k in colors}
        for i in idx:
            key = "flagged for review" if review[i] else ("amplified" if amplified[i] else "not amplified")
            groups[key].append(int(i))
        traces = []
        for name, members in groups.items():
            if not members:
                continue
            xs: list = []
            ys: list = []
            texts: list = []
            for i in members:
                y = corrected[i]
                xs += cycles + [None]
                ys += [float(v) if v > 0 else None for v in y] + [None]  # NaN > 0 is False: no NaN left
                texts += [f"{wells[i]} {samples[i]} ({roles[i]})"] * len(cycles) + [None]
            traces.append({"type": "scattergl", "mode": "lines", "x": xs, "y": ys, "text": texts,
                           "name": f"{name} ({len(members)})", "line": {"color": colors[name], "width": 1.2},
                           "hovertemplate": "%{text}<br>cycle %{x}<br>%{y:.4g}<extra></extra>"})
        layout = {"margin": {"l": 60, "r": 20, "t": 30, "b": 40}, "template": "plotly_white",
                  "title": {"text": f"{target}: baseline-corrected fluorescence", "font": {"size": 14}},
                  "xaxis": {"title": {"text": "cycle"}}, "yaxis": {"title": {"text": "fluorescence (log scale)"},
                                                                   "type": "log"},
                  "legend": {"orientation": "h", "y": -0.2}, "paper_bgcolor": "#fff", "plot_bgcolor": "#fff"}
        thr = result.curves.thresholds.get(str(target))
        if thr and np.isfinite(thr):
            layout["shapes"] = [{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": thr, "y1": thr,
                                 "line": {"dash": "dash", "color": "#cf222e", "width": 1}}]
            layout["annotations"] = [{"xref": "paper", "x": 0, "y": float(np.log10(thr)), "text": "threshold",
                                      "showarrow": False, "xanchor": "left", "yanchor": "bottom",
                                      "font": {"color": "#cf222e", "size": 11}}]
        out.append((str(target), reports.plotly_div(traces, layout, height=360, nan_free=True)))
    return out


def _plate_grid(result: PlateResult) -> str:
    """The plate as a table: each well shows its sample and the sample's call (or its role)."""
    t = result.table
    call_of = {}
    if not result.samples.empty and "final_call" in result.samples:
        call_of = dict(zip(result.samples["sample"], result.samples["final_call"]))
    by_well: dict[str, dict] = {}
    for well, sample, role, review, target, amp in zip(*(t[c].tolist() for c in (
            "well", "sample", "role", "review", "target", "amplified"))):
        d = by_well.setdefault(well, {"sample": sample, "role": role, "review": False, "amp": []})
        d["review"] |= bool(review)
        d["amp"].append(f"{target}{'+' if amp else '-'}")
    rows, cols = result.run.plate_rows, result.run.plate_columns
    head = "".join(f"<th>{c + 1}</th>" for c in range(cols))
    body = []
    for ri in range(rows):
        letter = chr(ord("A") + ri)
        cells = []
        for ci in range(cols):
            d = by_well.get(f"{letter}{ci + 1}")
            if not d or d["role"] == "empty":
                cells.append('<td class="muted"></td>')
                continue
            tag = call_of.get(d["sample"], d["role"]) if d["role"] == "sample" else d["role"].upper()
            cls = CALL_CLASS.get(str(tag), "") if d["role"] == "sample" else "muted"
            mark = " &#9873;" if d["review"] else ""
            tip = reports.html_escape(f"{d['sample']}: {' '.join(d['amp'])}")
            cells.append(f'<td title="{tip}" style="font-size:10px"><span class="{cls}">'
                         f"{reports.html_escape(tag)}</span>{mark}</td>")
        body.append(f"<tr><th>{letter}</th>{''.join(cells)}</tr>")
    return (f'<table style="font-size:11px"><thead><tr><th></th>{head}</tr></thead><tbody>{"".join(body)}'
            f'</tbody></table><p class="muted">&#9873; = a curve in the well is flagged for review; hover a well '
            f"for its sample and per-target amplification.</p>")


def _pill(value: str, mapping: dict) -> str:
    return f'<span class="pill {mapping.get(value, "na")}">{reports.html_escape(value)}</span>'


def render_html(result: PlateResult, samples_sha256: str = "", *, release_html: str | None = None) -> str:
    """The printable per-plate report. ``release_html`` replaces the sign-off line (a service that stores the
    report and adds its release state when it is exported)."""
    run, prov = result.run, result.provenance
    sections: list[tuple[str, str]] = []

    if result.valid is None:
        verdict = '<p><span class="pill na">no rule set</span> curves analysed without interpretation</p>'
    elif result.valid:
        verdict = '<p><span class="pill ok">RUN VALID</span> all required controls passed</p>'
    else:
        verdict = '<p><span class="pill bad">RUN INVALID</span> no sample result may be released</p>'
    problems = "".join(f"<li>{reports.html_escape(p)}</li>" for p in result.problems)
    notes = "".join(f"<li>{reports.html_escape(n)}</li>" for n in prov.get("notes", []))
    s = result.summary()
    kpis = [("curves", s["curves"]), ("amplified", s["amplified"]), ("curves flagged", s["flagged_curves"]),
            ("samples", s["samples"]), ("samples for review", s.get("review", 0))]
    kpi_html = "".join(f'<div class="kpi"><b>{v}</b>{k}</div>' for k, v in kpis)
    calls = "".join(f'<div class="kpi"><b>{v}</b>{reports.html_escape(k)}</div>'
                    for k, v in (s.get("calls") or {}).items())
    if result.signoff and result.signoff.new == samples_sha256:
        sign = (f'<p><span class="pill ok">SIGNED</span> by {reports.html_escape(result.signoff.user)} at '
                f"{reports.html_escape(result.signoff.time)}</p>")
    elif result.signoff:
        sign = ('<p><span class="pill warn">SIGNATURE OUTDATED</span> results changed after the last sign-off by '
                f"{reports.html_escape(result.signoff.user)}; sign again after review</p>")
    else:
        sign = '<p><span class="pill na">NOT SIGNED</span> results await review and sign-off</p>'
    if release_html is not None:
        sign = release_html
    sections.append(("Run", verdict + (f"<ul>{problems}</ul>" if problems else "") + sign
                     + f'<div class="kpis">{kpi_html}{calls}</div>' + (f"<h3>Notes</h3><ul>{notes}</ul>" if notes else "")))

    samples = samples_frame(result)
    if not samples.empty:
        show = [c for c in samples.columns if c not in ("run", "rule_call")]
        sections.append(("Samples", reports.table_html(
            samples[show], max_rows=1000, classes={"final_call": lambda v: CALL_CLASS.get(str(v), ""),
                                                   "call": lambda v: CALL_CLASS.get(str(v), ""),
                                                   "status": lambda v: _STATUS_CLASS.get(str(v), "")})))
    if not result.controls.empty:
        sections.append(("Controls", reports.table_html(
            result.controls, classes={"passed": lambda v: "ok" if v else "bad"})))
    sections.append(("Plate", _plate_grid(result)))
    for target, div in _curve_figures(result):
        sections.append((f"Curves: {target}", div))

    wells = wells_frame(result)
    flagged = wells[wells["flags"] != ""].copy()
    if not flagged.empty:
        flagged["flags"] = flagged["flags"].map(lambda f: "; ".join(qc.describe(x) for x in f.split(";") if x))
        sections.append(("Flagged curves", reports.table_html(
            flagged[["well", "sample", "role", "target", "amplified", "cq_threshold", "cq_td0", "efficiency",
                     "flags"]], max_rows=1000)))
    sections.append(("All curves", reports.table_html(
        wells[["well", "sample", "role", "target", "amplified", "cq_threshold", "cq_td0", "cq_sdm", "efficiency",
               "mean_efficiency", "r2", "review"]], max_rows=1000, formats={"efficiency": ".3f",
                                                                          "mean_efficiency": ".3f", "r2": ".4f"})))
    if result.overrides:
        rows = pd.DataFrame([{"when": e.time, "who": e.user, "what": f"{e.field} of {e.subject}", "old": e.old,
                              "new": e.new, "reason": e.reason} for e in result.overrides])
        sections.append(("Manual overrides (audit log)", reports.table_html(rows)))
    thr = ", ".join(f"{k}: {v:.4g}" for k, v in prov.get("thresholds", {}).items())
    methods = (
        '<p class="explain">Cq by LinRegPCR TD0 (third-derivative zero after the rise), by threshold (per-target '
        "threshold in the exponential phase, log-interpolated) and by second-derivative maximum. Baseline and "
        "per-well PCR efficiency by the window-of-linearity method; mean efficiency per target. Amplification "
        "needs LinRegPCR's criteria and a rise of at least 20 noise SDs. Calls use the "
        f"<b>{reports.html_escape(prov.get('cq_method', ''))}</b> Cq and the rule set's cutoffs. "
        "See docs/lab.md.</p>"
        f"<table><tr><th>software</th><td>{reports.html_escape(prov.get('software'))}</td></tr>"
        f"<tr><th>input</th><td>{reports.html_escape(prov.get('input'))} ({reports.html_escape(prov.get('format'))})"
        f"</td></tr><tr><th>input SHA-256</th><td>{reports.html_escape(prov.get('input_sha256'))}</td></tr>"
        f"<tr><th>plate map</th><td>{reports.html_escape(prov.get('plate_map') or '(from the run file)')}</td></tr>"
        f"<tr><th>rule set</th><td>{reports.html_escape(prov.get('rules') or '(none)')} "
        f"{reports.html_escape(prov.get('rules_sha256', '')[:16])}</td></tr>"
        f"<tr><th>thresholds</th><td>{reports.html_escape(thr)}</td></tr>"
        f"<tr><th>missing readings</th><td>{reports.html_escape(prov.get('gaps'))}</td></tr>"
        f"<tr><th>analysed</th><td>{reports.html_escape(prov.get('analysed_at'))}</td></tr>"
        f"<tr><th>results SHA-256</th><td>{reports.html_escape(samples_sha256)}</td></tr></table>")
    sections.append(("Methods and provenance", methods))
    subtitle = (f"{Path(run.source).name} | {run.instrument or run.fmt} | {run.n_curves} curves, {run.n_cycles} "
                f"cycles | rules: {prov.get('rules') or 'none'}")
    return reports.html_page(f"qPCR plate report: {run.name}", subtitle, sections,
                             footer="oligolab lab: results are for review by qualified laboratory staff.")
