"""Per-genome rows (genome x oligo, genome x assay) streamed to TSV and Parquet as batches are checked; texts
repeated across rows are dictionary-encoded."""

from __future__ import annotations

import contextlib
from collections import defaultdict
from pathlib import Path

import numpy as np

from ..knowledge import ASSAY_CALLS, CALLS
from .checker import BatchResult, Checker


def dict_column(indices: np.ndarray, values: list[str]):
    """A dictionary-encoded string column: repeated texts are stored once (the dictionary is made unique,
    as readers such as pandas require)."""
    import pyarrow as pa

    uniq, inv = np.unique(np.asarray(values, dtype=object).astype(str), return_inverse=True)
    return pa.DictionaryArray.from_arrays(pa.array(inv[np.asarray(indices)].astype(np.int32)),
                                          pa.array(uniq.tolist(), type=pa.string()))


def site_columns(checker: Checker, sids: np.ndarray) -> dict[str, object]:
    """Per-site text and figures for the row tables, computed once per distinct site."""
    uniq, inv = np.unique(sids, return_inverse=True)
    text: dict[str, list[str]] = defaultdict(list)
    nums: dict[str, list] = defaultdict(list)
    for sid in uniq:
        sid = int(sid)
        if sid < 0:
            for name in ("strand", "mismatch_from_3p", "gap_from_3p", "motif", "target", "mutations"):
                text[name].append("")
            for name in ("mismatches", "unknown", "gaps", "seed_mismatches", "span"):
                nums[name].append(-1)
            for name in ("tm_C", "dg_kcal", "tm_drop_C"):
                nums[name].append(float("nan"))
            continue
        f = checker.book.facts(sid)
        c = checker.book.call(sid)
        text["strand"].append(f.strand)
        text["mismatch_from_3p"].append(",".join(str(x) for x in f.mm_from_3p))
        core_len = len(checker.oligos[f.oligo].core)
        text["gap_from_3p"].append(",".join(str(core_len - g) for g in f.gap_core_idx))
        text["motif"].append(f.motif_bases)
        text["target"].append(f.target)
        text["mutations"].append(" ".join(m[0] for m in checker.mutations(sid)))
        nums["mismatches"].append(f.mismatches)
        nums["unknown"].append(f.unknown)
        nums["gaps"].append(f.gaps)
        nums["seed_mismatches"].append(f.seed_mm if checker.oligos[f.oligo].enzyme is not None else -1)
        nums["span"].append(f.span)
        nums["tm_C"].append(c[2])
        nums["dg_kcal"].append(c[3])
        nums["tm_drop_C"].append(c[4])
    out: dict[str, object] = {}
    for name in ("strand", "mismatches", "unknown", "gaps", "mismatch_from_3p", "gap_from_3p", "seed_mismatches",
                 "motif", "target",
                 "tm_C", "dg_kcal", "tm_drop_C", "mutations", "span"):
        if name in text:
            out[name] = dict_column(inv, text[name])
        else:
            out[name] = np.asarray(nums[name])[inv]
    return out


class RowWriter:
    """Streams a table to TSV and Parquet."""

    def __init__(self, stack: contextlib.ExitStack, out_dir: Path, stem: str):
        self.tsv_path = out_dir / f"{stem}.tsv"
        self.pq_path = out_dir / f"{stem}.parquet"
        self._tsv = None
        self._pq = None
        self._stack = stack
        self.rows = 0

    def write(self, columns: dict[str, np.ndarray]) -> None:
        import pyarrow as pa
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        table = pa.table({k: v if isinstance(v, pa.Array) else pa.array(v) for k, v in columns.items()})
        if self._tsv is None:
            self._fh = open(self.tsv_path, "wb")
            self._fh.write(("\t".join(table.column_names) + "\n").encode())
            self._tsv = pacsv.CSVWriter(self._fh, table.schema, write_options=pacsv.WriteOptions(
                delimiter="\t", quoting_style="none", include_header=False))
            self._pq = pq.ParquetWriter(str(self.pq_path), table.schema, compression="zstd")
            self._stack.callback(self._close)
        self._tsv.write_table(table)
        self._pq.write_table(table)
        self.rows += len(table)

    def _close(self) -> None:
        if self._tsv is not None:
            self._tsv.close()
            self._fh.close()
            self._pq.close()



def concat_rows(parts: list[Path], out_dir: Path) -> None:
    """Concatenate shard row files, in shard order, into the final TSV and Parquet files."""
    import pyarrow.parquet as pq

    for stem in ("oligo_calls", "assay_calls"):
        tsv = out_dir / f"{stem}.tsv"
        with open(tsv, "wb") as out:
            for i, part in enumerate(parts):
                with open(part / f"{stem}.tsv", "rb") as fh:
                    header = fh.readline()
                    if i == 0:
                        out.write(header)
                    while chunk := fh.read(1 << 22):
                        out.write(chunk)
        pqp = out_dir / f"{stem}.parquet"
        writer = None
        for part in parts:
            table = pq.read_table(part / f"{stem}.parquet")
            if writer is None:
                writer = pq.ParquetWriter(str(pqp), table.schema, compression="zstd")
            writer.write_table(table)
        if writer is not None:
            writer.close()



class CallRows:
    """The two per-genome tables of a shard: genome x oligo (``oligo_calls``) and genome x assay
    (``assay_calls``), each as TSV and Parquet in ``rows_dir``."""

    def __init__(self, stack: contextlib.ExitStack, rows_dir: Path, checker: Checker):
        self.checker = checker
        rows_dir.mkdir(parents=True, exist_ok=True)
        self.oligo_rows = RowWriter(stack, rows_dir, "oligo_calls")
        self.assay_rows = RowWriter(stack, rows_dir, "assay_calls")
        self.oligo_names = [o.name for o in checker.oligos]
        self.oligo_roles = [o.role for o in checker.oligos]
        self.assay_names = [a.name for a in checker.assays.assays]
        self.oligo_assay = np.array([self.assay_names.index(o.oligo.assay) for o in checker.oligos])

    def write(self, ids: list[str], lineages: list[str], dates: list[str], res: BatchResult) -> None:
        """Append the rows of one checked batch."""
        checker = self.checker
        n_gen, n_ol = res.oligo_call.shape
        n_as = res.assay_call.shape[1]
        sc = site_columns(checker, res.oligo_site.ravel())
        lost = res.lost.ravel()
        if lost.any():
            muts = sc["mutations"].cast("string").to_numpy(zero_copy_only=False).astype(object)
            texts = np.array([" ".join(m[0] for m in ml) for ml in checker.lost], dtype=object)
            merged = np.where(lost > 0, texts[lost], muts)
            sc["mutations"] = dict_column(np.arange(len(merged)), merged)
        pos = res.oligo_pos.ravel()
        span = sc.pop("span")
        lin_values = sorted(set(lineages))
        lin_idx = np.array([lin_values.index(x) for x in lineages])
        date_values = sorted(set(dates))
        date_idx = np.array([date_values.index(x) for x in dates])
        self.oligo_rows.write({
            "genome": dict_column(np.repeat(np.arange(n_gen), n_ol), ids),
            "lineage": dict_column(np.repeat(lin_idx, n_ol), lin_values),
            "date": dict_column(np.repeat(date_idx, n_ol), date_values),
            "assay": dict_column(np.tile(self.oligo_assay, n_gen), self.assay_names),
            "oligo": dict_column(np.tile(np.arange(n_ol), n_gen), self.oligo_names),
            "role": dict_column(np.tile(np.arange(n_ol), n_gen), self.oligo_roles),
            "call": dict_column(res.oligo_call.ravel(), list(CALLS)),
            "reason": dict_column(res.oligo_reason.ravel(), checker.reasons),
            "start": np.where(pos >= 0, pos + 1, -1), "end": np.where(pos >= 0, pos + span, -1),
            **sc, "n_sites": res.oligo_nsites.ravel(),
        })
        amp = res.amplicon.reshape(-1, 2)
        self.assay_rows.write({
            "genome": dict_column(np.repeat(np.arange(n_gen), n_as), ids),
            "lineage": dict_column(np.repeat(lin_idx, n_as), lin_values),
            "date": dict_column(np.repeat(date_idx, n_as), date_values),
            "assay": dict_column(np.tile(np.arange(n_as), n_gen), self.assay_names),
            "call": dict_column(res.assay_call.ravel(), list(ASSAY_CALLS)),
            "reason": dict_column(res.assay_reason.ravel(), checker.reasons),
            "amplicon_start": np.where(amp[:, 0] >= 0, amp[:, 0] + 1, -1),
            "amplicon_end": amp[:, 1],
        })
