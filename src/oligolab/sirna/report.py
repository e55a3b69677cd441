"""HTML report and order sheet of `oligolab sirna`: the files of a result, built in memory (``cli.py`` writes
them)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ..reports import figure_div, html_escape, html_page, table_html
from .design import SirnaResult


def order_sheet(result: SirnaResult, top: int) -> pd.DataFrame:
    """Strands of the top candidates ready to order: unmodified bases and the modified notation."""
    rows = []
    for r in result.table.head(top).itertuples():
        name = f"{result.target.gene or result.target.id}-{r.position}"
        for strand, seq, mod in (("sense (passenger)", r.passenger, r.passenger_modified),
                                 ("antisense (guide)", r.guide, r.guide_modified)):
            rows.append({"name": f"{name}-{'S' if strand.startswith('sense') else 'AS'}", "candidate_rank": r.rank,
                         "target_position": r.position, "strand": strand, "length_nt": len(seq),
                         "sequence_5to3": seq, "modified_5to3": mod})
    return pd.DataFrame(rows)


def summary_section(result: SirnaResult) -> str:
    """Key figures and what the score means."""
    t, info = result.table, result.info
    target = info["target"]
    passing = int((~t["hard_fail"]).sum())
    return (
        '<div class="kpis">'
        f'<div class="kpi"><b>{len(t):,}</b>candidate sites on {html_escape(target["id"])} '
        f'({target["length"]:,} nt)</div>'
        f'<div class="kpi"><b>{passing:,}</b>without a near-perfect off-target</div>'
        f'<div class="kpi"><b>{t["predicted_efficacy"].max():.2f}</b>best predicted knock-down (0-1)</div>'
        f'<div class="kpi"><b>{info["offtarget"]["transcripts_examined"]:,}</b>off-target transcripts searched</div>'
        "</div>"
        '<p class="explain">Each candidate is a 19-bp siRNA core against one site of the transcript. '
        "<b>Predicted efficacy</b> comes from a model trained on measured knock-down (siRBench); the <b>score</b> "
        "subtracts penalties for seed matches in off-target 3' UTRs, 2-mismatch off-targets, immune motifs, GC "
        "outside 30-52 %, base runs, SNPs and missed transcript variants. Candidates whose guide or passenger "
        "strand matches another transcript with 0-1 mismatches are ranked last.</p>"
    )


def top_section(result: SirnaResult, top: int) -> str:
    """The top candidates' table."""
    t = result.table
    top_cols = ["rank", "position", "region", "guide", "passenger", "predicted_efficacy", "score", "gc_percent",
                "guide_seed_utr3_matches", "flags"]
    top_cols += [c for c in t.columns if c.startswith("mm_")]
    return table_html(t[top_cols].head(top), max_rows=top,
                      formats={"predicted_efficacy": ".3f", "score": ".3f", "gc_percent": ".0f"})


def position_map(result: SirnaResult, top: int) -> str:
    """Score of every candidate along the transcript, the top ones circled, reference siRNAs marked."""
    t = result.table
    target = result.info["target"]
    fig = go.Figure()
    ok = ~t["hard_fail"]
    fig.add_trace(go.Scatter(x=t.loc[ok, "position"], y=t.loc[ok, "score"], mode="markers", name="candidate",
                             marker=dict(size=5, color=t.loc[ok, "predicted_efficacy"], colorscale="Viridis",
                                         colorbar=dict(title="efficacy")),
                             customdata=np.stack([t.loc[ok, "guide"], t.loc[ok, "flags"]], axis=1),
                             hovertemplate="site %{x}<br>score %{y:.3f}<br>guide %{customdata[0]}<br>"
                                           "%{customdata[1]}<extra></extra>"))
    if (~ok).any():
        fig.add_trace(go.Scatter(x=t.loc[~ok, "position"], y=t.loc[~ok, "score"], mode="markers",
                                 name="near-perfect off-target", marker=dict(size=5, color="#cf222e", symbol="x")))
    topk = t.head(top)
    fig.add_trace(go.Scatter(x=topk["position"], y=topk["score"], mode="markers", name=f"top {top}",
                             marker=dict(size=10, color="rgba(0,0,0,0)", line=dict(color="#000", width=1.5))))
    for k in result.info.get("known", []):
        fig.add_vline(x=k["position"], line=dict(color="#9a6700", dash="dot"),
                      annotation_text=f'{k["name"]} (rank {k["rank"]})', annotation_position="top")
    if target.get("cds"):
        fig.add_vrect(x0=target["cds"][0], x1=target["cds"][1], fillcolor="#dde2ea", opacity=0.35, line_width=0,
                      annotation_text="CDS", annotation_position="bottom left")
    fig.update_layout(xaxis=dict(title="site position on the transcript (nt)"), yaxis=dict(title="score"),
                      margin=dict(l=10, r=10, t=30, b=10))
    return figure_div(fig, height=430)


def distributions(result: SirnaResult, top: int) -> str:
    """Predicted knock-down of all candidates and of the top ones."""
    t = result.table
    fig = go.Figure()
    fig.add_trace(go.Histogram(x=t["predicted_efficacy"], name="all candidates", opacity=0.6, nbinsx=40))
    fig.add_trace(go.Histogram(x=t.head(top)["predicted_efficacy"], name=f"top {top}", opacity=0.8, nbinsx=40))
    fig.update_layout(barmode="overlay", xaxis=dict(title="predicted knock-down (0-1)"),
                      margin=dict(l=10, r=10, t=10, b=10))
    return figure_div(fig, height=320)


def offtarget_section(result: SirnaResult, top: int) -> str:
    """Near-perfect off-target matches of the top candidates."""
    t, info, h = result.table, result.info, result.offtarget_hits
    if len(h):
        sub = h[h["site_position"].isin(t.head(top)["position"])]
        inner = (f'<p class="explain">{len(h):,} near-perfect matches (&le; {info["offtarget"]["max_mismatches"]} '
                 f"mismatches) in {info['offtarget']['transcripts_examined']:,} off-target transcripts; those of "
                 f"the top {top}:</p>" + table_html(sub.drop(columns=["candidate"]), max_rows=100))
    else:
        inner = (f'<p class="explain">No near-perfect match in {info["offtarget"]["transcripts_examined"]:,} '
                 "off-target transcripts.</p>")
    if info["offtarget"].get("utr_note"):
        inner += f'<p class="muted">{html_escape(info["offtarget"]["utr_note"])}</p>'
    return inner


def methods_section(result: SirnaResult) -> str:
    """Inputs, model, pattern and notation."""
    info = result.info
    target = info["target"]
    model = info.get("model", {})
    return (
        "<ul>"
        f"<li>Target {html_escape(target['id'])} ({html_escape(target['description'])}); CDS "
        f"{target['cds']} from {html_escape(target['cds_source'] or 'none')}; transcript variants of the gene: "
        f"{html_escape(', '.join(target['transcript_variants']) or 'none given')}.</li>"
        f"<li>Efficacy model: {html_escape(str(model.get('model', model.get('name', 'siRNA efficacy model'))))}; "
        f"held-out Pearson {model.get('test_pearson', model.get('heldout', {}).get('pearson', 'see docs/models.md'))} "
        "on siRBench test.</li>"
        f"<li>Modification pattern <code>{html_escape(info['pattern'])}</code>: "
        f"{html_escape(info['pattern_description'])} ({html_escape(info['pattern_source'])}).</li>"
        f"<li>Off-target set: {html_escape(', '.join(info['offtarget']['files']) or 'none given')}; orthologs: "
        f"{html_escape(', '.join(info['orthologs']) or 'none given')}; variants: "
        f"{html_escape(info['variants'] or 'none given')}.</li></ul>"
        "<p class='explain'>Notation: lower case = 2'-O-methyl, upper case + f = 2'-fluoro, upper case = "
        "unmodified, dT = deoxythymidine, s = phosphorothioate, -GalNAc3 = triantennary GalNAc.</p>"
    )


def render(result: SirnaResult, top: int) -> str:
    """The HTML report."""
    from .. import __version__

    target = result.info["target"]
    known = result.info.get("known", [])
    sections = [("Summary", summary_section(result)), (f"Top {top} candidates", top_section(result, top)),
                ("Candidates along the transcript", position_map(result, top)),
                ("Score distributions", distributions(result, top))]
    if known:
        sections.append(("Where the reference siRNAs rank", '<p class="explain">Sites of the reference siRNAs '
                         "(for TTR: the approved drugs) located among the candidates, as a sanity check of the "
                         "ranking.</p>" + table_html(pd.DataFrame(known))))
    sections.append(("Off-target summary", offtarget_section(result, top)))
    sections.append(("How this was computed", methods_section(result)))
    return html_page(f"oligolab sirna: {target['gene'] or target['id']}",
                     f"{len(result.table):,} candidates ranked for {target['id']}", sections,
                     footer=f"oligolab {__version__}")


def output_files(result: SirnaResult, top: int) -> dict[str, Any]:
    """The result folder's files by name: tables (DataFrames), the summary (a dict, written as JSON) and the
    report (HTML text)."""
    return {
        "candidates.csv": result.table, "candidates.parquet": result.table,
        "top.csv": result.table.head(top), "order_sheet.csv": order_sheet(result, top),
        "offtarget_hits.tsv": result.offtarget_hits,
        "summary.json": {**result.info, "top": result.table.head(top).to_dict(orient="records")},
        "report.html": render(result, top),
    }
