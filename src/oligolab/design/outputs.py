"""Files written by `oligolab design` (all atomically; the same inputs give the same files, except the run
time shown in report.html):

``assays.tsv`` (readable by ``oligolab check --assays``), ``order_sheet.tsv``/``.csv``, ``design_summary.tsv``,
``oligos.tsv``, ``guides.tsv``, ``lineage_coverage.tsv``, ``group_coverage.tsv``, ``genome_calls.tsv``,
``offtarget_sites.tsv``, ``summary.json`` and ``report.html``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from ..check import ASSAY_CALLS
from ..errors import InputError
from ..lineages import group_lineages
from ..reports import output_folder, replaceable, write_json, write_table, write_text
from ..sequences import reverse_complement
from .order import order_sheet

ASSAY_TABLE_COLUMNS = ["assay", "oligo", "role", "sequence", "enzyme", "max_amplicon", "notes"]
DESIGN_TABLES = (
    "assays",
    "design_summary",
    "oligos",
    "guides",
    "lineage_coverage",
    "group_coverage",
    "genome_calls",
    "offtarget_sites",
    "order_sheet",
)
DESIGN_FILES = {f"{t}.tsv" for t in DESIGN_TABLES} | {"order_sheet.csv", "summary.json", "report.html"}
RESCUE_FILES = {"rescue_summary.tsv", "assays.tsv", "new_oligos.tsv", "summary.json", "report.html"}


def refuse_early(out_dir: str | Path, names: set[str]) -> None:
    """Refuse an output folder that cannot be replaced before any work (the transaction would refuse it after)."""
    target = Path(out_dir)
    if target.exists() and not target.is_dir():
        raise InputError(target, "is a file, not a folder", "give --out a folder path")
    if target.is_dir() and not replaceable(target, names):
        raise InputError(
            target,
            "the folder holds files oligolab did not write, so it is not replaced",
            "choose a new or empty output folder",
        )


def _site(start: int, end: int, strand: int) -> str:
    return f"{start + 1}-{end}({'+-'[strand]})"


def _genes(result, start: int, end: int) -> str:
    ann_path = result.inputs.annotation
    if ann_path is None:
        return ""
    if not hasattr(result, "_annotation"):
        from ..annotation import Annotation

        result._annotation = Annotation.from_genbank(ann_path)
    ann = result._annotation
    names = set()
    for p in range(start, end, 10):
        g = ann.gene_of(p)
        if g:
            names.update(g.split(","))
    return ",".join(sorted(names))


def motif_on_target(enzyme, profile, start: int, end: int, strand: int) -> str:
    """The consensus PAM/PFS of a guide site as the enzyme file writes it (the PAM on the non-target strand,
    the PFS on the target RNA), not in the oligo's orientation: a Cas13a PFS of C is shown as C, not as the
    G that faces it in the spacer's orientation."""
    c5, c3, _ = enzyme.oligo_context()
    if not c5 and not c3:
        return ""
    top = profile.sequence(start, end)
    oligo = top if strand == 0 else reverse_complement(top)
    bases = oligo[:c5] if c5 else oligo[len(oligo) - c3 :]
    return reverse_complement(bases) if enzyme.motif_strand == "target" else bases


def _rename_oligo(name: str, names: dict[str, str]) -> str:
    prefix = name.split("-", 1)[0]
    return names[prefix] + name[len(prefix) :] if prefix in names else name


def _calls_by(frame_key: str, a, calls: np.ndarray, labels: np.ndarray, names: list[str], extra) -> list[dict]:
    """Counts of the assay calls per label (lineage or lineage group)."""
    out = []
    for name in names:
        sel = labels == name
        k = np.bincount(calls[sel], minlength=4)
        out.append(
            {
                "assay": a.name,
                frame_key: name,
                **extra(name),
                "genomes": int(sel.sum()),
                **{ASSAY_CALLS[j].replace(" ", "_"): int(k[j]) for j in range(4)},
                "detected_fraction": round(k[0] / sel.sum(), 5),
            }
        )
    return out


def _site_robustness(result, o) -> dict:
    """How an oligo's site varies: its survival, the largest entropy under it, columns where relatives differ."""
    cons = result.conservation
    lo, hi = (o.part_sites[0][0], o.part_sites[1][1]) if o.part_sites else (o.start, o.end)
    lo, hi = min(lo, hi), max(lo, hi)
    rel = cons.related_differ[lo:hi] if cons is not None else np.zeros(0)
    return {
        "survival": o.survival,
        "entropy_max_bits": round(float(cons.entropy[lo:hi].max()), 3) if cons is not None and hi > lo else 0.0,
        "columns_variable_among_relatives": (int(np.nansum(rel > 0)) if cons is not None and cons.n_related else None),
        "degenerate_positions": sum(1 for b in o.sequence if b not in "ACGT") if o.role != "crRNA" else 0,
        "end_dg_kcal": o.end_dg_kcal,
    }


def _summary_row(result, rank: int, a, n: int, lin: tuple[int, int] | None) -> dict:
    c = a.scores["check"]
    spec = a.scores["specificity"]
    act = a.scores.get("activity", float("nan"))
    weakest = min(a.oligos, key=lambda o: o.survival if o.survival == o.survival else 2.0)
    return {
        "rank": rank,
        "assay": a.name,
        "enzyme": a.enzyme.name,
        "amplification": a.chemistry.upper(),
        "genes": _genes(result, a.amplicon[0], a.amplicon[1]),
        "amplicon": f"{a.amplicon[0] + 1}-{a.amplicon[1]}",
        "amplicon_nt": a.amplicon[1] - a.amplicon[0],
        "guides": len(a.guides),
        "primers": len(a.primers),
        "genomes": n,
        "detected": c["detected"],
        "at_risk": c["at risk"],
        "no_data": c["no data"],
        "not_detected": c["not detected"],
        "detected_fraction": round(c["detected"] / n, 5) if n else float("nan"),
        "lineages": lin[1] if lin else None,
        "lineages_detected": lin[0] if lin else None,
        "survival": a.prescore.get("survival"),
        "guide_survival": a.prescore.get("guide_survival"),
        "primer_survival": a.prescore.get("primer_survival"),
        "weakest_oligo": weakest.name,
        "redundant_primers": a.prescore.get("redundant_primers", 0),
        "degenerate_positions": a.prescore.get("degenerate_positions", 0),
        "specific": spec["specific"],
        "offtarget_guide_sites": "; ".join(spec["guide_sites"]),
        "offtarget_amplicons": "; ".join(spec["amplicons"]),
        "activity": round(act, 3) if not math.isnan(act) else float("nan"),
        "activity_kind": a.scores.get("activity_kind", ""),
        "robustness_penalty": a.scores.get("robustness_penalty", float("nan")),
        "variable_columns_under_oligos": a.prescore["primer_variable_columns"] + a.prescore["guide_variable_columns"],
        "loop_primers": ", ".join(o.role for o in a.primers if o.role in ("LF", "LB")) if a.chemistry == "lamp" else "",
        "notes": "; ".join(a.notes),
    }


def _oligo_rows(result, a) -> list[dict]:
    return [
        {
            "assay": a.name,
            "oligo": o.name,
            "role": o.role,
            "sequence": o.table_sequence,
            "length_nt": len(o.full_sequence),
            "site": _site(o.start, o.end, o.strand),
            "tm_C": o.tm_C,
            "gc_fraction": o.gc,
            "hairpin_dg_kcal": o.hairpin_dg_kcal,
            "design_genomes_bound": o.n_binds,
            "variable_columns": o.variable_columns,
            **_site_robustness(result, o),
            "notes": o.notes,
        }
        for o in a.oligos
    ]


def _guide_rows(a, profile) -> list[dict]:
    out = []
    for o, g in zip(a.guides, a.scores.get("guides", [])):
        motif = motif_on_target(a.enzyme, profile, o.start, o.end, o.strand)
        out.append(
            {
                "assay": a.name,
                "oligo": o.name,
                "spacer": o.sequence,
                "crRNA": g.crrna,
                "site": _site(o.start, o.end, o.strand),
                "motif": f"{motif} ({a.enzyme.motif_strand} strand; needs {a.enzyme.motif})" if motif else "",
                "design_genomes_bound": o.n_binds,
                "survival": o.survival,
                "crRNA_structure": g.structure,
                "crRNA_mfe_kcal": g.mfe_kcal,
                "repeat_intact": g.repeat_intact,
                "spacer_paired_nt": g.spacer_paired,
                "activity": g.activity,
                "activity_kind": g.activity_kind,
                "model_context": g.context,
            }
        )
    return out


def _offtarget_table(result) -> pd.DataFrame:
    """Off-target sites of the final assays (the screen ran on the shortlist's working names: renamed here)."""
    sites = result.offtarget_sites
    if sites is None or not len(sites):
        return pd.DataFrame()
    sites = sites.copy()
    sites["assay"] = sites["assay"].map(lambda x: result.final_names.get(x, x))
    sites["oligo"] = [_rename_oligo(o, result.final_names) for o in sites["oligo"]]
    return sites[sites["assay"].isin({a.name for a in result.assays})]


def tables(result) -> dict[str, pd.DataFrame]:
    """Every table of a design result."""
    cov = result.coverage
    col = result.collection
    lineage_of = dict(zip(col.ids, col.lineages))
    genome_lineage = np.array([lineage_of.get(g, "unassigned") for g in cov.genome_ids], dtype=object)
    names = sorted(set(genome_lineage))
    has_lineages = any(x != "unassigned" for x in names)  # without metadata or Pango ids: no lineage counts
    groups = group_lineages(names, result.lineages) if result.lineages is not None else {n: n for n in names}
    group_of = np.array([groups.get(x, x) for x in genome_lineage], dtype=object)
    profile = col.profile()
    rows: dict[str, list[dict]] = {k: [] for k in ("summary", "oligos", "guides", "lineages", "groups", "genomes")}
    for rank, a in enumerate(result.assays, 1):
        calls = cov.calls[:, cov.index(a.name)]
        lin = _calls_by("lineage", a, calls, genome_lineage, names, lambda x: {"lineage_group": groups.get(x, x)})
        rows["lineages"] += lin
        rows["groups"] += _calls_by("lineage_group", a, calls, group_of, sorted(set(group_of)), lambda x: {})
        rows["genomes"] += [
            {"assay": a.name, "genome": gid, "lineage": lineage_of.get(gid, ""), "call": ASSAY_CALLS[int(code)]}
            for gid, code in zip(cov.genome_ids, calls)
        ]
        counts = (sum(r["detected_fraction"] == 1.0 for r in lin), len(lin)) if has_lineages else None
        rows["summary"].append(_summary_row(result, rank, a, int(len(calls)), counts))
        rows["oligos"] += _oligo_rows(result, a)
        rows["guides"] += _guide_rows(a, profile)
    return {
        "assays": pd.DataFrame([r for a in result.assays for r in a.table_rows()], columns=ASSAY_TABLE_COLUMNS),
        "design_summary": pd.DataFrame(rows["summary"]),
        "oligos": pd.DataFrame(rows["oligos"]),
        "guides": pd.DataFrame(rows["guides"]),
        "lineage_coverage": pd.DataFrame(rows["lineages"]),
        "group_coverage": pd.DataFrame(rows["groups"]),
        "genome_calls": pd.DataFrame(rows["genomes"]),
        "offtarget_sites": _offtarget_table(result),
        "order_sheet": order_sheet(result.assays, profile),
    }


def summary_json(result, tabs: dict[str, pd.DataFrame]) -> dict:
    """Machine-readable summary (no timings or absolute paths, so it is deterministic)."""
    from .. import __version__

    o = result.options
    return {
        "oligolab_version": __version__,
        "parameters": {
            "enzyme": result.enzyme.name,
            "amplification": o.amplification,
            "n_assays": o.n_assays,
            "max_guides": o.max_guides,
            "region": o.region,
            "region_columns": [result.region[0] + 1, result.region[1]],
            "max_mismatches": o.max_mismatches,
            "max_gaps": o.max_gaps,
            "rules": Path(o.rules_path).name if o.rules_path else "check-rules.toml",
        },
        "inputs": {
            "genomes": [Path(p).name for p in result.inputs.genomes],
            "reference": result.collection.reference.name,
            "off_targets": [Path(p).name for p in result.inputs.off_targets],
            "related": [Path(p).name for p in result.inputs.related],
        },
        "counts": {
            "genomes": result.collection.n,
            "lineages": len(set(result.collection.lineages)),
            "candidate_guides": len(result.candidates),
            "shortlisted": len(result.assays) + len(result.rejected),
            "assays": len(result.assays),
        },
        "assays": tabs["design_summary"].to_dict(orient="records"),
        "rejected_for_specificity": [{"assay": a.name, **a.scores["specificity"]} for a in result.rejected],
        "unseen_variation": result.conservation.summary() if result.conservation is not None else {},
        "notes": result.notes,
    }


def write_outputs(result, out_dir: str | Path) -> None:
    """Write every output of a design into ``out_dir`` as one transaction (the folder is complete or untouched)."""
    from .report import render

    tabs = tables(result)
    summary = summary_json(result, tabs)
    html = render(result, tabs, summary)
    with output_folder(out_dir) as tmp:
        for name in DESIGN_TABLES:
            write_table(tabs[name], tmp / f"{name}.tsv")
        write_table(tabs["order_sheet"], tmp / "order_sheet.csv")
        write_json(tmp / "summary.json", summary)
        write_text(tmp / "report.html", html)


def rescue_tables(result) -> dict[str, pd.DataFrame]:
    """Tables of a rescue: before/after counts, the rescued assays (check-readable), the new oligos to order."""
    rows, assays, changes = [], [], []
    for r in result.assays:
        rows.append(
            {
                "assay": r.original.name,
                "genomes": sum(r.before.values()),
                **{f"{k.replace(' ', '_')}_before": v for k, v in r.before.items()},
                **{f"{k.replace(' ', '_')}_after": v for k, v in r.after.items()},
                "escaping": ", ".join(r.escaping),
                "changes": "; ".join(r.changes),
                "not_rescued": "; ".join(r.not_rescued),
            }
        )
        original = {(o.name, o.sequence) for o in r.original.oligos}
        for o in r.rescued.oligos:
            new = (o.name, o.sequence) not in original
            assays.append(
                {
                    "assay": r.rescued.name,
                    "oligo": o.name,
                    "role": o.role,
                    "sequence": o.tail.lower() + o.sequence,
                    "enzyme": o.enzyme or "",
                    "max_amplicon": "",
                    "notes": o.notes,
                }
            )
            if new:
                changes.append(
                    {
                        "assay": r.rescued.name,
                        "oligo": o.name,
                        "role": o.role,
                        "sequence": o.sequence,
                        "length_nt": len(o.sequence),
                        "notes": o.notes,
                    }
                )
    return {
        "rescue_summary": pd.DataFrame(rows),
        "assays": pd.DataFrame(assays, columns=ASSAY_TABLE_COLUMNS),
        "new_oligos": pd.DataFrame(changes, columns=["assay", "oligo", "role", "sequence", "length_nt", "notes"]),
    }


def write_rescue(result, out_dir: str | Path) -> None:
    """Write a rescue's tables, summary.json and report as one transaction."""
    from .report import render_rescue

    tabs = rescue_tables(result)
    summary = {
        "assays": tabs["rescue_summary"].to_dict(orient="records"),
        "notes": result.notes,
        "genomes": result.collection.n,
    }
    with output_folder(out_dir) as tmp:
        for name, frame in tabs.items():
            write_table(frame, tmp / f"{name}.tsv")
        write_json(tmp / "summary.json", summary)
        write_text(tmp / "report.html", render_rescue(result, tabs))
