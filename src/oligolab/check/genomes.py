"""Genomes as the engine reads them: FASTA records packed into batches of about ``batch_nt`` nucleotides,
with the runs of unknown bases of each genome; and the split of a collection into shards."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

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


def unknown_runs(codes: np.ndarray) -> np.ndarray:
    """(start, end) of runs of unknown bases (code 4)."""
    unk = codes == 4
    if not unk.any():
        return np.zeros((0, 2), dtype=np.int64)
    d = np.diff(np.concatenate([[0], unk.astype(np.int8), [0]]))
    return np.stack([np.flatnonzero(d == 1), np.flatnonzero(d == -1)], axis=1)


def genome_batches(paths: list[str | Path], batch_nt: int,
                   keep: Callable[[str], bool] | None = None) -> Iterator[GenomeBatch]:
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
                yield GenomeBatch(records, codes, ends, [unknown_runs(x) for x in encoded], source)
                records, encoded, size = [], [], 0
    if records:
        codes, ends = pack_batch(encoded)
        yield GenomeBatch(records, codes, ends, [unknown_runs(x) for x in encoded], source)



def split_genomes(paths: list[str | Path], n: int, workdir: Path) -> list[list[Path]]:
    """Shards of the genome input: whole files when there are at least ``n``; otherwise the records are
    split into ``n`` contiguous blocks written as temporary FASTA files (input order is kept)."""
    paths = [Path(p) for p in paths]
    if len(paths) >= n:
        k, r = divmod(len(paths), n)
        out, i = [], 0
        for s in range(n):
            size = k + (1 if s < r else 0)
            out.append(paths[i:i + size])
            i += size
        return out
    total = sum(1 for p in paths for _ in read_fasta(p))
    per = -(-total // n)
    shards, fh, count, idx = [], None, 0, 0
    for p in paths:
        for rec in read_fasta(p, keep_gaps=False):
            if fh is None or count == per:
                if fh is not None:
                    fh.close()
                path = workdir / f"shard{idx:04d}.fa"
                shards.append([path])
                fh = open(path, "w")
                idx += 1
                count = 0
            fh.write(f">{rec.id} {rec.description}\n{rec.text()}\n")
            count += 1
    if fh is not None:
        fh.close()
    return shards

