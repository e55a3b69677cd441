"""A whole check: read the inputs, cut the genomes into chunks, check the chunks (here, on local worker processes or
on a Dask cluster), keep each chunk's results on disk as it completes, merge the counts in chunk order, add
exclusivity and the summary tables. The same input gives the same result however it ran (tested: one process, all
cores, a two-worker Dask cluster, a run resumed after a kill)."""

from __future__ import annotations

import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..lineages import Lineages, group_lineages
from ..sequences import Metadata, read_metadata, warn_missing_ids
from .aggregates import Aggregates
from .checker import Checker
from .chunks import Chunk, Labels, read_ahead, read_chunks
from .offtarget import exclusivity
from .options import CheckInputs, CheckOptions
from .parallel import INLINE_NT, InlineThenProcesses, executor
from .previous import compare
from .rows import ASSAY_COLUMNS, OLIGO_COLUMNS, tsv_header
from .store import ChunkStore, run_key
from .tables import summary_tables
from .worker import CheckSetup, ChunkResult, check_chunk, checker_for

Progress = Callable[[int, int], None]


@dataclass
class CheckResult:
    checker: Checker
    genomes: int
    nucleotides: int
    aggregates: Aggregates
    lineage_groups: dict[str, str]
    exclusivity_sites: Any  #: pandas DataFrame
    exclusivity_assays: Any  #: pandas DataFrame
    seconds: float
    inputs: CheckInputs
    outputs: dict[str, str] = field(default_factory=dict)
    engine_stats: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    tables: dict[str, Any] = field(default_factory=dict)  #: summary tables (pandas DataFrames) by file stem
    run: dict[str, Any] = field(default_factory=dict)  #: how it ran: workers, chunks, resumed chunks
    watch: dict[str, Any] = field(default_factory=dict)  #: per assay, what changed since ``inputs.previous``


class _Merger:
    """Adds chunk counts to the run's totals in chunk order, whatever order chunks complete in."""

    def __init__(self, aggregates: Aggregates, progress: Progress | None):
        self.aggregates = aggregates
        self.progress = progress
        self.pending: dict[int, dict[str, Any]] = {}
        self.next = 0
        self.genomes = self.nucleotides = self.distinct = 0
        self.stats: Counter = Counter()
        self.peak_rss_mib = 0.0

    def add(self, summary: dict[str, Any]) -> None:
        self.pending[summary["index"]] = summary
        while self.next in self.pending:
            s = self.pending.pop(self.next)
            self.aggregates.merge(s["aggregates"])
            self.genomes += s["genomes"]
            self.nucleotides += s["nucleotides"]
            self.distinct += s["distinct_genomes"]
            self.stats.update(s["stats"])
            self.peak_rss_mib = max(self.peak_rss_mib, s.get("peak_rss_mib", 0.0))
            self.next += 1
            if self.progress:
                self.progress(self.genomes, self.nucleotides)


def _summary(result: ChunkResult) -> dict[str, Any]:
    return {k: v for k, v in result.__dict__.items() if not k.endswith(("parquet", "tsv"))}


def check(
    inputs: CheckInputs,
    options: CheckOptions,
    rows_dir: str | Path,
    progress: Progress | None = None,
    work_dir: str | Path | None = None,
) -> CheckResult:
    """Check assays against genomes (and off-target collections); returns the counts, tables and calls.

    The per-genome tables go into ``rows_dir`` (``oligo_calls/`` and ``assay_calls/`` Parquet datasets, and TSV
    files with the rows that are not 'binds' / 'detected'); everything else is in the result, which
    :mod:`.outputs` writes. Chunk results are kept in ``work_dir`` while the check runs; a run given the work folder
    of an interrupted run with the same inputs and options checks only the chunks still missing.
    """
    t0 = time.perf_counter()
    setup = CheckSetup(
        tuple(map(str, inputs.assays)),
        str(inputs.reference) if inputs.reference else None,
        str(inputs.annotation) if inputs.annotation else None,
        options,
    )
    metadata = read_metadata(inputs.metadata) if inputs.metadata else None
    checker = checker_for(setup)  # validates assays and reference before any genome is read
    temporary = work_dir is None
    store = ChunkStore(
        Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix=".chunks-", dir=rows_dir)),
        run_key(inputs, options),
    )
    try:
        merger = _Merger(Aggregates(len(checker.oligos), len(checker.assays.assays)), progress)
        labels = Labels(metadata, options.lineage_from_id)
        with warnings.catch_warnings(record=True) as reading:  # e.g. a .gz name on a plain file: said in the result
            warnings.simplefilter("always", UserWarning)
            run = _check_chunks(setup, read_ahead(read_chunks(inputs.genomes, options.batch_nt, labels)), store, merger)
        if merger.genomes == 0:
            raise InputError(inputs.genomes[0] if inputs.genomes else None, "no genomes read", "give FASTA genomes")
        store.move_rows(Path(rows_dir), tsv_header(OLIGO_COLUMNS), tsv_header(ASSAY_COLUMNS))
        result = _finish(inputs, options, checker, metadata, merger, labels.seen)
        result.warnings = list(dict.fromkeys([str(w.message) for w in reading] + result.warnings))
        if inputs.previous:
            result.tables["changes"], result.watch = compare(
                Path(rows_dir), Path(inputs.previous), result.tables["escape_mutations"]
            )
    finally:
        store.remove() if temporary else store.close()
    inline_cpu_s = run.pop("inline_cpu_s")  # counted in this process's own CPU time, not a worker's
    result.run = {
        **run,
        "resumed_chunks": store.resumed,
        "distinct_genomes": merger.distinct,
        "worker_cpu_s": round(max(0.0, merger.stats.get("cpu_seconds", 0.0) - inline_cpu_s), 2),
        "worker_peak_rss_mib": round(merger.peak_rss_mib, 1),
    }
    result.seconds = time.perf_counter() - t0
    return result


def _check_chunks(setup: CheckSetup, chunks: Any, store: ChunkStore, merger: _Merger) -> dict[str, Any]:
    """Check every chunk not already in the store; store and merge each result as it comes."""
    options = setup.options
    where = executor(options.workers, options.cluster, -(-INLINE_NT // options.batch_nt))
    pool_setup = setup  # a worker process or Dask worker among several: one engine thread each
    if options.threads is None and (where.workers > 1 or isinstance(where, InlineThenProcesses)):
        pool_setup = CheckSetup(
            setup.assays, setup.reference, setup.annotation, CheckOptions(**{**options.__dict__, "threads": 1})
        )
    n_chunks = 0

    def todo() -> Any:
        nonlocal n_chunks
        for chunk in chunks:
            n_chunks += 1
            if store.done(chunk.index):
                merger.add(store.load(chunk.index))
            else:
                yield chunk

    try:
        for result in where.map_unordered(partial(check_chunk, setup), todo(), partial(check_chunk, pool_setup)):
            store.save(result)
            merger.add(_summary(result))
    finally:
        where.close()
    return {"workers": where.workers, "where": where.name, "chunks": n_chunks, "inline_cpu_s": where.inline_cpu_s}


def _finish(
    inputs: CheckInputs,
    options: CheckOptions,
    checker: Checker,
    metadata: Metadata | None,
    merger: _Merger,
    ids: set[str],
) -> CheckResult:
    """The result from the merged counts, with exclusivity and the summary tables (``ids``: every genome read)."""
    caught: list[str] = []
    if metadata is not None:
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            warn_missing_ids(metadata, ids)
            caught += [str(x.message) for x in w]
    ex_sites, ex_assays = exclusivity(checker, inputs.off_targets)
    lineages = Lineages(inputs.alias_key)
    agg = merger.aggregates
    groups = group_lineages(agg.lineages(), lineages, options.max_groups)
    result = CheckResult(
        checker,
        merger.genomes,
        merger.nucleotides,
        agg,
        groups,
        ex_sites,
        ex_assays,
        0.0,
        inputs,
        engine_stats=dict(merger.stats),
        warnings=caught,
    )
    result.tables = summary_tables(result, lineages)
    return result


__all__ = ["Chunk", "CheckResult", "check"]
