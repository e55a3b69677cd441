"""A whole check: read the inputs, check the genomes (in one process, or in shards on local processes or a
Dask cluster), merge the counts, add exclusivity, and write the tables, the summary and the report."""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..annotation import Annotation
from ..assays import read_assays
from ..errors import InputError
from ..lineages import Lineages, group_lineages, looks_like_pango
from ..sequences import Metadata, read_fasta, read_metadata, warn_missing_ids
from .aggregates import Aggregates
from .checker import Checker
from .genomes import genome_batches, split_genomes
from .offtarget import exclusivity
from .options import CheckInputs, CheckOptions
from .rows import CallRows, concat_rows
from .tables import summary_tables


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


@dataclass
class ShardResult:
    """What one shard of genomes sends back: counts (finalized, by name) and what it read."""

    aggregates: Aggregates
    genomes: int
    nucleotides: int
    ids: list[str]
    engine_stats: dict


def _setup(inputs: CheckInputs, options: CheckOptions) -> tuple[Checker, Metadata | None]:
    assays = read_assays(inputs.assays)
    reference = next(iter(read_fasta(inputs.reference)), None) if inputs.reference else None
    annotation = Annotation.from_genbank(inputs.annotation) if inputs.annotation else None
    metadata = read_metadata(inputs.metadata) if inputs.metadata else None
    return Checker(assays, reference=reference, annotation=annotation, options=options), metadata


class _Labels:
    """Lineage, month and date of each genome (from the metadata, or the id when ids are Pango lineages);
    refuses a genome id seen before."""

    def __init__(self, metadata: Metadata | None, lineage_from_id: bool | None):
        self.metadata = metadata
        self.lineage_from_id = lineage_from_id
        self.seen: dict[str, None] = {}

    def __call__(self, ids: list[str], source: str) -> tuple[list[str], list[str], list[str]]:
        metadata = self.metadata
        if self.lineage_from_id is None:
            self.lineage_from_id = metadata is None and looks_like_pango(ids)
        lin, months, dates = [], [], []
        for rid in ids:
            if rid in self.seen:
                raise InputError(source, f"duplicate record id '{rid}'", "give every genome a unique id", record=rid)
            self.seen[rid] = None
            value = metadata.lineage(rid) if metadata is not None else None
            lin.append(value or (rid if self.lineage_from_id else "unassigned"))
            months.append((metadata.month(rid) if metadata is not None else None) or "")
            d = metadata.date(rid) if metadata is not None else None
            dates.append(d.isoformat() if d else "")
        return lin, months, dates


def check_shard(inputs: CheckInputs, options: CheckOptions, rows_dir: str | Path, *,
                progress: Callable[[int, int], None] | None = None, checker: Checker | None = None,
                metadata: Metadata | None = None) -> ShardResult:
    """Check the genomes of ``inputs`` (one shard) and stream their rows into ``rows_dir``
    (oligo_calls and assay_calls as TSV and Parquet, written atomically); returns the shard's counts."""
    own = checker is None
    if checker is None:
        checker, metadata = _setup(inputs, options)
    agg = Aggregates(len(checker.oligos), len(checker.assays.assays))
    labels = _Labels(metadata, options.lineage_from_id)
    n_genomes = n_nt = 0
    with contextlib.ExitStack() as stack:
        rows = CallRows(stack, Path(rows_dir), checker)
        for batch in genome_batches(inputs.genomes, options.batch_nt):
            ids = [r.id for r in batch.records]
            lin, months, dates = labels(ids, batch.source)
            res = checker.process(batch.codes, batch.ends, batch.unknown_runs)[1]
            rows.write(ids, lin, dates, res)
            agg.add(lin, months, ids, res)
            n_genomes += len(ids)
            n_nt += int(len(batch.codes) - len(ids))
            if progress:
                progress(n_genomes, n_nt)
    agg.finalize(checker)
    stats = dict(checker.engine.stats)
    if own:
        checker.close()
    return ShardResult(agg, n_genomes, n_nt, list(labels.seen), stats)


def _shard_worker(inputs: CheckInputs, options: CheckOptions, rows_dir: str) -> ShardResult:
    """Entry point of a shard run in another process or on a Dask worker."""
    return check_shard(inputs, options, rows_dir)


def check(inputs: CheckInputs, options: CheckOptions, rows_dir: str | Path,
          progress: Callable[[int, int], None] | None = None) -> CheckResult:
    """Check assays against genomes (and off-target collections); returns the counts, tables and calls.

    The per-genome rows (genome x oligo, genome x assay) stream into ``rows_dir`` as they are made (a million
    genomes would not fit in memory); everything else is in the result, which :mod:`.outputs` writes.
    With ``options.shards > 1`` the genomes are split into shards checked in parallel processes through Dask
    (or on a Dask cluster named by ``options.dask_scheduler``); the result is the same as in one process.
    """
    import shutil
    import tempfile

    t0 = time.perf_counter()
    rows_dir = Path(rows_dir)
    checker, metadata = _setup(inputs, options)
    try:
        if options.shards <= 1 and not options.dask_scheduler:
            shard_results = [check_shard(inputs, options, rows_dir, progress=progress, checker=checker,
                                         metadata=metadata)]
        else:
            work = Path(tempfile.mkdtemp(prefix=".oligolab-shards-", dir=rows_dir))
            try:
                shards = split_genomes(inputs.genomes, max(1, options.shards), work)
                parts = [work / f"part{i:04d}" for i in range(len(shards))]
                shard_inputs = [CheckInputs(inputs.assays, files, inputs.metadata, inputs.reference,
                                            inputs.annotation, inputs.alias_key, []) for files in shards]
                shard_results = _run_shards(shard_inputs, options, parts)
                concat_rows(parts, rows_dir)
            finally:
                shutil.rmtree(work, True)
        result = _merge(inputs, options, checker, metadata, shard_results)
    finally:
        checker.close()
    result.seconds = time.perf_counter() - t0
    return result


def _merge(inputs: CheckInputs, options: CheckOptions, checker: Checker, metadata: Metadata | None,
           shard_results: list[ShardResult]) -> CheckResult:
    """One result from the shards' counts (in shard order), with exclusivity and the summary tables."""
    import warnings

    agg = Aggregates(len(checker.oligos), len(checker.assays.assays))
    seen: set[str] = set()
    n_genomes = n_nt = 0
    stats: Counter = Counter()
    for sr in shard_results:
        dup = next((i for i in sr.ids if i in seen), None)
        if dup is not None:
            raise InputError(inputs.genomes[0], f"duplicate record id '{dup}'", "give every genome a unique id",
                             record=dup)
        seen.update(sr.ids)
        agg.merge(sr.aggregates)
        n_genomes += sr.genomes
        n_nt += sr.nucleotides
        stats.update(sr.engine_stats)
    if n_genomes == 0:
        raise InputError(inputs.genomes[0] if inputs.genomes else None, "no genomes read", "give FASTA genomes")
    caught: list[str] = []
    if metadata is not None:
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            warn_missing_ids(metadata, seen)
            caught += [str(x.message) for x in w]
    ex_sites, ex_assays = exclusivity(checker, inputs.off_targets)
    lineages = Lineages(inputs.alias_key)
    groups = group_lineages(agg.lineages(), lineages, options.max_groups)
    result = CheckResult(checker, n_genomes, n_nt, agg, groups, ex_sites, ex_assays, 0.0, inputs,
                         engine_stats=dict(stats), warnings=caught)
    result.tables = summary_tables(result, lineages)
    return result


def _run_shards(shard_inputs: list[CheckInputs], options: CheckOptions, parts: list[Path]) -> list[ShardResult]:
    """Run shards with Dask: local worker processes, or the cluster at ``options.dask_scheduler``."""
    import dask

    worker_options = CheckOptions(**{**options.__dict__, "shards": 1, "dask_scheduler": None,
                                     "threads": options.threads or 1})
    tasks = [dask.delayed(_shard_worker)(inp, worker_options, str(part)) for inp, part in zip(shard_inputs, parts)]
    if options.dask_scheduler:
        try:
            from distributed import Client
        except ImportError:
            raise InputError(None, "--dask-scheduler needs the 'distributed' package",
                             "pip install distributed, or use --shards N on one machine") from None
        with Client(options.dask_scheduler) as client:
            return list(client.compute(tasks, sync=True))
    return list(dask.compute(*tasks, scheduler="processes", num_workers=min(len(tasks), options.shards)))



