"""The HTML report of `oligolab design`, written for an assay developer deciding what to order."""

from __future__ import annotations

import math
import re
from pathlib import Path

import plotly.graph_objects as go

from ..reports import figure_div, html_escape, html_page, table_html

_ROLE_COLOUR = {
    "forward": "#1f77b4",
    "reverse": "#1f77b4",
    "F3": "#1f77b4",
    "B3": "#1f77b4",
    "FIP": "#2ca02c",
    "BIP": "#2ca02c",
    "LF": "#9467bd",
    "LB": "#9467bd",
    "crRNA": "#d62728",
}


def _table(frame, **kw) -> str:
    """A table in a horizontally scrolling box, so wide tables are never cut at the page's 1,400 px."""
    return '<div style="overflow-x:auto;max-width:100%">' + table_html(frame, **kw) + "</div>"


def _pct(x: float) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}%"


def _cls_fraction(v) -> str:
    if isinstance(v, (int, float)) and not (isinstance(v, float) and math.isnan(v)):
        return "ok" if v >= 0.99999 else ("warn" if v >= 0.95 else "bad")
    return ""


def _amplicon_figure(a) -> str:
    """Oligo sites along the amplicon (reference coordinates)."""
    fig = go.Figure()
    y = 0
    for o in a.oligos:
        sites = [(o.start, o.end, o.strand)]
        if o.part_sites:
            sites = [(s, e, 1 - o.strand if k == 0 else o.strand) for k, (s, e) in enumerate(o.part_sites)]
        labels = [o.role] if not o.part_sites else (["F1c", "F2"] if o.role == "FIP" else ["B1c", "B2"])
        for (s, e, strand), label in zip(sites, labels):
            fig.add_trace(
                go.Scatter(
                    x=[s + 1, e],
                    y=[y, y],
                    mode="lines",
                    line=dict(width=10, color=_ROLE_COLOUR.get(o.role, "#7f7f7f")),
                    name=o.name,
                    showlegend=False,
                    hovertemplate=f"{html_escape(o.name)} ({o.role}) {s + 1}-{e} {'+-'[strand]}<extra></extra>",
                )
            )
            fig.add_annotation(
                x=(s + 1 + e) / 2,
                y=y,
                text=f"{label} {'→' if strand == 0 else '←'}",
                showarrow=False,
                yshift=12,
                font=dict(size=11),
            )
        y -= 1
    fig.update_layout(
        height=70 + 30 * len(a.oligos),
        margin=dict(l=10, r=10, t=10, b=30),
        yaxis=dict(showticklabels=False, zeroline=False),
        xaxis=dict(title="reference position (nt)"),
        plot_bgcolor="#fff",
    )
    return figure_div(fig)


def natural_key(text: str) -> tuple:
    """Sort key that orders embedded numbers by value (RPA-2 before RPA-10)."""
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(text)))


def _heatmap(groups) -> str:
    if not len(groups):
        return ""
    piv = groups.pivot(index="assay", columns="lineage_group", values="detected_fraction")
    piv = piv.reindex(sorted(piv.index, key=natural_key, reverse=True))  # rank 1 at the top
    piv = piv[sorted(piv.columns, key=natural_key)]
    fig = go.Figure(
        go.Heatmap(
            z=piv.values,
            x=list(piv.columns),
            y=list(piv.index),
            zmin=0,
            zmax=1,
            colorscale=[[0, "#cf222e"], [0.9, "#f2cc60"], [1, "#1a7f37"]],
            colorbar=dict(title="detected"),
        )
    )
    fig.update_layout(height=140 + 30 * len(piv.index), margin=dict(l=10, r=10, t=10, b=120))
    return figure_div(fig)


def _overview(result, ds) -> str:
    col, e, o = result.collection, result.enzyme, result.options
    kpis = (
        '<div class="kpis">'
        f'<div class="kpi"><b>{col.n:,}</b>target genomes ({len(set(col.lineages)):,} lineages)</div>'
        f'<div class="kpi"><b>{len(result.assays)}</b>assays ({e.name} + {o.amplification.upper()})</div>'
        f'<div class="kpi"><b>{int((ds["detected_fraction"] >= 0.99999).sum()) if len(ds) else 0}</b>'
        "detect every genome</div>"
        f'<div class="kpi"><b>{len(result.candidates):,}</b>candidate guides scored</div>'
        "</div>"
    )
    intro = (
        f'<p class="explain">Each assay below is a set of {e.name} guide(s) and the {o.amplification.upper()} '
        "primers that amplify their target. <b>Detected</b> means every required oligo binds a genome and the "
        "amplicon forms, exactly as <code>oligolab check</code> calls it (the numbers come from a check run over "
        "all target genomes); <b>at risk</b> means an oligo is degraded (a mismatch) or a loop primer fails. "
        "The assays are ranked by the expected share of genomes detected, those given (the check's calls) and "
        "unseen ones (the assay's <b>survival</b>, see 'Robustness to unseen variation'), then by robustness, "
        "loop primers and predicted activity.</p>"
    )
    if len(ds) and ds["lineages"].isna().all():
        intro += (
            '<p class="explain">No lineage information: the genomes carry no metadata and their ids are not '
            "Pango lineage names, so lineage counts are left empty (give --metadata with a lineage column).</p>"
        )
    return kpis + intro + "".join(f'<p class="warn">{html_escape(n)}</p>' for n in result.notes)


def _assay_sections(result, tabs: dict) -> list[tuple[str, str]]:
    out = []
    for a in result.assays:
        olig = tabs["oligos"][tabs["oligos"]["assay"] == a.name].drop(columns=["assay", "notes"])
        gd = tabs["guides"][tabs["guides"]["assay"] == a.name]
        gcols = [
            "oligo",
            "spacer",
            "crRNA",
            "site",
            "motif",
            "design_genomes_bound",
            "survival",
            "crRNA_mfe_kcal",
            "repeat_intact",
            "spacer_paired_nt",
            "activity",
            "activity_kind",
        ]
        worst = tabs["lineage_coverage"]
        worst = worst[(worst["assay"] == a.name) & (worst["detected_fraction"] < 1)]
        miss = ""
        if len(worst):
            miss = "<h3>Lineages not fully detected</h3>" + _table(
                worst[["lineage", "lineage_group", "genomes", "detected", "at_risk", "not_detected", "no_data"]],
                max_rows=40,
            )
        out.append(
            (
                f"{a.name}: amplicon {a.amplicon[0] + 1}-{a.amplicon[1]} ({a.amplicon[1] - a.amplicon[0]} nt)",
                _amplicon_figure(a)
                + "<h3>Oligos</h3>"
                + _table(olig, formats={"gc_fraction": ".2f"})
                + "<h3>Guides</h3>"
                + _table(gd[gcols] if len(gd) else gd)
                + miss,
            )
        )
    return out


def _robustness(result, tabs: dict) -> str:
    """How each design is expected to tolerate variation the input does not contain."""
    cons = result.conservation
    ds = tabs["design_summary"]
    rates = cons.summary()["rate_by_genomes_differing"] if cons is not None else {}
    rel = (
        f"{cons.n_related} related genomes were given: the rate where they differ from the design consensus is "
        f"{cons.novel_related_variable:.2g} against {cons.novel_related_conserved:.2g} where they agree (learnt "
        "the same way)."
        if cons is not None and cons.n_related
        else "No related genomes were given (--related): sites that vary among near neighbours are not known."
    )
    text = (
        '<p class="explain">The <b>survival</b> of an oligo is the estimated probability that a genome the input '
        "does not contain (the next variant, a new strain of the family) still leaves it called 'binds' by the "
        "check's rules; an assay's survival needs every primer role (any of its primers) and at least one guide. "
        "Per reference column the rate at which a new genome differs is learnt from the input itself, leaving its "
        "most novel genomes out one at a time: columns where more input genomes already differ are more likely "
        "to differ again. Rates by genomes differing at the column: "
        + ", ".join(f"{k}: {v:.3g}" for k, v in rates.items())
        + ". "
        + html_escape(rel)
        + " Where one guide or primer is fragile a second one on an independent site is added (guides up to "
        f"--max-guides = {result.options.max_guides}); degenerate bases cover the variants the input carries. "
        "The estimate assumes independent sites and new genomes as novel as the input's most novel tenth; it "
        "cannot foresee a mutation at a column that never varied beyond that rate.</p>"
    )
    cols = [
        c
        for c in (
            "rank",
            "assay",
            "survival",
            "guide_survival",
            "primer_survival",
            "weakest_oligo",
            "guides",
            "redundant_primers",
            "degenerate_positions",
            "variable_columns_under_oligos",
        )
        if c in ds
    ]
    return text + (
        _table(ds[cols], formats={"survival": ".3f", "guide_survival": ".3f", "primer_survival": ".3f"})
        if len(ds)
        else ""
    )


def _specificity(result, tabs: dict) -> str:
    o = result.options
    offs = [Path(p).name for p in result.inputs.off_targets]
    spec_txt = (
        '<p class="explain">Off-target collections screened with the check engine (up to '
        f"{o.max_mismatches} differences, {o.max_gaps} of them gap nucleotides) and the check rules: "
        + (", ".join(html_escape(x) for x in offs) if offs else "<b>none given</b>")
        + ". A guide is rejected "
        "when any off-target site is called binds or degraded; an assay when its primers could form an "
        "amplicon there. <b>Human background is not screened unless a human genome or transcriptome is "
        "passed with --off-target</b> (none is shipped with oligolab).</p>"
    )
    sites = tabs["offtarget_sites"]
    if sites is not None and len(sites):
        spec_txt += "<h3>Off-target sites of the chosen assays (any call)</h3>" + _table(
            sites[
                [
                    c
                    for c in ("collection", "record", "assay", "oligo", "role", "call", "start", "end", "mismatches")
                    if c in sites.columns
                ]
            ],
            max_rows=60,
        )
    if result.rejected:
        rows = "".join(
            f"<li>{html_escape(a.name)}: "
            + html_escape("; ".join(a.scores["specificity"]["guide_sites"] + a.scores["specificity"]["amplicons"]))
            + "</li>"
            for a in result.rejected
        )
        spec_txt += f"<h3>Shortlisted assays rejected for off-target sites</h3><ul>{rows}</ul>"
    return spec_txt


def _activity(result) -> str:
    e = result.enzyme
    kind = result.assays[0].scores.get("activity_kind") if result.assays else "unavailable"
    if kind == "heuristic":
        return (
            '<p class="explain"><b>Heuristic, not measured.</b> No LwaCas13a activity data ships with oligolab, '
            "so the activity column is a documented heuristic in [0, 1]: 0.5 if the direct repeat keeps its own "
            "stem-loop inside the folded crRNA (ViennaRNA, 37 °C) plus 0.5 x the fraction of unpaired spacer "
            "bases, following the crRNA-folding rules of the Lareau lab's Cas13a guide-design pipeline; a G "
            "protospacer flanking site is already excluded by the check rules. Treat it as a tie-breaker.</p>"
        )
    if e.activity_model != "cas12a_activity_v1":
        return (
            f'<p class="explain">No activity model or heuristic is shipped for {html_escape(e.name)} '
            f"({html_escape(e.family)}): guides are ranked on coverage and conservation only.</p>"
        )
    figure = ""
    try:
        from ..models.cas12a import MODEL_INFO

        ho, anchor = MODEL_INFO["held_out"], MODEL_INFO["anchor"]
        figure = (
            f" Held-out figure of the shipped model ({MODEL_INFO['name']}): Spearman {ho['spearman']:.3f} "
            f"on {ho['n']:,} guides of the Kim 2018 test file, beside the published {anchor['model']} "
            f"{anchor['spearman']} on {anchor['test_set']} (docs/models.md)."
        )
    except (ImportError, KeyError, OSError, ValueError):
        pass
    return (
        '<p class="explain">Cas12a activity is the project\'s activity model (trained on Kim et al. 2018 '
        "AsCas12a HT 1-1 only; predicted indel frequency, %, a proxy for crRNA quality: LbCas12a and "
        "trans-cleavage are not what it was trained on) on each guide's 34-nt context from the collection "
        "consensus."
        + figure
        + " "
        + (
            "It was used to break ties in the ranking."
            if kind == "model"
            else "<b>The model is not installed in this build, so activity was not used.</b>"
        )
        + "</p>"
    )


def render(result, tabs: dict, summary: dict) -> str:
    """The whole report: overview, assays, coverage, each assay, robustness, specificity, activity, order."""
    col, e, o = result.collection, result.enzyme, result.options
    ds = tabs["design_summary"]
    show = (
        ds[
            [
                "rank",
                "assay",
                "genes",
                "amplicon",
                "amplicon_nt",
                "guides",
                "primers",
                "detected",
                "at_risk",
                "not_detected",
                "no_data",
                "detected_fraction",
                "lineages_detected",
                "lineages",
                "survival",
                "specific",
                "activity",
                "activity_kind",
                "loop_primers",
                "notes",
            ]
        ]
        if len(ds)
        else ds
    )
    sections = [
        ("", _overview(result, ds)),
        (
            "Assays to order",
            _table(
                show,
                classes={"detected_fraction": _cls_fraction},
                formats={"detected_fraction": ".4f", "activity": ".3f", "survival": ".3f"},
            )
            + '<p class="muted">Files: assays.tsv (for <code>oligolab check --assays</code>), '
            "order_sheet.tsv/.csv, oligos.tsv, guides.tsv, lineage_coverage.tsv, genome_calls.tsv.</p>",
        ),
        (
            "Coverage by lineage group",
            '<p class="explain">Fraction of genomes detected in each lineage '
            "group (groups follow the Pango alias key).</p>" + _heatmap(tabs["group_coverage"]),
        ),
    ]
    sections += _assay_sections(result, tabs)
    sections += [
        ("Robustness to unseen variation", _robustness(result, tabs)),
        ("Specificity", _specificity(result, tabs)),
        ("Activity", _activity(result)),
        ("Order sheet", _table(tabs["order_sheet"], max_rows=400)),
        ("Method and limitations", _method(result)),
    ]
    subtitle = (
        f"{e.name} + {o.amplification.upper()} on {col.n:,} genomes; reference {col.reference.name}; "
        f"region {result.region[0] + 1}-{result.region[1]}"
    )
    return html_page(
        "oligolab design", subtitle, sections, footer="oligolab design; the same inputs give the same assays and tables"
    )


def _method(result) -> str:
    return (
        '<ul class="explain">'
        "<li>Genomes are projected onto the reference by anchored alignment (unique 16-mers; indels aligned "
        "between anchors). Every distinct spacer with a valid PAM/PFS is scored against every genome variant "
        "at its site with the check's rule table.</li>"
        "<li>Guide sets: greedy set cover within windows that fit one amplicon, each guide weighted by its "
        "survival, then redundant guides on independent sites where one is fragile (at most "
        f"{result.options.max_guides} guides); guides with an off-target site are removed.</li>"
        "<li>Primers: composition and thermodynamic limits from knowledge/amplification.toml (primer3-py), "
        "degenerate (IUPAC) bases where at least 1 % of the genomes carry another base (within the chemistry's "
        "degeneracy limit), a second primer on an independent site where one is fragile; coverage by the check's "
        "primer rules (3'-end mismatches, Tm drop on the actual target).</li>"
        "<li>Final coverage, lineage tables and specificity come from the check machinery itself; running "
        "<code>oligolab check</code> on assays.tsv gives the same calls.</li>"
        "<li>Limitations: calls are in-silico predictions from rules that a laboratory should confirm; "
        "RT efficiency, target RNA structure in the sample and reaction kinetics are not modelled; genomes "
        "below roughly 80 % identity to the reference lose anchors (those stretches count as no data).</li>"
        "</ul>"
    )


def render_rescue(result, tabs: dict) -> str:
    """The report of `oligolab design --rescue`: what escaped, what changed, and the check's counts."""
    summary = tabs["rescue_summary"]
    intro = (
        '<p class="explain">Each assay was called by <code>oligolab check</code> on every genome; the oligos '
        "that variants escape were redesigned (moved, made degenerate, or joined by a variant oligo) with the "
        "rest of the assay kept, and the rescued assay was called by the check again. The rescued assays are "
        "in assays.tsv (feed it to <code>oligolab check --assays</code>); new_oligos.tsv lists what to order. "
        "A probe keeps the dye and quencher of the original.</p>"
    )
    sections = [
        ("", intro + "".join(f'<p class="warn">{html_escape(n)}</p>' for n in result.notes)),
        ("Assays before and after rescue", _table(summary)),
        ("New oligos", _table(tabs["new_oligos"])),
        ("Rescued assays", _table(tabs["assays"])),
    ]
    return html_page(
        "oligolab design --rescue",
        f"{len(result.assays)} assays on {result.collection.n:,} genomes",
        sections,
        footer="oligolab design --rescue",
    )
