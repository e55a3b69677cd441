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
from . import figures, qc
from .analysis import PlateResult
from .run import well_from_position, well_sort_key

#: per-well columns exported (in this order) and their headers
WELL_COLUMNS = {
    "well": "well",
    "sample": "sample",
    "role": "role",
    "target": "target",
    "dye": "dye",
    "amplified": "amplified",
    "cq_threshold": "cq_threshold",
    "cq_td0": "cq_td0",
    "cq_sdm": "cq_sdm",
    "td0": "td0_raw",
    "efficiency": "efficiency",
    "mean_efficiency": "mean_efficiency",
    "r2": "r2",
    "baseline": "baseline",
    "n_log_phase": "n_log_phase",
    "rise_snr": "rise_snr",
    "amplified_linregpcr": "amplified_linregpcr",
    "plateau": "plateau",
    "baseline_error": "baseline_error",
    "threshold": "threshold",
    "instrument_cq": "instrument_cq",
    "instrument_call": "instrument_call",
    "call": "call",
    "call_reason": "call_reason",
    "cq_detect": "cq_detect",
    "flags": "flags",
    "review": "review",
    "excluded": "excluded",
}
#: CSS class (report style) of each call, shared with the web service's pages
CALL_CLASS = {
    "positive": "bad",
    "negative": "ok",
    "inconclusive": "warn",
    "invalid": "warn",
    "screen_positive": "bad",
    "review": "warn",
    "run_invalid": "bad",
}
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


def write_outputs(
    result: PlateResult, out_dir: str | Path, *, html: bool = True, derived_from: dict | None = None
) -> dict[str, Path]:
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
    doc = {
        "run_id": result.run_id,
        "summary": result.summary(),
        "valid": result.valid,
        "problems": result.problems,
        "holds": result.holds,
        "provenance": result.provenance,
        "samples_sha256": samples_sha,
        "files": files,
        "signoff": result.signoff.__dict__ if result.signoff else None,
        "overrides": [e.__dict__ for e in result.overrides],
    }
    if derived_from is not None:
        doc["derived_from"] = derived_from
    paths["result"] = reports.write_json(out / "result.json", doc)
    if html:
        paths["report"] = reports.write_text(out / "report.html", render_html(result, samples_sha))
    return paths


# -------------------------------------------------------------------------------------------- the report

#: print and screen styles of the report (A4 portrait; tables wrap instead of being cut)
REPORT_CSS = """
.meta th{width:150px;background:#f6f8fa} .meta td{overflow-wrap:anywhere}
.charts{display:flex;flex-wrap:wrap;gap:8px} .charts svg.chart{width:49%;min-width:320px;height:auto}
svg.plate{max-width:100%;height:auto} .legend span{margin-right:14px;font-size:12px}
.legend i{display:inline-block;width:18px;height:3px;vertical-align:middle;margin-right:4px}
table.compact{font-size:11px;width:100%} table.compact td,table.compact th{padding:2px 4px;overflow-wrap:break-word}
@page{size:A4 portrait;margin:12mm 10mm}
@media print{body{background:#fff;font-size:10px} main{padding:0;max-width:none} section{padding:4px 0;margin:6px 0}
 table{font-size:8px;width:100%;table-layout:auto} th,td{padding:1px 3px;overflow-wrap:break-word}
 .charts svg.chart{width:49%;min-width:0} .kpi{padding:4px 8px;min-width:90px} .kpi b{font-size:14px}
 section.curves,svg{break-inside:avoid} thead{display:table-header-group} tr{break-inside:avoid}}
"""
#: the run facts shown in the report's head, when the file has them: (meta key, label)
RUN_FACTS = (
    ("run_date", "run date"),
    ("instrument", "instrument"),
    ("instrument_name", "instrument name"),
    ("serial", "instrument serial"),
    ("operator", "operator"),
    ("reagent_lots", "reagent lots"),
    ("experiment", "experiment"),
    ("barcode", "plate barcode"),
    ("block", "block"),
    ("chemistry", "chemistry"),
)
#: at most this many end labels in an overview chart (the plate of small charts names every curve)
MAX_CHART_LABELS = 40


def _pill(value: str, mapping: dict) -> str:
    return f'<span class="pill {mapping.get(value, "na")}">{reports.html_escape(value)}</span>'


def _kv_table(rows: list[tuple[str, object]]) -> str:
    body = "".join(
        f"<tr><th>{reports.html_escape(k)}</th><td>{reports.html_escape(v)}</td></tr>"
        for k, v in rows
        if v not in (None, "")
    )
    return f'<table class="meta">{body}</table>'


def _run_facts(result: PlateResult) -> str:
    """Run, file, instrument, serial, date, operator and reagent lots (where the file has them)."""
    run, prov = result.run, result.provenance
    facts: list[tuple[str, object]] = [("run", run.name), ("file", f"{Path(run.source).name} ({run.fmt})")]
    meta = dict(run.meta)
    meta.setdefault("instrument", run.instrument)
    facts += [(label, meta.get(key)) for key, label in RUN_FACTS]
    facts += [
        ("rule set", prov.get("rules") or "(none)"),
        ("analysed", prov.get("analysed_at")),
        ("software", prov.get("software")),
    ]
    return _kv_table(facts)


def _sign_state(result: PlateResult, samples_sha256: str) -> str:
    if result.signoff and result.signoff.new == samples_sha256:
        return (
            f'<p><span class="pill ok">SIGNED</span> by {reports.html_escape(result.signoff.user)} at '
            f"{reports.html_escape(result.signoff.time)}</p>"
        )
    if result.signoff:
        return (
            '<p><span class="pill warn">SIGNATURE OUTDATED</span> results changed after the last sign-off by '
            f"{reports.html_escape(result.signoff.user)}; sign again after review</p>"
        )
    return '<p><span class="pill na">NOT SIGNED</span> results await review and sign-off</p>'


def _run_section(result: PlateResult, samples_sha256: str, release_html: str | None) -> str:
    """Verdict, problems, the run-level review reasons (once), sign-off, counts and notes."""
    if result.valid is None:
        verdict = '<p><span class="pill na">no rule set</span> curves analysed without interpretation</p>'
    elif result.valid:
        verdict = '<p><span class="pill ok">RUN VALID</span> all required controls passed</p>'
    else:
        verdict = '<p><span class="pill bad">RUN INVALID</span> no sample result may be released</p>'
    lists = ""
    for head, items in (
        ("Why the run is invalid", result.problems),
        ("Why every sample is held (run-level review reasons)", result.holds),
        ("Notes", result.provenance.get("notes", [])),
    ):
        if items:
            lists += f"<h3>{head}</h3><ul>" + "".join(f"<li>{reports.html_escape(x)}</li>" for x in items) + "</ul>"
    s = result.summary()
    kpis = [
        ("curves", s["curves"]),
        ("amplified", s["amplified"]),
        ("curves flagged", s["flagged_curves"]),
        ("samples", s["samples"]),
        ("samples for review", s.get("review", 0)),
    ]
    kpis += [(k, v) for k, v in (s.get("calls") or {}).items() if k]
    kpi_html = "".join(f'<div class="kpi"><b>{v}</b>{reports.html_escape(k)}</div>' for k, v in kpis)
    sign = release_html if release_html is not None else _sign_state(result, samples_sha256)
    return _run_facts(result) + verdict + sign + lists + f'<div class="kpis">{kpi_html}</div>'


def _samples_section(result: PlateResult) -> str:
    """One row per sample: final call, status, per-target outcome and Cq, wells, the sample's own reasons."""
    s = samples_frame(result)
    targets = [c[:-8] for c in s.columns if c.endswith("_outcome")]
    rows = []
    for r in s.to_dict("records"):
        row = {
            "sample": r["sample"],
            "final call": r.get("final_call", ""),
            "status": r.get("status", ""),
            "report": r.get("report", ""),
        }
        for t in targets:
            cq = r.get(f"{t}_cq")
            row[t] = f"{r[f'{t}_outcome']}" + (f" {cq:.1f}" if isinstance(cq, float) and np.isfinite(cq) else "")
        row["wells"] = str(r.get("wells", "")).replace(",", ", ")
        row["review reasons"] = r.get("review_reasons", "")
        if r.get("override"):
            row["override"] = r["override"]
        rows.append(row)
    frame = pd.DataFrame(rows)
    html = reports.table_html(
        frame,
        max_rows=2000,
        classes={"final call": lambda v: CALL_CLASS.get(str(v), ""), "status": lambda v: _STATUS_CLASS.get(str(v), "")},
    )
    return html.replace("<table>", '<table class="compact">', 1)


def _disagreements(result: PlateResult) -> pd.DataFrame:
    """Curves held for review or whose call disagrees with the instrument's, with both Cq values."""
    t = result.table
    used = t["role"] != "empty"
    inst = t["instrument_cq"] if "instrument_cq" in t else pd.Series(np.nan, index=t.index)
    inst_call = t["instrument_call"] if "instrument_call" in t else pd.Series("", index=t.index)
    inst_amp = inst.notna() & (inst_call != "undetermined")
    disagree = (t["amplified"] & (inst_call == "undetermined")) | (
        ~t["amplified"] & inst_amp & (inst < result.run.n_cycles)
    )
    pick = used & (t["review"] | disagree)
    rows = t[pick]
    frame = pd.DataFrame(
        {
            "well": rows["well"],
            "sample": rows["sample"],
            "target": rows["target"],
            "our call": rows["call"],
            "our Cq": rows["cq_threshold"],
            "instrument Cq": inst[pick],
            "instrument call": inst_call[pick],
            "why": [_why(f, r) for f, r in zip(rows["flags"], rows["call_reason"])],
        }
    )
    order = sorted(
        range(len(frame)), key=lambda i: (well_sort_key(str(frame["well"].iat[i])), str(frame["target"].iat[i]))
    )
    return frame.iloc[order]


def _why(flags: str, reason: str) -> str:
    texts = [qc.describe(f) for f in str(flags).split(";") if f and not f.startswith("doubtful")]
    return "; ".join(filter(None, [reason] + texts))


def _label_of(t: pd.DataFrame, i: int) -> str:
    role = str(t["role"].iat[i])
    return f"{t['well'].iat[i]}" + ("" if role == "sample" else f" {role.upper()}")


def _curve_sections(result: PlateResult) -> list[tuple[str, str]]:
    """Per target: linear and log charts with well labels, and the plate of small charts."""
    t = result.table
    corrected, cycles = result.curves.corrected, result.run.cycles
    used = (t["role"] != "empty").to_numpy()
    targets = t["target"].to_numpy(dtype=object)
    calls = t["call"].astype(str).to_numpy(dtype=object)
    rows, cols = result.run.plate_rows, result.run.plate_columns
    index = {well_from_position(r * cols + c + 1, cols): (r, c) for r in range(rows) for c in range(cols)}
    legend = (
        '<p class="legend">'
        + "".join(
            f'<span><i style="background:{figures.COLOURS[k]}"></i>{k}</span>'
            for k in ("amplified", "review", "not amplified")
        )
        + '<span><i style="background:#cf222e"></i>detection threshold</span></p>'
    )
    out = []
    for target in dict.fromkeys(targets[used]):
        idx = np.flatnonzero((targets == target) & used)
        sub_calls = [str(calls[i]) for i in idx]
        notable = [calls[i] == "review" or t["role"].iat[i] != "sample" for i in idx]
        show_all = len(idx) <= MAX_CHART_LABELS
        chosen = set(range(len(idx))) if show_all else set(np.flatnonzero(notable)[:MAX_CHART_LABELS].tolist())
        labels = [_label_of(t, int(i)) if k in chosen else "" for k, i in enumerate(idx)]
        thr = float(np.nanmedian(t["detection_threshold"].to_numpy(dtype=float)[idx]))
        charts = "".join(
            figures.curve_chart(
                cycles,
                corrected[idx],
                sub_calls,
                labels,
                log=log,
                threshold=thr,
                title=f"{target}: {'log' if log else 'linear'} scale",
            )
            for log in (False, True)
        )
        note = (
            ""
            if show_all
            else '<p class="muted">labels: controls and held curves; the plate below names every curve</p>'
        )
        plate = figures.plate_curves(
            t["well"].to_numpy(dtype=object)[idx].tolist(),
            corrected[idx],
            sub_calls,
            rows,
            cols,
            well_index=index,
            title=f"{target}: every curve at its well",
        )
        out.append((f"Curves: {target}", legend + f'<div class="charts">{charts}</div>{note}{plate}'))
    return out


def _plate_grid(result: PlateResult) -> str:
    """The plate as a table: each well shows its sample and the sample's call (or its role)."""
    t = result.table
    call_of = {}
    if not result.samples.empty and "final_call" in result.samples:
        call_of = dict(zip(result.samples["sample"], result.samples["final_call"]))
    by_well: dict[str, dict] = {}
    for well, sample, role, review, target, amp in zip(
        *(t[c].tolist() for c in ("well", "sample", "role", "review", "target", "amplified"))
    ):
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
            cell = by_well.get(f"{letter}{ci + 1}")
            if not cell or cell["role"] == "empty":
                cells.append('<td class="muted"></td>')
                continue
            tag = call_of.get(cell["sample"], cell["role"]) if cell["role"] == "sample" else cell["role"].upper()
            cls = CALL_CLASS.get(str(tag), "") if cell["role"] == "sample" else "muted"
            mark = " &#9873;" if cell["review"] else ""
            tip = reports.html_escape(f"{cell['sample']}: {' '.join(cell['amp'])}")
            cells.append(
                f'<td title="{tip}" style="font-size:9px"><span class="{cls}">'
                f"{reports.html_escape(tag)}</span>{mark}</td>"
            )
        body.append(f"<tr><th>{letter}</th>{''.join(cells)}</tr>")
    return (
        f'<table class="compact"><thead><tr><th></th>{head}</tr></thead><tbody>{"".join(body)}'
        f'</tbody></table><p class="muted">&#9873; = a curve in the well is held for review.</p>'
    )


def _methods(result: PlateResult, samples_sha256: str) -> str:
    prov = result.provenance
    thr = ", ".join(f"{k}: {v:.4g}" for k, v in prov.get("thresholds", {}).items())
    explain = (
        '<p class="explain">Detection: the diagnostic call (robust baseline, sustained crossing of 10 noise SDs, '
        "logistic amplification shape, a flat baseline before the rise; amplified / not amplified / review with "
        "the reason). Cq by threshold (per-target threshold in the exponential phase, log-interpolated), by "
        "LinRegPCR TD0 and by second-derivative maximum; PCR efficiency by the window-of-linearity method. Calls "
        f"use the <b>{reports.html_escape(prov.get('cq_method', ''))}</b> Cq and the rule set's cutoffs. Charts: "
        "baseline-corrected fluorescence. See docs/lab.md.</p>"
    )
    return explain + _kv_table(
        [
            ("input", f"{prov.get('input')} ({prov.get('format')})"),
            ("input SHA-256", prov.get("input_sha256")),
            ("plate map", prov.get("plate_map") or "(from the run file)"),
            ("rule set", f"{prov.get('rules') or '(none)'} {prov.get('rules_sha256', '')[:16]}"),
            ("thresholds (Cq)", thr),
            ("missing readings", prov.get("gaps")),
            ("analysed", prov.get("analysed_at")),
            ("results SHA-256", samples_sha256),
            ("software", prov.get("software")),
        ]
    )


def render_html(result: PlateResult, samples_sha256: str = "", *, release_html: str | None = None) -> str:
    """The printable per-plate report (A4, charts drawn as SVG: no plotting library, opens offline).
    ``release_html`` replaces the sign-off line (a service that stores the report and adds its release state
    when it is exported)."""
    run = result.run
    sections: list[tuple[str, str]] = [
        ("Run", f"<style>{REPORT_CSS}</style>" + _run_section(result, samples_sha256, release_html))
    ]
    if not result.samples.empty:
        sections.append(("Samples", _samples_section(result)))
    if not result.controls.empty:
        ctrl = result.controls.drop(columns=[c for c in result.controls.columns if c.endswith("_outcome")])
        sections.append(
            (
                "Controls",
                reports.table_html(ctrl, classes={"passed": lambda v: "ok" if v else "bad"}).replace(
                    "<table>", '<table class="compact">', 1
                ),
            )
        )
    odd = _disagreements(result)
    if not odd.empty:
        sections.append(
            (
                "Curves held or disagreeing with the instrument",
                reports.table_html(
                    odd, max_rows=2000, classes={"our call": lambda v: "warn" if v == "review" else ""}
                ).replace("<table>", '<table class="compact">', 1),
            )
        )
    sections += _curve_sections(result)
    sections.append(("Plate", _plate_grid(result)))
    wells = wells_frame(result)
    cols = [
        c
        for c in (
            "well",
            "sample",
            "role",
            "target",
            "call",
            "cq_threshold",
            "cq_td0",
            "instrument_cq",
            "efficiency",
            "review",
        )
        if c in wells
    ]
    sections.append(
        (
            "All curves",
            reports.table_html(wells[cols], max_rows=10000, formats={"efficiency": ".3f"}).replace(
                "<table>", '<table class="compact">', 1
            ),
        )
    )
    if result.overrides:
        rows = pd.DataFrame(
            [
                {
                    "when": e.time,
                    "who": e.user,
                    "what": f"{e.field} of {e.subject}",
                    "old": e.old,
                    "new": e.new,
                    "reason": e.reason,
                }
                for e in result.overrides
            ]
        )
        sections.append(("Manual overrides (audit log)", reports.table_html(rows)))
    sections.append(("Methods and provenance", _methods(result, samples_sha256)))
    subtitle = (
        f"{Path(run.source).name} | {run.instrument or run.fmt} | {run.n_curves} curves, {run.n_cycles} "
        f"cycles | rules: {result.provenance.get('rules') or 'none'}"
    )
    return reports.html_page(
        f"qPCR plate report: {run.name}",
        subtitle,
        sections,
        include_plotly=False,
        footer="oligolab lab: results are for review by qualified laboratory staff.",
    )
