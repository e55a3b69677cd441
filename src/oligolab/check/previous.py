"""Surveillance: what changed since the previous check of the same assays (``--previous RESULTS_DIR``).

Compares this run's per-genome assay calls and escape mutations with an earlier output folder: genomes that are new
in this collection and escape (not detected) or degrade (at risk) an assay, lineages that escape or degrade an assay
for the first time, genomes whose call got worse, and escape mutations not seen before, each with its dates; and
a compact per-assay "assay watch" summary that the lab service shows beside a lab's batches.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import InputError

#: assay calls that need attention, worst first
_WATCHED = ("not detected", "at risk")
_CHANGE_COLUMNS = ["assay", "change", "lineage", "genome", "date", "call", "previous_call", "genomes", "detail"]


def _assay_calls(folder: Path, watched_only: bool) -> Any:
    """The per-genome assay calls of a check output folder (the Parquet dataset, or an older single file)."""
    import pyarrow.dataset as ds

    path = folder / "assay_calls"
    if not path.exists():
        path = folder / "assay_calls.parquet"
    if not path.exists():
        raise InputError(
            folder,
            "no assay_calls dataset: not an `oligolab check` output folder",
            "give --previous the --out folder of an earlier check",
        )
    dataset = ds.dataset(path, format="parquet")
    columns = ["genome", "lineage", "date", "assay", "call"]
    flt = ds.field("call").cast("string").isin(list(_WATCHED)) if watched_only else None
    frame = dataset.to_table(columns=columns, filter=flt).to_pandas()
    return frame.astype({c: str for c in columns})


def _genomes(folder: Path, first_assay: str) -> set[str]:
    import pyarrow.dataset as ds

    path = folder / "assay_calls"
    if not path.exists():
        path = folder / "assay_calls.parquet"
    table = ds.dataset(path, format="parquet").to_table(
        columns=["genome"], filter=ds.field("assay").cast("string") == first_assay
    )
    return set(table.column("genome").cast("string").to_pylist())


def compare(current: Path, previous: Path, escapes: Any) -> tuple[Any, dict[str, Any]]:
    """(changes table, assay watch summary) between the output folder being written (``current``, whose
    per-genome datasets are already there) and a previous one; ``escapes`` is this run's escape-mutation table."""
    import pandas as pd

    previous = Path(previous)
    if not previous.is_dir():
        raise InputError(previous, "is not a folder", "give --previous the --out folder of an earlier check")
    now, before = _assay_calls(current, True), _assay_calls(previous, True)
    assays = sorted(set(now.assay) | set(before.assay))
    known = _genomes(previous, assays[0]) if assays else set()
    rows: list[dict[str, Any]] = []
    rows += _new_genomes(now, known)
    rows += _worse_calls(now, before, known)
    rows += _new_lineages(now, before)
    rows += _new_mutations(escapes, previous)
    changes = pd.DataFrame(rows, columns=_CHANGE_COLUMNS)
    order = {
        c: i
        for i, c in enumerate(
            [
                "new escape mutation",
                "lineage newly not detected",
                "lineage newly at risk",
                "new genome not detected",
                "new genome at risk",
                "call worse",
            ]
        )
    }
    if len(changes):
        changes = (
            changes.assign(_o=changes["change"].map(order))
            .sort_values(["assay", "_o", "date", "lineage", "genome", "detail"], kind="stable")
            .drop(columns="_o")
        )
    return changes.reset_index(drop=True), _watch(changes, now, before, len(known))


def _new_genomes(now: Any, known: set[str]) -> list[dict[str, Any]]:
    new = now[~now.genome.isin(known)]
    return [
        {
            "assay": r.assay,
            "change": f"new genome {r.call}",
            "lineage": r.lineage,
            "genome": r.genome,
            "date": r.date,
            "call": r.call,
            "previous_call": "",
            "genomes": 1,
            "detail": "",
        }
        for r in new.itertuples()
    ]


def _worse_calls(now: Any, before: Any, known: set[str]) -> list[dict[str, Any]]:
    """Genomes of both runs whose call for an assay got worse (e.g. after a rule change or a corrected genome)."""
    both = now[now.genome.isin(known)].merge(
        before[["genome", "assay", "call"]], on=["genome", "assay"], how="left", suffixes=("", "_before")
    )
    rank = {"detected": 0, "at risk": 1, "no data": 2, "not detected": 3}
    worse = both[both.call.map(rank) > both.call_before.fillna("detected").map(rank)]
    return [
        {
            "assay": r.assay,
            "change": "call worse",
            "lineage": r.lineage,
            "genome": r.genome,
            "date": r.date,
            "call": r.call,
            "previous_call": r.call_before if isinstance(r.call_before, str) else "detected",
            "genomes": 1,
            "detail": "",
        }
        for r in worse.itertuples()
    ]


def _new_lineages(now: Any, before: Any) -> list[dict[str, Any]]:
    """Lineages with genomes not detected (or at risk) for an assay now, and none before."""
    rows = []
    for call in _WATCHED:
        had = set(zip(before[before.call == call].assay, before[before.call == call].lineage))
        cur = now[now.call == call]
        for (assay, lineage), d in cur.groupby(["assay", "lineage"], sort=True):
            if (assay, lineage) in had:
                continue
            dates = sorted(x for x in d.date if x)
            rows.append(
                {
                    "assay": assay,
                    "change": f"lineage newly {call}",
                    "lineage": lineage,
                    "genome": "",
                    "date": dates[0] if dates else "",
                    "call": call,
                    "previous_call": "",
                    "genomes": len(d),
                    "detail": f"first collected {dates[0]}, last {dates[-1]}" if dates else "",
                }
            )
    return rows


def _new_mutations(escapes: Any, previous: Path) -> list[dict[str, Any]]:
    """Escape mutations (under a degraded or failing oligo) that the previous run did not report."""
    import pandas as pd

    path = previous / "escape_mutations.tsv"
    before = pd.read_csv(path, sep="\t", dtype=str) if path.exists() else pd.DataFrame(columns=["oligo", "mutation"])
    had = set(zip(before.oligo, before.mutation))
    rows = []
    for r in escapes.itertuples():
        if (r.oligo, r.mutation) in had:
            continue
        where = f"{r.oligo} {r.from_3p} nt from 3'" + (f", {r.amino_acid}" if r.amino_acid else "")
        dates = f"; first collected {r.first_seen}, last {r.last_seen}" if r.first_seen else ""
        rows.append(
            {
                "assay": r.assay,
                "change": "new escape mutation",
                "lineage": r.lineage_groups,
                "genome": "",
                "date": r.first_seen,
                "call": f"{r.fails} fail, {r.degraded} degraded",
                "previous_call": "",
                "genomes": r.genomes,
                "detail": f"{r.mutation} ({where}){dates}",
            }
        )
    return rows


def _watch(changes: Any, now: Any, before: Any, previous_genomes: int) -> dict[str, Any]:
    """Per assay: genomes not detected / at risk now and before, and what is new (counts and the top items)."""
    out: dict[str, Any] = {"previous_genomes": previous_genomes, "assays": {}}
    assays = sorted(set(now.assay) | set(before.assay) | set(changes.assay))
    for assay in assays:
        c = changes[changes.assay == assay]
        entry: dict[str, Any] = {
            "not_detected": int((now[now.assay == assay].call == "not detected").sum()),
            "at_risk": int((now[now.assay == assay].call == "at risk").sum()),
            "previous_not_detected": int((before[before.assay == assay].call == "not detected").sum()),
            "previous_at_risk": int((before[before.assay == assay].call == "at risk").sum()),
        }
        for change in (
            "new genome not detected",
            "new genome at risk",
            "lineage newly not detected",
            "lineage newly at risk",
            "new escape mutation",
            "call worse",
        ):
            entry[change.replace(" ", "_")] = int((c.change == change).sum())
        entry["new_lineages"] = sorted(set(c[c.change.str.startswith("lineage newly")].lineage))[:10]
        entry["new_mutations"] = list(c[c.change == "new escape mutation"].detail.head(5))
        out["assays"][assay] = entry
    return out
