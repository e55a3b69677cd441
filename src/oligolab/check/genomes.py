"""Genomes as the engine reads them: FASTA records packed into batches of about ``batch_nt`` nucleotides,
with the runs of unknown bases of each genome."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..engine import pack_batch
from ..sequences import SeqRecord, read_fasta


@dataclass
class GenomeBatch:
    records: list[SeqRecord]
    codes: np.ndarray
    ends: np.ndarray
    unknown_runs: list[np.ndarray]
    source: str


def unknown_run_table(codes: np.ndarray) -> np.ndarray:
    """(start, end) of runs of unknown bases (code 4)."""
    unk = codes == 4
    if not unk.any():
        return np.zeros((0, 2), dtype=np.int64)
    d = np.diff(np.concatenate([[0], unk.astype(np.int8), [0]]))
    return np.stack([np.flatnonzero(d == 1), np.flatnonzero(d == -1)], axis=1)


def genome_batches(
    paths: list[str | Path], batch_nt: int, keep: Callable[[str], bool] | None = None
) -> Iterator[GenomeBatch]:
    """Genomes from several FASTA files (those whose id ``keep`` accepts), in batches of about ``batch_nt``
    nucleotides."""
    records: list[SeqRecord] = []
    encoded: list[np.ndarray] = []
    size = 0
    source = ""
    for path in paths:
        source = str(path)
        for rec in read_fasta(path):
            if keep is not None and not keep(rec.id):
                continue
            c = rec.codes()
            records.append(rec)
            encoded.append(c)
            size += len(c)
            if size >= batch_nt:
                codes, ends = pack_batch(encoded)
                yield GenomeBatch(records, codes, ends, [unknown_run_table(x) for x in encoded], source)
                records, encoded, size = [], [], 0
    if records:
        codes, ends = pack_batch(encoded)
        yield GenomeBatch(records, codes, ends, [unknown_run_table(x) for x in encoded], source)
