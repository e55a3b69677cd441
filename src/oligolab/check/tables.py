"""The small summary tables written beside the per-genome rows (per assay, lineage group, lineage, oligo,
month; escape mutations) and the machine-readable ``summary.json``."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..knowledge import ASSAY_CALLS, CALLS
from ..lineages import Lineages
from ..sequences import reverse_complement
from .checker import CAUSES

if TYPE_CHECKING:
    from .pipeline import CheckResult


def count_frame(columns: dict[str, object], counts: np.ndarray, labels: tuple[str, ...], fraction: str) -> Any:
    """A table of call counts (one row per key, one column per call) with the first call's fraction."""
    import pandas as pd

    counts = np.asarray(counts).reshape(-1, len(labels))
    n = counts.sum(axis=1)
    frame = pd.DataFrame(columns)
    frame["genomes"] = n
    for k, label in enumerate(labels):
        frame[label.replace(" ", "_")] = counts[:, k]
    frame[fraction] = np.where(n > 0, np.round(counts[:, 0] / np.maximum(n, 1), 5), np.nan)
    return frame


def summary_tables(result: CheckResult, lineages: Lineages) -> dict[str, object]:
    """The summary tables written beside the per-genome rows (all small)."""
    checker, agg = result.checker, result.aggregates
    lin_names = agg.lineages()
    groups = np.array([result.lineage_groups.get(n, n) for n in lin_names], dtype=object)
    group_names = sorted(set(groups))
    group_idx = np.searchsorted(np.array(group_names, dtype=object), groups)
    assays = checker.assays.assays
    names = np.array([a.name for a in assays], dtype=object)
    n_as, n_ol = len(assays), len(checker.oligos)
    la = agg.lin_assay[: len(lin_names)].astype(np.int64)
    lo = agg.lin_oligo[: len(lin_names)].astype(np.int64)
    assay_summary = count_frame(
        {
            "assay": names,
            "panel": [a.panel for a in assays],
            "kind": [a.kind for a in assays],
            "oligos": [len(a.oligos) for a in assays],
        },
        la.sum(axis=0),
        ASSAY_CALLS,
        "detected_fraction",
    )
    assay_summary["not_detected_fraction"] = np.where(
        assay_summary["genomes"] > 0,
        np.round(assay_summary["not_detected"] / assay_summary["genomes"].clip(lower=1), 5),
        np.nan,
    )
    by_group = np.zeros((len(group_names), n_as, 4), dtype=np.int64)
    np.add.at(by_group, group_idx, la)
    lineages_per_group = np.bincount(group_idx, minlength=len(group_names))
    group_summary = count_frame(
        {
            "lineage_group": np.repeat(group_names, n_as),
            "lineages": np.repeat(lineages_per_group, n_as),
            "assay": np.tile(names, len(group_names)),
        },
        by_group,
        ASSAY_CALLS,
        "detected_fraction",
    )
    li, ai = np.nonzero(la[:, :, 0] < la.sum(axis=2))  # lineage x assay pairs where not all were detected
    lin_arr = np.array(lin_names, dtype=object)
    lineage_summary = count_frame(
        {
            "lineage": lin_arr[li],
            "lineage_group": groups[li],
            "full_name": [lineages.full(x) for x in lin_arr[li]],
            "assay": names[ai],
        },
        la[li, ai],
        ASSAY_CALLS,
        "detected_fraction",
    )
    og = np.zeros((len(group_names), n_ol, 4), dtype=np.int64)
    np.add.at(og, group_idx, lo)
    oligo_groups = count_frame(
        {
            "lineage_group": np.repeat(group_names, n_ol),
            "assay": np.tile([o.oligo.assay for o in checker.oligos], len(group_names)),
            "oligo": np.tile([o.name for o in checker.oligos], len(group_names)),
            "role": np.tile([o.role for o in checker.oligos], len(group_names)),
        },
        og,
        CALLS,
        "binds_fraction",
    )
    months = sorted(agg.months())
    month_counts = agg.month_assay[[agg.month_index[m] for m in months]] if months else np.zeros((0, n_as, 4))
    monthly = count_frame(
        {"month": np.repeat(months, n_as), "assay": np.tile(names, len(months))},
        month_counts,
        ASSAY_CALLS,
        "detected_fraction",
    )
    return {
        "assay_summary": assay_summary,
        "group_summary": group_summary,
        "lineage_summary": lineage_summary,
        "oligo_lineage_groups": oligo_groups,
        "monthly_summary": monthly,
        "escape_mutations": escape_mutations(result, lin_names),
        "design_mismatches": design_mismatches(result),
    }


_SUBSTITUTION = re.compile(r"^([ACGT]+)(\d+)([ACGT]+)$")


def escape_mutations(result: CheckResult, lin_names: list[str]) -> Any:
    """Mutations under degraded or failing oligo sites (a run of adjacent substitutions is one event), ranked by
    the genomes they affect; the lineage groups and lineages they are found in, ranked the same way."""
    import pandas as pd

    checker = result.checker
    stats = result.aggregates.mutation_stats
    groups = result.lineage_groups
    rows = []
    ann = checker.annotation
    for (oi, name), s in stats.items():
        so = checker.oligos[oi]
        sub = _SUBSTITUTION.match(name)
        aa = ann.aa_change(s["refpos"] - 1, sub.group(3)) if ann is not None and sub else ""
        gene = ann.gene_of(s["refpos"] - 1) if ann is not None else ""
        by_group: Counter[str] = Counter()
        for lineage, n in s["lineages"].items():
            by_group[groups.get(lineage, lineage)] += n
        rows.append(
            {
                "assay": so.oligo.assay,
                "oligo": so.name,
                "role": so.role,
                "mutation": name,
                "position": s["refpos"],
                "from_3p": s["from_3p"],
                "gene": gene,
                "amino_acid": aa,
                "genomes": s["genomes"],
                "degraded": s["degraded"],
                "fails": s["fails"],
                "lineages": len(s["lineages"]),
                "lineage_groups": _ranked(by_group, 6),
                "top_lineages": _ranked(s["lineages"], 8),
                "first_seen": s.get("first_seen", ""),
                "last_seen": s.get("last_seen", ""),
            }
        )
    cols = [
        "assay",
        "oligo",
        "role",
        "mutation",
        "position",
        "from_3p",
        "gene",
        "amino_acid",
        "genomes",
        "degraded",
        "fails",
        "lineages",
        "lineage_groups",
        "top_lineages",
        "first_seen",
        "last_seen",
    ]
    df = pd.DataFrame(rows, columns=cols)
    if len(df):
        df = df.sort_values(
            ["genomes", "fails", "assay", "oligo", "position", "mutation"],
            ascending=[False, False, True, True, True, True],
            kind="stable",
        )
    return df.reset_index(drop=True)


def _ranked(counts: dict[str, int], top: int) -> str:
    """'name (n), ...' for the ``top`` names with the most genomes (ties by name), and how many more."""
    items = sorted(counts.items(), key=lambda x: (-x[1], x[0]))
    text = ", ".join(f"{k} ({v})" for k, v in items[:top])
    return text + (f" and {len(items) - top} more" if len(items) > top else "")


def design_mismatches(result: CheckResult) -> Any:
    """Oligos that differ from the reference itself (a design choice, e.g. a degenerate base where the reference
    has one base), with the consequence: the call on the reference and how many genomes are degraded or fail by
    the design mismatch alone, by it together with mutations, or by mutations only."""
    import pandas as pd

    checker = result.checker
    cause = result.aggregates.oligo_cause
    rows = []
    for oi, (so, ref) in enumerate(zip(checker.oligos, checker.ref_sites)):
        if ref is None or not ref.mm_from_3p:
            continue
        core_len = len(so.core)
        pairs = []
        for x in ref.mm_from_3p:
            i = so.context5 + core_len - x
            base = ref.target[ref.columns[i]] if ref.columns[i] >= 0 else "-"
            top = f" (genome + strand: {reverse_complement(base)})" if ref.strand == "-" else ""
            pairs.append(f"{x}: oligo {so.pattern[i]} vs reference {base}{top}")
        code, why, drop = ref.call
        rows.append(
            {
                "assay": so.oligo.assay,
                "oligo": so.name,
                "role": so.role,
                "from_3p_oligo_vs_reference": "; ".join(pairs),
                "call_on_reference": CALLS[code],
                "reason_on_reference": why,
                "tm_drop_on_reference_C": drop,
                "genomes_by_design": int(cause[oi, CAUSES.index("design")]),
                "genomes_by_design_and_mutation": int(cause[oi, CAUSES.index("design+mutation")]),
                "genomes_by_mutation": int(cause[oi, CAUSES.index("mutation")]),
            }
        )
    cols = [
        "assay",
        "oligo",
        "role",
        "from_3p_oligo_vs_reference",
        "call_on_reference",
        "reason_on_reference",
        "tm_drop_on_reference_C",
        "genomes_by_design",
        "genomes_by_design_and_mutation",
        "genomes_by_mutation",
    ]
    return pd.DataFrame(rows, columns=cols)


def summary_json(result: CheckResult, tables: dict) -> dict:
    """Machine-readable summary (deterministic: no timings or paths that change between runs)."""
    from .. import __version__

    checker = result.checker
    opts = checker.options
    assay_summary = tables["assay_summary"]
    return {
        "oligolab_version": __version__,
        "parameters": {
            "max_mismatches": opts.max_mismatches,
            "max_gaps": opts.max_gaps,
            "rules": Path(checker.rules.path).name,
            "conditions": checker.rules.conditions.describe(),
        },
        "inputs": {
            "assays": [Path(p).name for p in result.inputs.assays],
            "genomes": [Path(p).name for p in result.inputs.genomes],
            "metadata": Path(result.inputs.metadata).name if result.inputs.metadata else None,
            "reference": Path(result.inputs.reference).name if result.inputs.reference else None,
            "off_targets": [Path(p).name for p in result.inputs.off_targets],
        },
        "counts": {
            "genomes": result.genomes,
            "nucleotides": result.nucleotides,
            "lineages": len(result.aggregates.lineage_index),
            "assays": len(checker.assays.assays),
            "oligos": len(checker.oligos),
        },
        "assays": assay_summary.to_dict(orient="records"),
        "oligos_without_reference_site": [o.name for o, r in zip(checker.oligos, checker.ref_sites) if r is None]
        if checker.reference is not None
        else [],
        "top_escape_mutations": tables["escape_mutations"].head(25).to_dict(orient="records"),
        "exclusivity": result.exclusivity_assays.to_dict(orient="records"),
        "not_detected_examples": {
            checker.assays.assays[a].name: ex for a, ex in sorted(result.aggregates.not_detected_examples.items())
        },
        "warnings": result.warnings,
    }
