"""Per-genome rows of a chunk (genome x oligo, genome x assay) as Arrow tables, with the texts repeated across
rows dictionary-encoded; written as one Parquet part per chunk (the partitioned dataset DuckDB, Polars or pandas
read as one table) and as TSV rows for the calls a person opens (all but 'binds' / 'detected')."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..knowledge import ASSAY_CALLS, CALLS
from .checker import CAUSES, BatchResult, Checker, SiteInstances


def dict_column(indices: np.ndarray, values: list[str]) -> Any:
    """A dictionary-encoded string column of ``values[indices]``: repeated texts are stored once; the dictionary
    holds only the texts used, sorted and unique (as readers such as pandas require), so the column's bytes
    depend only on its values."""
    import pyarrow as pa

    indices = np.asarray(indices, dtype=np.int64)
    used = np.flatnonzero(np.bincount(indices, minlength=len(values))) if len(indices) else np.zeros(0, np.int64)
    texts = [str(values[i]) for i in used.tolist()]
    uniq = sorted(set(texts))  # Python's sort and set: 2-4x faster here than np.unique on a string array
    rank = {text: i for i, text in enumerate(uniq)}
    lookup = np.zeros(len(values), dtype=np.int32)
    lookup[used] = [rank[text] for text in texts]
    return pa.DictionaryArray.from_arrays(pa.array(lookup[indices]), pa.array(uniq, type=pa.string()))


_TEXT = ("strand", "mismatch_from_3p", "design_mismatch_from_3p", "gap_from_3p", "motif", "target", "mutations")
_INTS = ("mismatches", "unknown", "gaps", "seed_mismatches", "span")
_FLOATS = ("tm_C", "dg_kcal", "tm_drop_C")
_ORDER = (
    "strand",
    "mismatches",
    "unknown",
    "gaps",
    "mismatch_from_3p",
    "design_mismatch_from_3p",
    "gap_from_3p",
    "seed_mismatches",
    "motif",
    "target",
    "tm_C",
    "dg_kcal",
    "tm_drop_C",
    "mutations",
    "span",
)
#: columns of the genome x oligo and genome x assay tables
OLIGO_COLUMNS = (
    "genome",
    "lineage",
    "date",
    "assay",
    "oligo",
    "role",
    "call",
    "reason",
    "cause",
    "start",
    "end",
    *(c for c in _ORDER if c != "span"),
    "n_sites",
)
ASSAY_COLUMNS = ("genome", "lineage", "date", "assay", "call", "reason", "amplicon_start", "amplicon_end")


def site_columns(checker: Checker, inst_of: np.ndarray, instances: SiteInstances) -> dict[str, Any]:
    """Per-site text and figures for the rows, computed once per distinct site instance (-1: no site)."""
    n = len(instances.sid)
    text: dict[str, list[str]] = {name: [] for name in _TEXT}
    ints: dict[str, list[int]] = {name: [] for name in _INTS}
    for i in range(n):
        sid = int(instances.sid[i])
        f = checker.book.facts(sid)
        so = checker.oligos[f.oligo]
        core_len = len(so.core)
        text["strand"].append(f.strand)
        text["mismatch_from_3p"].append(",".join(str(x) for x in f.mm_from_3p))
        text["design_mismatch_from_3p"].append(",".join(str(x) for x in checker.design_mismatches(sid)))
        text["gap_from_3p"].append(",".join(str(core_len - g) for g in f.gap_core_idx))
        text["motif"].append(f.motif_bases)
        text["target"].append(f.target)
        text["mutations"].append(" ".join(m[0] for m in checker.mutations(sid)))
        for name, value in zip(
            _INTS, (f.mismatches, f.unknown, f.gaps, f.seed_mm if so.enzyme is not None else -1, f.span)
        ):
            ints[name].append(value)
    index = np.where(inst_of >= 0, inst_of, n)  # row n: no site
    out: dict[str, Any] = {}
    for name in _TEXT:
        out[name] = dict_column(index, text[name] + [""])
    for name in _INTS:
        out[name] = np.asarray(ints[name] + [-1], dtype=np.int64)[index]
    for name in _FLOATS:
        out[name] = np.append(getattr(instances, name), np.nan)[index]
    return {name: out[name] for name in _ORDER}


def chunk_tables(
    checker: Checker, ids: list[str], lineages: list[str], dates: list[str], res: BatchResult, causes: np.ndarray
) -> tuple[Any, Any]:
    """(genome x oligo table, genome x assay table) of one checked chunk (``causes``: :meth:`Checker.causes`)."""
    import pyarrow as pa

    n_gen, n_ol = res.oligo_call.shape
    n_as = res.assay_call.shape[1]
    sc = site_columns(checker, res.oligo_inst.ravel(), res.instances)
    lost = res.lost.ravel()
    if lost.any():
        muts = sc["mutations"].cast("string").to_numpy(zero_copy_only=False).astype(object)
        texts = np.array([" ".join(m[0] for m in ml) for ml in checker.lost], dtype=object)
        sc["mutations"] = dict_column(np.arange(len(lost)), np.where(lost > 0, texts[lost], muts).tolist())
    pos = res.oligo_pos.ravel()
    span = sc.pop("span")
    lin_values, lin_idx = np.unique(np.asarray(lineages, dtype=object).astype(str), return_inverse=True)
    date_values, date_idx = np.unique(np.asarray(dates, dtype=object).astype(str), return_inverse=True)
    assay_names = [a.name for a in checker.assays.assays]
    oligo_assay = np.array([assay_names.index(o.oligo.assay) for o in checker.oligos])
    oligo_table = pa.table(
        {
            "genome": dict_column(np.repeat(np.arange(n_gen), n_ol), ids),
            "lineage": dict_column(np.repeat(lin_idx.ravel(), n_ol), lin_values.tolist()),
            "date": dict_column(np.repeat(date_idx.ravel(), n_ol), date_values.tolist()),
            "assay": dict_column(np.tile(oligo_assay, n_gen), assay_names),
            "oligo": dict_column(np.tile(np.arange(n_ol), n_gen), [o.name for o in checker.oligos]),
            "role": dict_column(np.tile(np.arange(n_ol), n_gen), [o.role for o in checker.oligos]),
            "call": dict_column(res.oligo_call.ravel(), list(CALLS)),
            "reason": dict_column(res.oligo_reason.ravel(), checker.reasons),
            "cause": dict_column(causes.ravel(), list(CAUSES)),
            "start": np.where(pos >= 0, pos + 1, -1),
            "end": np.where(pos >= 0, pos + span, -1),
            **sc,
            "n_sites": res.oligo_nsites.ravel(),
        }
    )
    assert tuple(oligo_table.column_names) == OLIGO_COLUMNS
    amp = res.amplicon.reshape(-1, 2)
    assay_table = pa.table(
        {
            "genome": dict_column(np.repeat(np.arange(n_gen), n_as), ids),
            "lineage": dict_column(np.repeat(lin_idx.ravel(), n_as), lin_values.tolist()),
            "date": dict_column(np.repeat(date_idx.ravel(), n_as), date_values.tolist()),
            "assay": dict_column(np.tile(np.arange(n_as), n_gen), assay_names),
            "call": dict_column(res.assay_call.ravel(), list(ASSAY_CALLS)),
            "reason": dict_column(res.assay_reason.ravel(), checker.reasons),
            "amplicon_start": np.where(amp[:, 0] >= 0, amp[:, 0] + 1, -1),
            "amplicon_end": amp[:, 1],
        }
    )
    return oligo_table, assay_table


def parquet_bytes(table: Any) -> bytes:
    """A table as the bytes of one Parquet file (zstd)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue().to_pybytes()


def tsv_bytes(table: Any, omit_call: str) -> bytes:
    """The rows of ``table`` whose call is not ``omit_call``, as TSV lines without a header."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    rows = table.filter(pc.not_equal(table["call"].cast(pa.string()), omit_call))
    sink = pa.BufferOutputStream()
    pacsv.write_csv(
        rows, sink, write_options=pacsv.WriteOptions(delimiter="\t", quoting_style="none", include_header=False)
    )
    return sink.getvalue().to_pybytes()


def tsv_header(columns: tuple[str, ...]) -> bytes:
    """The header line of a TSV with these columns."""
    return ("\t".join(columns) + "\n").encode()
