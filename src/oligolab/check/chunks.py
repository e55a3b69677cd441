"""The collection cut into chunks: the unit of work a worker checks and the unit of results kept on disk.

Chunks are cut on the reading side (in input order, about ``chunk_nt`` nucleotides each), so the same input and
options always give the same chunks: a chunk's results are the same whichever worker checked it, and an interrupted
run resumes by skipping the chunks already done.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..lineages import looks_like_pango
from ..sequences import SEPARATOR, Metadata, encode, read_fasta


@dataclass
class Chunk:
    """Genomes of one chunk, packed for the engine, with their labels."""

    index: int
    ids: list[str]
    lineages: list[str]
    months: list[str]  #: 'YYYY-MM' or ''
    dates: list[str]  #: ISO date or ''
    text: bytes  #: the genomes' letters, each followed by a newline (encoded by the worker, not the reader)
    ends: np.ndarray  #: offset of the newline after each genome

    @property
    def nucleotides(self) -> int:
        return int(len(self.text) - len(self.ends))

    def codes(self) -> np.ndarray:
        """The genomes as engine codes packed like :func:`oligolab.engine.pack_batch` (a separator after each)."""
        codes = encode(self.text)
        codes[self.ends] = SEPARATOR
        return codes


def _chunk(index: int, ids: list[str], sources: list[Path], seqs: list[bytes], labels: Labels) -> Chunk:
    ends = np.cumsum([len(s) + 1 for s in seqs], dtype=np.int64) - 1
    return Chunk(index, ids, *labels(ids, sources), b"\n".join(seqs) + b"\n", ends)


class Labels:
    """Lineage, month and date of each genome (from the metadata, or the id when ids are Pango lineages, as
    judged on the first chunk); refuses a genome id seen before."""

    def __init__(self, metadata: Metadata | None, lineage_from_id: bool | None):
        self.metadata = metadata
        self.lineage_from_id = lineage_from_id
        self.seen: set[str] = set()

    def __call__(self, ids: list[str], sources: list[Path]) -> tuple[list[str], list[str], list[str]]:
        metadata = self.metadata
        if self.lineage_from_id is None:
            self.lineage_from_id = metadata is None and looks_like_pango(ids)
        lineages, months, dates = [], [], []
        for rid, source in zip(ids, sources):
            if rid in self.seen:
                raise InputError(source, f"duplicate record id '{rid}'", "give every genome a unique id", record=rid)
            self.seen.add(rid)
            d = metadata.date(rid) if metadata is not None else None
            lineage = metadata.lineage(rid) if metadata is not None else None
            lineages.append(lineage or (rid if self.lineage_from_id else "unassigned"))
            months.append((metadata.month(rid) if metadata is not None else None) or "")
            dates.append(d.isoformat() if d else "")
        return lineages, months, dates


def read_chunks(paths: list[str | Path], chunk_nt: int, labels: Labels) -> Iterator[Chunk]:
    """The genomes of several FASTA files as chunks of about ``chunk_nt`` nucleotides, in input order."""
    ids: list[str] = []
    sources: list[Path] = []
    seqs: list[bytes] = []
    size = 0
    index = 0
    for path in paths:
        source = Path(path)
        for rec in read_fasta(source):
            ids.append(rec.id)
            sources.append(source)
            seqs.append(rec.seq)
            size += len(rec.seq)
            if size >= chunk_nt:
                yield _chunk(index, ids, sources, seqs, labels)
                ids, sources, seqs, size = [], [], [], 0
                index += 1
    if ids:
        yield _chunk(index, ids, sources, seqs, labels)


def read_ahead(chunks: Iterator[Chunk]) -> Iterator[Chunk]:
    """``chunks``, the next one read in a thread while the caller checks this one (decompression and the engine's
    search release the GIL, so reading costs almost no wall time). Chunks and errors come in the order reading
    gives them; closing this iterator stops the thread."""
    ahead: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()
    end = object()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                ahead.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for chunk in chunks:
                if not put(chunk):
                    return
        except BaseException as exc:  # handed to the caller, raised there
            put(exc)
            return
        put(end)

    thread = threading.Thread(target=read, name="oligolab-read-ahead", daemon=True)
    thread.start()
    try:
        while (item := ahead.get()) is not end:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()
