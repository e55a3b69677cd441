"""HTML report and order sheet of `oligolab sirna`: the files of a result, built in memory (``cli.py`` writes
them)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..reports import html_escape, html_page, plotly_div, table_html
from .design import SirnaResult


def order_sheet(result: SirnaResult, top: int) -> pd.DataFrame:
    """Strands of the top candidates ready to order: unmodified bases and the modified notation."""
    rows = []
    for r in result.table.head(top).itertuples():
        name = r.name
        for strand, seq, mod in (
            ("sense (passenger)", r.passenger, r.passenger_modified),
            ("antisense (guide)", r.guide, r.guide_modified),
        ):
            if not seq:
                continue
            rows.append(
                {
                    "name": f"{name}-{'S' if strand.startswith('sense') else 'AS'}",
                    "candidate_rank": r.rank,
                    "target_position": r.position,
                    "strand": strand,
                    "length_nt": len(seq),
                    "sequence_5to3": seq,
                    "modified_5to3": mod,
                }
            )
    return pd.DataFrame(rows)


def summary_section(result: SirnaResult) -> str:
    """Key figures and what the score means."""
    t, info = result.table, result.info
    target, off = info["target"], info["offtarget"]
    passing = int((~t["hard_fail"]).sum())
    given = "duplexes_file" in info
    return (
        '<div class="kpis">'
        f'<div class="kpi"><b>{len(t):,}</b>{"given duplexes" if given else "candidate sites"} on '
        f"{html_escape(target['id'])} ({target['length']:,} nt)</div>"
        f'<div class="kpi"><b>{passing:,}</b>without a near-perfect off-target</div>'
        f'<div class="kpi"><b>{t["predicted_efficacy"].max():.2f}</b>best predicted knock-down (0-1)</div>'
        f'<div class="kpi"><b>{off["transcripts_examined"]:,}</b>off-target transcripts searched '
        f"({off.get('genes', 0):,} genes)</div>"
        "</div>"
        f'<p class="explain">Each {"duplex" if given else "candidate"} is a 19-bp siRNA core against one site of the '
        "transcript. <b>Predicted efficacy</b> comes from a model trained on measured knock-down (siRBench); the "
        "<b>score</b> subtracts penalties for the guide seed's predicted repression of off-target genes through "
        "their 3' UTRs (8mer/7mer/6mer sites, relative to a typical seed), 2-mismatch off-targets, immune motifs, "
        "GC outside 30-52 %, base runs, SNPs, miRNA-like seeds and missed transcript variants. Candidates whose "
        "guide or passenger strand matches another gene's transcript with 0-1 mismatches are ranked last.</p>"
        f'<p class="explain"><b>What the prediction covers.</b> {html_escape(info.get("prediction_scope", ""))}</p>'
    )


def top_section(result: SirnaResult, top: int) -> str:
    """The top candidates' table."""
    t = result.table
    top_cols = [
        "rank",
        "name",
        "position",
        "region",
        "guide",
        "passenger",
        "target_pairing",
        "predicted_efficacy",
        "score",
        "gc_percent",
        "guide_seed_relative",
        "guide_seed_genes",
        "flags",
    ]
    top_cols += [c for c in t.columns if c.startswith("mm_") or c == "conserved_in"]
    return table_html(
        t[top_cols].head(top), max_rows=top, formats={"predicted_efficacy": ".3f", "score": ".3f", "gc_percent": ".0f"}
    )


def position_map(result: SirnaResult, top: int) -> str:
    """Score of every candidate along the transcript, the top ones circled, reference siRNAs marked."""
    t = result.table
    target = result.info["target"]
    ok = ~t["hard_fail"].to_numpy()
    data = [
        {
            "type": "scatter",
            "mode": "markers",
            "name": "candidate",
            "x": t["position"][ok].tolist(),
            "y": t["score"][ok].tolist(),
            "customdata": np.stack([t["guide"][ok], t["flags"][ok]], axis=1).tolist(),
            "marker": {
                "size": 5,
                "color": t["predicted_efficacy"][ok].tolist(),
                "colorscale": "Viridis",
                "colorbar": {"title": {"text": "efficacy"}},
            },
            "hovertemplate": "site %{x}<br>score %{y:.3f}<br>guide %{customdata[0]}<br>%{customdata[1]}<extra></extra>",
        }
    ]
    if (~ok).any():
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": "near-perfect off-target",
                "x": t["position"][~ok].tolist(),
                "y": t["score"][~ok].tolist(),
                "marker": {"size": 5, "color": "#cf222e", "symbol": "x"},
            }
        )
    topk = t.head(top)
    data.append(
        {
            "type": "scatter",
            "mode": "markers",
            "name": f"top {top}",
            "x": topk["position"].tolist(),
            "y": topk["score"].tolist(),
            "marker": {"size": 10, "color": "rgba(0,0,0,0)", "line": {"color": "#000", "width": 1.5}},
        }
    )
    shapes, notes = [], []
    for k in result.info.get("known", []):
        shapes.append(
            {
                "type": "line",
                "x0": k["position"],
                "x1": k["position"],
                "yref": "paper",
                "y0": 0,
                "y1": 1,
                "line": {"color": "#9a6700", "dash": "dot"},
            }
        )
        notes.append(
            {
                "x": k["position"],
                "yref": "paper",
                "y": 1.0,
                "text": f"{k['name']} (rank {k['rank']})",
                "showarrow": False,
                "yanchor": "bottom",
            }
        )
    if target.get("cds"):
        shapes.append(
            {
                "type": "rect",
                "x0": target["cds"][0],
                "x1": target["cds"][1],
                "yref": "paper",
                "y0": 0,
                "y1": 1,
                "fillcolor": "#dde2ea",
                "opacity": 0.35,
                "line": {"width": 0},
                "layer": "below",
            }
        )
        notes.append(
            {
                "x": target["cds"][0],
                "yref": "paper",
                "y": 0,
                "text": "CDS",
                "showarrow": False,
                "xanchor": "left",
                "yanchor": "bottom",
            }
        )
    layout = {
        "xaxis": {"title": {"text": "site position on the transcript (nt)"}},
        "yaxis": {"title": {"text": "score"}},
        "margin": {"l": 10, "r": 10, "t": 30, "b": 10},
        "shapes": shapes,
        "annotations": notes,
    }
    return plotly_div(data, layout, height=430)


def distributions(result: SirnaResult, top: int) -> str:
    """Predicted knock-down of all candidates and of the top ones."""
    t = result.table
    data = [
        {
            "type": "histogram",
            "x": t["predicted_efficacy"].tolist(),
            "name": "all candidates",
            "opacity": 0.6,
            "nbinsx": 40,
        },
        {
            "type": "histogram",
            "x": t.head(top)["predicted_efficacy"].tolist(),
            "name": f"top {top}",
            "opacity": 0.8,
            "nbinsx": 40,
        },
    ]
    layout = {
        "barmode": "overlay",
        "xaxis": {"title": {"text": "predicted knock-down (0-1)"}},
        "margin": {"l": 10, "r": 10, "t": 10, "b": 10},
    }
    return plotly_div(data, layout, height=320)


def offtarget_section(result: SirnaResult, top: int) -> str:
    """Per top candidate: its near-perfect matches and the off-target genes its seed represses most."""
    t, info, h, seeds = result.table, result.info, result.offtarget_hits, result.seed_offtargets
    off = info["offtarget"]
    head = t.head(top)
    inner = (
        f'<p class="explain">Near-perfect matches (&le; {off["max_mismatches"]} mismatches, both strands) '
        f"in {off['transcripts_examined']:,} off-target transcripts: {len(h):,} in all. Seed matches: the "
        "genes whose 3' UTR sites of the guide seed (nt 2-8) predict the most repression (site-type weights "
        f"{html_escape(off.get('seed_model', {}).get('log2_fold_change', ''))}, log2 fold change).</p>"
    )
    rows = []
    near_by = {p: g for p, g in h.groupby("site_position")} if len(h) else {}
    seeds_by = {p: g for p, g in seeds.groupby("position")} if len(seeds) else {}
    for rank, name, pos, rel in zip(head["rank"], head["name"], head["position"], head["guide_seed_relative"]):
        near = near_by.get(pos)
        near_text = (
            "none"
            if near is None
            else "; ".join(
                f"{g or t} ({st}, {mm} mm, {rg or '?'})"
                for g, t, st, mm, rg in zip(
                    *(near[c].head(8) for c in ("gene", "transcript", "strand", "mismatches", "region"))
                )
            )
        )
        sub = seeds_by.get(pos)
        seed_text = (
            "none"
            if sub is None
            else ", ".join(
                f"{g or t} {rep:.2f}"
                for g, t, rep in zip(*(sub[c].head(6) for c in ("gene", "transcript", "predicted_repression")))
            )
        )
        rows.append(
            {
                "rank": rank,
                "name": name,
                "near-perfect matches": near_text,
                "seed: most repressed genes": seed_text,
                "seed burden (x typical)": rel,
            }
        )
    inner += table_html(pd.DataFrame(rows), max_rows=top)
    if off.get("utr_note"):
        inner += f'<p class="muted">{html_escape(off["utr_note"])}</p>'
    return inner


def chemistry_section(result: SirnaResult, top: int) -> str:
    """The strands to order, modified, for the top candidates, and what the notation means."""
    info = result.info
    t = result.table.head(min(top, 10))
    strands = t[["rank", "name", "guide_modified", "passenger_modified"]].rename(
        columns={"guide_modified": "antisense (guide) 5'->3'", "passenger_modified": "sense (passenger) 5'->3'"}
    )
    extra = []
    if info.get("guide_gna"):
        extra.append(f"GNA at guide position(s) {info['guide_gna']}")
    if info.get("guide_5prime_vp"):
        extra.append("5'-(E)-vinylphosphonate on the guide")
    return (
        f'<p class="explain">Pattern <code>{html_escape(info["pattern"])}</code>: '
        f"{html_escape(info['pattern_description'])} ({html_escape(info['pattern_source'])})"
        f"{'; ' + html_escape(', '.join(extra)) if extra else ''}. Lower case = 2'-O-methyl, upper case + f = "
        "2'-fluoro, upper case = unmodified, dT = deoxythymidine, s = phosphorothioate, (Tgn) = (S)-GNA, "
        "(vinu) = 5'-vinylphosphonate 2'-OMe-U, -GalNAc3 = triantennary GalNAc. The predicted knock-down does "
        "not change with the chemistry (see Summary).</p>" + table_html(strands, max_rows=10)
    )


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
        f"<li>Efficacy model {html_escape(model.get('version', ''))}: {html_escape(model_figures(model))}</li>"
        f"<li>Modification pattern <code>{html_escape(info['pattern'])}</code>: "
        f"{html_escape(info['pattern_description'])} ({html_escape(info['pattern_source'])}).</li>"
        f"<li>Off-target set: {html_escape(offtarget_sources(info['offtarget']))}; orthologs: "
        f"{html_escape(', '.join(info['orthologs']) or 'none given')}; variants: "
        f"{html_escape(info['variants'] or 'none given')}.</li></ul>"
    )


def model_figures(model: dict[str, Any]) -> str:
    """The efficacy model's honest figures: held out by laboratory (study-wise) and on siRBench's test split."""
    sw = model.get("study_wise_cv", {})
    held = model.get("held_out", {})
    parts = []
    if sw:
        parts.append(
            f"Pearson {sw.get('mean_pearson', '?')} on laboratories left out of training (mean over "
            f"{len(sw.get('by_study', {}))} studies)"
        )
    if held:
        parts.append(f"{held.get('pearson', '?')} on the siRBench test split (n = {held.get('n', '?')})")
    return "; ".join(parts) or "see docs/models.md"


def offtarget_sources(off: dict[str, Any]) -> str:
    """Index or files searched, with versions and checksums."""
    srcs = off.get("sources") or []
    text = (
        ", ".join(f"{s['file']} (sha256 {s['sha256'][:12]}...)" for s in srcs)
        or ", ".join(off.get("files", []))
        or "none given"
    )
    if off.get("index"):
        text = f"index {off['index']}: {text}"
    if off.get("annotation"):
        text += f"; annotation {off['annotation']['file']} (sha256 {off['annotation']['sha256'][:12]}...)"
    return text


def render(result: SirnaResult, top: int) -> str:
    """The HTML report of one target."""
    from .. import __version__

    target = result.info["target"]
    known = result.info.get("known", [])
    given = "duplexes_file" in result.info
    sections = [
        ("Summary", summary_section(result)),
        (f"Top {top} {'duplexes' if given else 'candidates'}", top_section(result, top)),
        ("Chemistry: the strands to order", chemistry_section(result, top)),
        ("Candidates along the transcript", position_map(result, top)),
        ("Score distributions", distributions(result, top)),
    ]
    if known:
        sections.append(
            (
                "Where the reference siRNAs rank",
                '<p class="explain">Sites of the reference siRNAs '
                "(for TTR: the approved drugs) located among the candidates, as a sanity check of the "
                "ranking.</p>" + table_html(pd.DataFrame(known)),
            )
        )
    if result.info.get("not_on_any_target"):
        sections.append(
            (
                "Duplexes not on the target",
                '<p class="explain">These given duplexes pair with none of '
                "the targets (more than 4 non-Watson-Crick pairs over guide nt 1-19): "
                + html_escape(", ".join(result.info["not_on_any_target"]))
                + "</p>",
            )
        )
    sections.append(("Off-targets of the top candidates", offtarget_section(result, top)))
    sections.append(("How this was computed", methods_section(result)))
    return html_page(
        f"oligolab sirna: {target['gene'] or target['id']}",
        f"{len(result.table):,} {'duplexes scored' if given else 'candidates ranked'} for {target['id']}",
        sections,
        footer=f"oligolab {__version__}",
    )


def result_files(result: SirnaResult, top: int) -> dict[str, Any]:
    """One target's files by name: tables (DataFrames), the summary (a dict, written as JSON), the report (HTML)."""
    return {
        "candidates.csv": result.table,
        "candidates.parquet": result.table,
        "top.csv": result.table.head(top),
        "order_sheet.csv": order_sheet(result, top),
        "offtarget_hits.tsv": result.offtarget_hits,
        "seed_offtargets.tsv": result.seed_offtargets,
        "summary.json": {**result.info, "top": result.table.head(top).to_dict(orient="records")},
        "report.html": render(result, top),
    }


def folder_name(result: SirnaResult) -> str:
    """A file-system-safe folder name for one target: gene_transcript."""
    import re

    label = f"{result.info['target']['gene'] or 'target'}_{result.target.id}"
    return re.sub(r"[^A-Za-z0-9._-]+", "_", label)


def output_files(results: list[SirnaResult], top: int) -> dict[str, Any]:
    """The run's files: one target's at the top level; several targets' each in its own folder, with a summary
    and an index page at the top."""
    if len(results) == 1:
        return result_files(results[0], top)
    from .. import __version__

    files: dict[str, Any] = {f"{folder_name(r)}/": result_files(r, top) for r in results}
    overview = pd.DataFrame(
        [
            {
                "target": r.target.id,
                "gene": r.info["target"]["gene"],
                "candidates": len(r.table),
                "best_score": float(r.table["score"].max()) if len(r.table) else None,
                "folder": folder_name(r),
                "report": f"{folder_name(r)}/report.html",
            }
            for r in results
        ]
    )
    files["targets.tsv"] = overview
    files["summary.json"] = {
        "targets": overview.to_dict(orient="records"),
        "known": {r.target.id: r.info.get("known", []) for r in results},
    }
    links = "".join(
        f'<li><a href="{html_escape(row.report)}">{html_escape(row.gene or "")} {html_escape(row.target)}'
        f"</a>: {row.candidates:,} candidates</li>"
        for row in overview.itertuples()
    )
    files["report.html"] = html_page(
        "oligolab sirna",
        f"{len(results)} targets",
        [("Targets", f"<ul>{links}</ul>")],
        footer=f"oligolab {__version__}",
    )
    return files
