"""Specificity: designed guides and amplicons must not find a site in the off-target collections (near-neighbour
viruses, human background) within the tolerance of the check rules. The search and the calls are those of
`oligolab check` (its engine, site calls and off-target amplicon logic), so a design and a later check agree.

A guide is *off-target positive* when any off-target site is called binds or degraded; an assay is positive
when its guides are, or when its primers could form an amplicon in an off-target record.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pandas as pd

from ..assays import Assay, AssaySet, Oligo
from ..check import Checker, CheckOptions, exclusivity
from ..knowledge import Enzyme
from ..sequences import SeqRecord

POSITIVE_CALLS = ("binds", "degraded")


def guide_offtargets(
    enzyme: Enzyme,
    spacers: list[str],
    off_targets: list[str | Path],
    reference: SeqRecord | None,
    options: CheckOptions,
) -> dict[str, list[dict]]:
    """Off-target sites called binds/degraded for each spacer (empty list: specific)."""
    if not off_targets or not spacers:
        return {s: [] for s in spacers}
    uniq = list(dict.fromkeys(spacers))
    assays = AssaySet(
        [Assay(f"g{i}", [Oligo(f"g{i}", f"g{i}", "crRNA", s, "", enzyme.name, "design")]) for i, s in enumerate(uniq)]
    )
    checker = Checker(assays, reference=reference, options=options)
    try:
        sites, _ = exclusivity(checker, off_targets)
    finally:
        checker.close()
    out: dict[str, list[dict]] = {s: [] for s in uniq}
    if len(sites):
        pos = sites[sites["call"].isin(POSITIVE_CALLS)]
        for row in pos.itertuples(index=False):
            out[uniq[int(row.oligo[1:])]].append(
                {
                    "collection": row.collection,
                    "record": row.record,
                    "call": row.call,
                    "mismatches": int(row.mismatches),
                    "start": int(row.start),
                    "strand": row.strand,
                }
            )
    return out


def assay_offtargets(
    assays: AssaySet, off_targets: list[str | Path], reference: SeqRecord | None, options: CheckOptions
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(sites, assay outcomes) in the off-target collections, exactly as `oligolab check` reports them."""
    if not off_targets:
        return (
            pd.DataFrame(columns=["collection", "record", "assay", "oligo", "role", "call"]),
            pd.DataFrame(columns=["collection", "record", "assay", "outcome"]),
        )
    checker = Checker(assays, reference=reference, options=options)
    try:
        return exclusivity(checker, off_targets)
    finally:
        checker.close()


def summarise(sites: pd.DataFrame, outcomes: pd.DataFrame, assay_names: list[str]) -> dict[str, dict]:
    """Per assay: positive guide sites and amplicons by off-target record (for ranking and the report)."""
    out: dict[str, dict] = {a: {"guide_sites": [], "amplicons": [], "specific": True} for a in assay_names}
    by_assay = defaultdict(list)
    if len(sites):
        pos = sites[(sites["role"] == "crRNA") & sites["call"].isin(POSITIVE_CALLS)]
        for row in pos.itertuples(index=False):
            by_assay[row.assay].append(f"{row.record} ({row.call}, {row.mismatches} mm)")
    for a, v in by_assay.items():
        if a in out:
            out[a]["guide_sites"] = sorted(set(v))
            out[a]["specific"] = False
    if len(outcomes):
        for row in outcomes.itertuples(index=False):
            if row.assay in out and row.outcome in ("amplicon", "detected", "guide binds"):
                out[row.assay]["amplicons"].append(f"{row.record} ({row.outcome})")
                out[row.assay]["specific"] = False
    return out
