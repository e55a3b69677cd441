"""Checking one chunk of genomes, wherever it runs (this process, a local worker process or a Dask worker): the
result holds the chunk's rows (Parquet bytes for the full genome x oligo and genome x assay tables, TSV bytes for
the rows a person opens) and its counts, so the driver only stores and merges."""

from __future__ import annotations

import hashlib
import resource
import time
from dataclasses import dataclass, field, fields, replace

import numpy as np

from ..annotation import Annotation
from ..assays import read_assays
from ..engine import pack_batch
from ..sequences import read_fasta
from .aggregates import Aggregates
from .checker import BatchResult, Checker
from .chunks import Chunk
from .options import CheckOptions
from .rows import chunk_tables, parquet_bytes, tsv_bytes


@dataclass(frozen=True)
class CheckSetup:
    """What a worker needs to build its :class:`Checker`: file names and options (small, picklable)."""

    assays: tuple[str, ...]
    reference: str | None
    annotation: str | None
    options: CheckOptions

    def key(self) -> str:
        return repr(
            (
                self.assays,
                self.reference,
                self.annotation,
                tuple(getattr(self.options, f.name) for f in fields(self.options)),
            )
        )

    def build(self) -> Checker:
        reference = next(iter(read_fasta(self.reference)), None) if self.reference else None
        annotation = Annotation.from_genbank(self.annotation) if self.annotation else None
        return Checker(read_assays(list(self.assays)), reference=reference, annotation=annotation, options=self.options)


_CHECKERS: dict[str, Checker] = {}  #: one checker per setup in each process, kept between chunks


def checker_for(setup: CheckSetup) -> Checker:
    """This process's checker for ``setup`` (built on first use; its caches serve every later chunk)."""
    key = setup.key()
    checker = _CHECKERS.get(key)
    if checker is None:
        for old in _CHECKERS.values():
            old.close()
        _CHECKERS.clear()
        checker = _CHECKERS[key] = setup.build()
    return checker


@dataclass
class ChunkResult:
    """One checked chunk: rows as file bytes, counts, and what it cost."""

    index: int
    oligo_parquet: bytes
    assay_parquet: bytes
    oligo_tsv: bytes  #: rows whose call is not 'binds' (no header)
    assay_tsv: bytes  #: rows whose call is not 'detected' (no header)
    aggregates: Aggregates
    genomes: int
    nucleotides: int
    distinct_genomes: int
    stats: dict = field(default_factory=dict)
    peak_rss_mib: float = 0.0  #: the worker process's peak resident memory so far


def check_chunk(setup: CheckSetup, chunk: Chunk) -> ChunkResult:
    """Check a chunk (identical genomes once), returning its rows and counts."""
    cpu0 = time.process_time()
    checker = checker_for(setup)
    res, distinct = process_distinct(checker, chunk.codes(), chunk.ends)
    causes = checker.causes(res)
    oligo_rows, assay_rows = chunk_tables(checker, chunk.ids, chunk.lineages, chunk.dates, res, causes)
    agg = Aggregates(len(checker.oligos), len(checker.assays.assays))
    agg.add(chunk.lineages, chunk.months, chunk.ids, res, chunk.dates if any(chunk.dates) else None, causes)
    agg.finalize(checker)
    result = ChunkResult(
        chunk.index,
        parquet_bytes(oligo_rows),
        parquet_bytes(assay_rows),
        tsv_bytes(oligo_rows, "binds"),
        tsv_bytes(assay_rows, "detected"),
        agg,
        len(chunk.ids),
        chunk.nucleotides,
        distinct,
    )
    result.stats = {**checker.engine.stats, "cpu_seconds": time.process_time() - cpu0}
    result.peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    checker.engine.stats = dict.fromkeys(checker.engine.stats, 0)
    checker.trim()
    return result


def process_distinct(checker: Checker, codes: np.ndarray, ends: np.ndarray) -> tuple[BatchResult, int]:
    """Check each distinct genome of a batch once and give every genome its copy's result; returns the result
    (aligned on the batch's genomes) and the number of distinct genomes."""
    starts = np.concatenate([[0], ends[:-1] + 1]).astype(np.int64)
    first: dict[bytes, int] = {}
    which = np.empty(len(ends), dtype=np.int64)
    for g, (s, e) in enumerate(zip(starts, ends)):
        which[g] = first.setdefault(hashlib.blake2b(codes[s:e].tobytes(), digest_size=16).digest(), len(first))
    if len(first) == len(ends):
        return checker.process(codes, ends)[1], len(ends)
    keep = np.unique(which, return_index=True)[1]
    sub_codes, sub_ends = pack_batch([codes[starts[g] : ends[g]] for g in keep])
    res = checker.process(sub_codes, sub_ends)[1]
    per_genome = {
        f.name: getattr(res, f.name)[which] for f in fields(res) if f.name not in ("genome_index", "instances")
    }
    return replace(res, genome_index=np.arange(len(ends)), **per_genome), len(first)
