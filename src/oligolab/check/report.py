"""The HTML report of `oligolab check`: written for a laboratory director who has not used the tool before.

One function per section; colours keep "at risk" (amber) apart from "lost" (red); lineages are ranked by the
genomes affected; each table shows the columns a reader needs (the TSV files beside the report hold them all).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go

from ..reports import figure_div, html_escape, html_page, table_html

#: status colours: lost (red) through all detected (green) to at risk (amber)
_STATUS_SCALE = [
    [0.0, "#8c1a13"],
    [0.4, "#f1a7a1"],
    [0.499, "#f1a7a1"],
    [0.5, "#2da44e"],
    [0.501, "#f5dc8e"],
    [0.6, "#f5dc8e"],
    [1.0, "#9a6700"],
]
_VERDICT_CLASS = {"ok": "ok", "watch": "warn", "failing": "bad"}


def _scroll(html: str) -> str:
    """A wide table kept inside the page: it scrolls sideways on screen instead of widening the page."""
    return f'<div style="overflow-x:auto;max-width:100%">{html}</div>'


def _status_heatmap(frame: Any, column: str, keep: list[str], good: str, risk: str, lost: str, margin: int) -> str:
    """Lineage group x ``column`` heatmap of each cell's worst state: red shades for the share of genomes lost
    (``lost``), amber shades for the share at risk (``risk``) where none is lost, green where all are ``good``."""
    sub = frame[frame[column].isin(keep)]
    n = sub["genomes"].clip(lower=1)
    lost_share, risk_share = sub[lost] / n, sub[risk] / n
    score = np.where(sub[lost] > 0, -(0.2 + 0.8 * lost_share), np.where(sub[risk] > 0, 0.2 + 0.8 * risk_share, 0.0))
    sub = sub.assign(
        score=score,
        text=[
            f"{g:,} genomes: {d:,} {good}, {r:,} {risk.replace('_', ' ')}, {x:,} {lost.replace('_', ' ')}"
            for g, d, r, x in zip(sub["genomes"], sub[good], sub[risk], sub[lost])
        ],
    )
    piv = sub.pivot(index="lineage_group", columns=column, values="score")[keep]
    text = sub.pivot(index="lineage_group", columns=column, values="text")[keep]
    fig = go.Figure(
        go.Heatmap(
            z=piv.values,
            x=list(piv.columns),
            y=list(piv.index),
            zmin=-1,
            zmax=1,
            customdata=text.values,
            colorscale=_STATUS_SCALE,
            colorbar=dict(
                tickvals=[-1, -0.2, 0, 0.2, 1],
                ticktext=["all lost", "some lost", f"all {good}", "some at risk", "all at risk"],
            ),
            hovertemplate="%{y}<br>%{x}<br>%{customdata}<extra></extra>",
        )
    )
    fig.update_layout(margin=dict(l=10, r=10, t=10, b=10), xaxis=dict(tickangle=-45))
    return figure_div(fig, height=max(420, 18 * len(piv.index) + margin))


def _verdict(row: Any) -> str:
    """A one-word verdict a laboratory director can act on."""
    if row.not_detected_fraction >= 0.01:
        return "failing"
    if row.not_detected > 0 or (row.genomes and row.at_risk / row.genomes >= 0.10):
        return "watch"
    return "ok"


def _pct(x: float) -> str:
    return "" if x != x else f"{100 * x:.1f}%"


def _summary(result: Any, tables: dict, summary: dict) -> str:
    checker = result.checker
    assay_summary = tables["assay_summary"]
    counts = summary["counts"]
    fully = int((assay_summary["detected_fraction"] >= 0.99999).sum())
    missing = int((assay_summary["not_detected"] > 0).sum())
    return (
        '<div class="kpis">'
        f'<div class="kpi"><b>{counts["genomes"]:,}</b>genomes ({counts["lineages"]:,} lineages)</div>'
        f'<div class="kpi"><b>{len(assay_summary)}</b>assays, {counts["oligos"]} oligos</div>'
        f'<div class="kpi"><b>{fully}</b>assays detect every genome</div>'
        f'<div class="kpi"><b>{missing}</b>assays miss some genomes</div>'
        f'<div class="kpi"><b>{len(tables["escape_mutations"])}</b>mutations under weakened oligos</div>'
        "</div>"
        '<p class="explain">For every genome, each oligo is aligned where it should bind (and the search finds every '
        f"other site with up to {checker.options.max_mismatches} differences); the site is called <b>binds</b>, "
        "<b>degraded</b>, <b>fails</b> or <b>no data</b> by the rule table named below, and the report gives the "
        "condition that decided. An assay is <b>detected</b> when all its required oligos bind in the right "
        "arrangement, <b>at risk</b> when one is degraded, <b>not detected</b> when one fails, and <b>no data</b> when "
        "a site lies in unknown bases.</p>"
    )


def _assays(tables: dict) -> str:
    """Assays at a glance, one table per panel (input file), the most-missing first."""
    assay_summary = tables["assay_summary"]
    view = assay_summary.sort_values(["not_detected_fraction", "at_risk", "assay"], ascending=[False, False, True])
    view = view.assign(
        verdict=[_verdict(r) for r in view.itertuples()],
        detected=view["detected_fraction"].map(_pct),
        not_detected_pct=view["not_detected_fraction"].map(_pct),
    )
    cols = ["verdict", "assay", "kind", "genomes", "detected", "at_risk", "no_data", "not_detected", "not_detected_pct"]
    inner = (
        '<p class="explain">Sorted by the share of genomes an assay would miss. Counts are genomes. '
        "<b>failing</b>: misses 1 % or more; <b>watch</b>: misses some, or 10 % or more are at risk; "
        "<b>ok</b>: otherwise.</p>"
    )
    for panel in dict.fromkeys(view["panel"]):
        sub = view[view["panel"] == panel][cols].rename(
            columns={"detected": "detected %", "not_detected_pct": "missed %"}
        )
        inner += f"<h3>{html_escape(panel)} ({len(sub)} assays)</h3>" + _scroll(
            table_html(sub, max_rows=40, classes={"verdict": lambda v: _VERDICT_CLASS[v]})
        )
    return inner


def _heatmaps(tables: dict) -> list[tuple[str, str]]:
    assay_summary, groups, oligo_groups = (
        tables["assay_summary"],
        tables["group_summary"],
        tables["oligo_lineage_groups"],
    )
    out = []
    bad_assays = list(assay_summary.loc[assay_summary["detected_fraction"] < 0.99999, "assay"])
    if bad_assays:
        out.append(
            (
                "Where assays lose genomes (lineage group x assay)",
                '<p class="explain">Per lineage group, for the assays that do not detect every genome: red where '
                "genomes are not detected (darker = a larger share), amber where genomes are at risk but none is "
                "lost, green where all are detected.</p>"
                + _status_heatmap(groups, "assay", bad_assays[:80], "detected", "at_risk", "not_detected", 160),
            )
        )
    weak = oligo_groups.groupby("oligo")["binds_fraction"].min()
    weak_oligos = [o for o in dict.fromkeys(oligo_groups["oligo"]) if weak[o] < 0.99999][:100]
    if weak_oligos:
        out.append(
            (
                "Which oligo loses binding (lineage group x oligo)",
                '<p class="explain">Red where the oligo fails in some genomes, amber where it is degraded but '
                "never fails, green where it binds in all; only oligos that weaken somewhere are shown.</p>"
                + _status_heatmap(oligo_groups, "oligo", weak_oligos, "binds", "degraded", "fails", 200),
            )
        )
    return out


def _over_time(tables: dict) -> str:
    monthly, assay_summary = tables["monthly_summary"], tables["assay_summary"]
    if not len(monthly):
        return (
            '<p class="explain">The genomes carry no collection dates (give --metadata with a date column to see '
            "this chart).</p>"
        )
    fig = go.Figure()
    bad = list(assay_summary.loc[assay_summary["detected_fraction"] < 0.99999, "assay"])
    for name in (bad or list(assay_summary["assay"][:10]))[:15]:
        sub = monthly[monthly["assay"] == name]
        fig.add_trace(
            go.Scatter(
                x=sub["month"],
                y=sub["detected_fraction"],
                mode="lines+markers",
                name=name,
                customdata=sub["genomes"],
                hovertemplate="%{x}: %{y:.1%} of %{customdata} genomes<extra>" + name + "</extra>",
            )
        )
    fig.update_layout(
        yaxis=dict(title="detected", tickformat=".0%", range=[0, 1.02]),
        xaxis=dict(title="collection month"),
        margin=dict(l=10, r=10, t=10, b=10),
    )
    return figure_div(fig, height=420)


def _design(tables: dict) -> str:
    design = tables["design_mismatches"]
    if not len(design):
        return "<p>Every oligo matches the reference exactly at its site.</p>"
    return (
        '<p class="explain">These oligos differ from the reference genome itself, by design (often a degenerate '
        "base chosen for related viruses). Such a mismatch is in nearly every genome, so it is reported here once "
        "rather than as a mutation; <i>genomes by design</i> counts the genomes where it alone degrades or fails "
        "the oligo.</p>" + _scroll(table_html(design, max_rows=60))
    )


def _mutations(tables: dict) -> str:
    escapes = tables["escape_mutations"]
    if not len(escapes):
        return "<p>No oligo is weakened by a mutation.</p>"
    cols = [
        "assay",
        "oligo",
        "mutation",
        "from_3p",
        "amino_acid",
        "genomes",
        "degraded",
        "fails",
        "lineage_groups",
        "first_seen",
    ]
    view = escapes.head(60)[[c for c in cols if c in escapes.columns]]
    return (
        '<p class="explain">Genome differences from the reference under an oligo that is degraded or fails (a '
        "run of adjacent substitutions counts as one event), ranked by how many genomes they affect, with the "
        "lineage groups that carry them ranked the same way. <i>from_3p</i> is the oligo position counted from "
        "its 3' end (1 = the 3'-terminal base), the most harmful place for a primer mismatch. All columns: "
        "<code>escape_mutations.tsv</code>.</p>" + _scroll(table_html(view, max_rows=60))
    )


def _escapes(result: Any, tables: dict) -> str:
    """Per assay, the lineage groups (then lineages) with genomes not detected, ranked by genomes."""
    missed = tables["lineage_summary"]
    missed = missed[missed["not_detected"] > 0]
    rows = []
    for assay, d in missed.groupby("assay", sort=True):
        by_group = d.groupby("lineage_group")["not_detected"].sum().sort_values(ascending=False, kind="stable")
        lineages = d.sort_values(["not_detected", "lineage"], ascending=[False, True])
        rows.append(
            {
                "assay": assay,
                "genomes not detected": int(d["not_detected"].sum()),
                "lineages": len(d),
                "lineage groups (genomes)": ", ".join(f"{g} ({n})" for g, n in by_group.head(8).items()),
                "lineages (genomes)": ", ".join(
                    f"{r.lineage} ({r.not_detected})" for r in lineages.head(12).itertuples()
                ),
            }
        )
    if not rows:
        return "<p>Every assay detects every genome it could be judged on.</p>"
    import pandas as pd

    frame = pd.DataFrame(rows).sort_values(["genomes not detected", "assay"], ascending=[False, True])
    return _scroll(table_html(frame, max_rows=80))


def _exclusivity(result: Any, summary: dict) -> str:
    ex, exs = result.exclusivity_assays, result.exclusivity_sites
    inner = (
        '<p class="explain">Off-target collections: ' + html_escape(", ".join(summary["inputs"]["off_targets"])) + ". "
    )
    if len(ex):
        inner += (
            "Assays that could amplify (<i>amplicon</i>) or also give a signal (<i>detected</i>) on these "
            "records:</p>" + _scroll(table_html(ex, max_rows=100))
        )
    else:
        inner += "No assay could amplify or detect any of these records.</p>"
    if len(exs):
        strong = exs[exs["call"].isin(["binds", "degraded"])]
        cols = ["record", "assay", "oligo", "call", "strand", "start", "mismatches", "mismatch_from_3p", "tm_drop_C"]
        inner += (
            f"<h3>Oligo sites in off-target records ({len(exs)} sites, {len(strong)} binding or degraded)</h3>"
            + _scroll(table_html(strong[cols], max_rows=60))
        )
    return inner + (
        '<p class="muted">What is not checked: only the collections listed above; no human genome or '
        "transcriptome and no animal sarbecoviruses are shipped with oligolab.</p>"
    )


def _methods(result: Any, summary: dict) -> str:
    checker = result.checker
    ref_missing = summary["oligos_without_reference_site"]
    return (
        "<ul>"
        f"<li>Search: all sites on both strands with up to {checker.options.max_mismatches} differences "
        f"(mismatches, unknown bases and gap nucleotides), of which up to {checker.options.max_gaps} gap nucleotides; "
        "IUPAC oligo bases match any of their bases; unknown genome bases never match.</li>"
        "<li>Expected site: the best site within 3,000 nt of the oligo's reference site; where the search found none, "
        "the best alignment at the expected place (any number of differences up to a third of the oligo), so the "
        "call does not depend on how far the search looked.</li>"
        f"<li>Call rules: <code>{html_escape(summary['parameters']['rules'])}</code>; thermodynamics: "
        f"{html_escape(summary['parameters']['conditions'])}.</li>"
        f"<li>Inputs: {html_escape(', '.join(summary['inputs']['genomes']))}; assays "
        f"{html_escape(', '.join(summary['inputs']['assays']))}.</li>"
        + (
            f"<li>Oligos without a site on the reference (called on their best site anywhere): "
            f"{html_escape(', '.join(ref_missing))}</li>"
            if ref_missing
            else ""
        )
        + "</ul><p class='explain'>Files beside this report: <code>oligo_calls/</code> and <code>assay_calls/</code> "
        "(Parquet datasets: every genome x oligo and genome x assay, readable by DuckDB, Polars or pandas), "
        "<code>oligo_calls.tsv</code> and <code>assay_calls.tsv</code> (the rows that are not binds / detected), "
        "<code>group_summary.tsv</code>, <code>lineage_summary.tsv</code>, <code>monthly_summary.tsv</code>, "
        "<code>escape_mutations.tsv</code>, <code>design_mismatches.tsv</code>, <code>exclusivity_*.tsv</code>, "
        "<code>summary.json</code>.</p>"
    )


def changes_section(result: Any) -> str:
    """What changed since ``--previous``: per assay, new escapes and new mutations, then every change."""
    changes = result.tables["changes"]
    watch = result.watch
    if not len(changes):
        return (
            f"<p>Nothing new since the previous check ({watch['previous_genomes']:,} genomes): no new genome, "
            "lineage or mutation escapes or degrades any assay.</p>"
        )
    import pandas as pd

    rows = [
        {
            "assay": a,
            "not detected (before)": f"{w['not_detected']:,} ({w['previous_not_detected']:,})",
            "at risk (before)": f"{w['at_risk']:,} ({w['previous_at_risk']:,})",
            "new genomes not detected": w["new_genome_not_detected"],
            "new genomes at risk": w["new_genome_at_risk"],
            "lineages newly escaping": ", ".join(w["new_lineages"]),
            "new escape mutations": w["new_escape_mutation"],
        }
        for a, w in watch["assays"].items()
        if any(v for k, v in w.items() if k.startswith("new"))
    ]
    summary = pd.DataFrame(rows)
    cols = ["assay", "change", "lineage", "genome", "date", "call", "genomes", "detail"]
    return (
        f'<p class="explain">Compared with the previous check ({watch["previous_genomes"]:,} genomes). '
        "Assays with something new, then every change (all in <code>changes.tsv</code>; per assay in "
        "<code>assay_watch.json</code>).</p>"
        + _scroll(table_html(summary, max_rows=60))
        + _scroll(table_html(changes[cols], max_rows=100))
    )


def render(result: Any, tables: dict, summary: dict, extra: list[tuple[str, str]] | None = None) -> str:
    """The report page; ``extra`` sections (such as the changes since a previous run) follow the summary."""
    from .. import __version__

    sections = [
        ("Summary", _summary(result, tables, summary)),
        *(extra or []),
        ("Assays at a glance", _assays(tables)),
        *_heatmaps(tables),
        ("Detected fraction over time", _over_time(tables)),
        ("Design mismatches: where an oligo differs from the reference itself", _design(tables)),
        ("Mutations behind weakened oligos", _mutations(tables)),
        ("Variants that escape detection", _escapes(result, tables)),
    ]
    if result.inputs.off_targets:
        sections.append(("Exclusivity: what else would the assays detect?", _exclusivity(result, summary)))
    sections.append(("How this was computed", _methods(result, summary)))
    return html_page(
        "oligolab check: assay inclusivity and exclusivity",
        f"{summary['counts']['genomes']:,} genomes x {len(tables['assay_summary'])} assays",
        sections,
        footer=f"oligolab {__version__}",
    )
