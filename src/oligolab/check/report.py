"""The HTML report of `oligolab check`: written for a laboratory director who has not used the tool before."""

from __future__ import annotations

import plotly.graph_objects as go

from ..reports import figure_div, html_escape, html_page, table_html

_CALL_CLASS = {"detected": "ok", "binds": "ok", "at risk": "warn", "degraded": "warn", "no data": "na",
               "not detected": "bad", "fails": "bad"}


def _pill(call: str) -> str:
    return f'<span class="pill {_CALL_CLASS.get(call, "na")}">{html_escape(call)}</span>'


def _heatmap(frame, column: str, value: str, keep: list[str], label: str, margin: int) -> str:
    """Lineage group x ``column`` heatmap of a fraction (green = 1, red = 0) for the listed columns."""
    piv = frame[frame[column].isin(keep)].pivot(index="lineage_group", columns=column, values=value)[keep]
    fig = go.Figure(go.Heatmap(z=piv.values, x=list(piv.columns), y=list(piv.index), zmin=0, zmax=1,
                               colorscale=[[0, "#cf222e"], [0.5, "#d4a72c"], [1, "#2da44e"]],
                               colorbar=dict(title=label.split()[0]),
                               hovertemplate="%{y}<br>%{x}<br>" + label + " %{z:.1%}<extra></extra>"))
    fig.update_layout(margin=dict(l=10, r=10, t=10, b=10), xaxis=dict(tickangle=-45))
    return figure_div(fig, height=max(420, 18 * len(piv.index) + margin))


def _verdict(row) -> str:
    """A one-word verdict a laboratory director can act on."""
    if row.not_detected_fraction >= 0.01:
        return "failing"
    if row.not_detected > 0 or (row.genomes and row.at_risk / row.genomes >= 0.10):
        return "watch"
    return "ok"


def _pct(x: float) -> str:
    return "" if x != x else f"{100 * x:.1f}%"


def render(result, tables: dict, summary: dict) -> str:
    checker = result.checker
    assay_summary = tables["assay_summary"].copy()
    groups = tables["group_summary"]
    oligo_groups = tables["oligo_lineage_groups"]
    monthly = tables["monthly_summary"]
    escapes = tables["escape_mutations"]
    lineage_summary = tables["lineage_summary"]
    counts = summary["counts"]
    n_assays = len(assay_summary)
    fully = int((assay_summary["detected_fraction"] >= 0.99999).sum())
    problems = assay_summary[assay_summary["not_detected"] > 0]
    sections = []

    kpis = (
        '<div class="kpis">'
        f'<div class="kpi"><b>{counts["genomes"]:,}</b>genomes ({counts["lineages"]:,} lineages)</div>'
        f'<div class="kpi"><b>{n_assays}</b>assays, {counts["oligos"]} oligos</div>'
        f'<div class="kpi"><b>{fully}</b>assays detect every genome</div>'
        f'<div class="kpi"><b>{len(problems)}</b>assays miss some genomes</div>'
        f'<div class="kpi"><b>{len(escapes)}</b>mutations under weakened oligos</div>'
        "</div>"
        '<p class="explain">For every genome, each oligo is aligned to the genome (both strands, up to '
        f'{checker.options.max_mismatches} differences of which up to {checker.options.max_gaps} gap nucleotides) and '
        "called <b>binds</b>, <b>degraded</b>, <b>fails</b> or <b>no data</b> by the rule table named below. An assay "
        "is <b>detected</b> when all its required oligos bind in the right arrangement, <b>at risk</b> when one is "
        "degraded, <b>not detected</b> when one fails, and <b>no data</b> when a site lies in unknown bases.</p>"
    )
    sections.append(("Summary", kpis))

    # assays at a glance, one table per panel (input file)
    view = assay_summary.sort_values(["not_detected_fraction", "at_risk", "assay"], ascending=[False, False, True])
    view = view.assign(verdict=[_verdict(r) for r in view.itertuples()],
                       detected=view["detected_fraction"].map(_pct),
                       not_detected_pct=view["not_detected_fraction"].map(_pct))
    cols = ["verdict", "assay", "kind", "genomes", "detected", "at_risk", "no_data", "not_detected", "not_detected_pct"]
    inner = ('<p class="explain">Sorted by the share of genomes an assay would miss. Counts are genomes. '
             "<b>failing</b>: misses 1 % or more; <b>watch</b>: misses some, or 10 % or more are at risk; "
             "<b>ok</b>: otherwise.</p>")
    for panel in dict.fromkeys(view["panel"]):
        sub = view[view["panel"] == panel][cols].rename(columns={"detected": "detected %",
                                                                "not_detected_pct": "missed %"})
        inner += f"<h3>{html_escape(panel)} ({len(sub)} assays)</h3>" + table_html(
            sub, max_rows=40, classes={"verdict": lambda v: {"ok": "ok", "watch": "warn", "failing": "bad"}[v]})
    sections.append(("Assays at a glance", inner))

    # heatmaps: lineage groups x assays that miss genomes, and x oligos that weaken
    bad_assays = list(assay_summary.loc[assay_summary["detected_fraction"] < 0.99999, "assay"])
    if bad_assays:
        sections.append(("Where assays lose genomes (lineage group x assay)",
                         '<p class="explain">Share of genomes detected, per lineage group, for the assays that miss '
                         "some genomes. Green = all detected, red = none.</p>" +
                         _heatmap(groups, "assay", "detected_fraction", bad_assays[:80], "detected", 160)))
    weak = oligo_groups.groupby("oligo")["binds_fraction"].min()
    weak_oligos = [o for o in dict.fromkeys(oligo_groups["oligo"]) if weak[o] < 0.99999][:100]
    if weak_oligos:
        sections.append(("Which oligo loses binding (lineage group x oligo)",
                         '<p class="explain">Share of genomes in which each oligo still binds as designed; only '
                         "oligos that weaken somewhere are shown.</p>" +
                         _heatmap(oligo_groups, "oligo", "binds_fraction", weak_oligos, "binds in", 200)))

    # over time
    if len(monthly):
        fig = go.Figure()
        show = bad_assays or list(assay_summary["assay"][:10])
        for name in show[:15]:
            sub = monthly[monthly["assay"] == name]
            fig.add_trace(go.Scatter(x=sub["month"], y=sub["detected_fraction"], mode="lines+markers", name=name,
                                     customdata=sub["genomes"],
                                     hovertemplate="%{x}: %{y:.1%} of %{customdata} genomes<extra>" + name +
                                                   "</extra>"))
        fig.update_layout(yaxis=dict(title="detected", tickformat=".0%", range=[0, 1.02]),
                          xaxis=dict(title="collection month"), margin=dict(l=10, r=10, t=10, b=10))
        sections.append(("Detected fraction over time", figure_div(fig, height=420)))
    else:
        sections.append(("Detected fraction over time", '<p class="explain">The genomes carry no collection '
                         "dates (give --metadata with a date column to see this chart).</p>"))

    # escape mutations
    if len(escapes):
        esc = escapes.head(60).copy()
        sections.append(("Mutations behind weakened oligos", '<p class="explain">Genome differences from the '
                         "reference under an oligo that is degraded or fails, ranked by how many genomes they "
                         "affect. <i>from_3p</i> is the oligo position counted from its 3' end (1 = the 3'-terminal "
                         "base), the most harmful place for a primer mismatch.</p>" + table_html(esc, max_rows=60)))
    else:
        sections.append(("Mutations behind weakened oligos", "<p>No oligo is weakened by a mutation.</p>"))

    # lineages not detected
    missed = lineage_summary[lineage_summary["not_detected"] > 0]
    if len(missed):
        per_assay = (missed.groupby("assay").apply(lambda d: ", ".join(
            f"{r.lineage}" for r in d.sort_values("not_detected", ascending=False).head(25).itertuples()),
            include_groups=False).rename("lineages not detected (up to 25)").reset_index())
        per_assay["lineages"] = per_assay["assay"].map(missed.groupby("assay").size())
        sections.append(("Variants that escape detection", table_html(per_assay, max_rows=80)))

    # exclusivity
    ex = result.exclusivity_assays
    exs = result.exclusivity_sites
    if result.inputs.off_targets:
        inner = '<p class="explain">Off-target collections: ' + html_escape(
            ", ".join(str(p) for p in summary["inputs"]["off_targets"])) + ". "
        if len(ex):
            inner += ("Assays that could amplify (<i>amplicon</i>) or also give a signal (<i>detected</i>) on "
                      "these records:</p>" + table_html(ex, max_rows=100))
        else:
            inner += "No assay could amplify or detect any of these records.</p>"
        if len(exs):
            strong = exs[exs["call"].isin(["binds", "degraded"])]
            inner += (f"<h3>Oligo sites in off-target records ({len(exs)} sites, {len(strong)} binding or degraded)"
                      "</h3>" + table_html(strong.drop(columns=["description"]), max_rows=60))
        inner += ('<p class="muted">What is not checked: only the collections listed above; no human genome or '
                  "transcriptome and no animal sarbecoviruses are shipped with oligolab.</p>")
        sections.append(("Exclusivity: what else would the assays detect?", inner))

    # methods
    ref_missing = summary["oligos_without_reference_site"]
    methods = (
        "<ul>"
        f"<li>Engine: all sites on both strands with up to {checker.options.max_mismatches} differences "
        f"(mismatches, unknown bases and gap nucleotides), of which up to {checker.options.max_gaps} gap nucleotides; "
        "IUPAC oligo bases match any of their bases; unknown genome bases never match.</li>"
        f"<li>Call rules: <code>{html_escape(summary['parameters']['rules'])}</code>; thermodynamics: "
        f"{html_escape(summary['parameters']['conditions'])}.</li>"
        "<li>The site used for each oligo is the best one within "
        "3,000 nt of its reference site (the reference is the expected location).</li>"
        f"<li>Inputs: {html_escape(', '.join(summary['inputs']['genomes']))}; assays "
        f"{html_escape(', '.join(summary['inputs']['assays']))}.</li>"
        + (f"<li>Oligos without a site on the reference (called on their best site anywhere): "
           f"{html_escape(', '.join(ref_missing))}</li>" if ref_missing else "")
        + "</ul><p class='explain'>Files beside this report: <code>oligo_calls.tsv/.parquet</code> (every genome x "
        "oligo), <code>assay_calls.tsv/.parquet</code> (every genome x assay), <code>group_summary.tsv</code>, "
        "<code>lineage_summary.tsv</code>, <code>monthly_summary.tsv</code>, <code>escape_mutations.tsv</code>, "
        "<code>exclusivity_*.tsv</code>, <code>summary.json</code>.</p>"
    )
    sections.append(("How this was computed", methods))
    from .. import __version__

    return html_page("oligolab check: assay inclusivity and exclusivity",
                     f"{counts['genomes']:,} genomes x {n_assays} assays", sections,
                     footer=f"oligolab {__version__}")
