"""What goes into the engine (genomes packed into one code array per batch) and what comes out (hit rows
and the table of distinct sites they refer to)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..sequences import SEPARATOR
from .patterns import MAX_GAPS, MAX_PATTERN

SITE_FIELDS = (
    "pattern",
    "span",
    "mismatches",
    "mm_mask",
    "unknown",
    "unk_mask",
    "gaps",
    "gap1_pos",
    "gap1_len",
    "gap2_pos",
    "gap2_len",
    "cost",
)


@dataclass
class SiteTable:
    """Distinct sites (a pattern-strand aligned to a window's content); rows are referenced by site id."""

    pattern: np.ndarray
    span: np.ndarray  #: genome bases covered
    mismatches: np.ndarray
    mm_mask: np.ndarray  #: uint64, bit i = pattern position i mismatched
    unknown: np.ndarray
    unk_mask: np.ndarray
    gaps: np.ndarray  #: gap nucleotides
    gap1_pos: np.ndarray  #: pattern position before which the gap sits (-1 = none)
    gap1_len: np.ndarray  #: + genome insertion, - genome deletion (oligo bases unpaired)
    gap2_pos: np.ndarray
    gap2_len: np.ndarray
    cost: np.ndarray
    target: np.ndarray  #: (n, MAX_PATTERN + MAX_GAPS) uint8 genome codes of the site (top strand), 255 pad

    @classmethod
    def empty(cls) -> SiteTable:
        z = np.zeros(0, dtype=np.int32)
        return cls(
            z,
            z,
            z,
            np.zeros(0, np.uint64),
            z,
            np.zeros(0, np.uint64),
            z,
            z,
            z,
            z,
            z,
            z,
            np.zeros((0, MAX_PATTERN + MAX_GAPS), np.uint8),
        )

    def __len__(self) -> int:
        return len(self.pattern)

    def extend(self, raw_int: np.ndarray, raw_masks: np.ndarray, raw_target: np.ndarray) -> None:
        """Append rows from the kernel's output arrays (see :func:`.kernels.verify_start`)."""
        cols = [
            self.pattern,
            self.span,
            self.mismatches,
            None,
            self.unknown,
            None,
            self.gaps,
            self.gap1_pos,
            self.gap1_len,
            self.gap2_pos,
            self.gap2_len,
            self.cost,
        ]
        int_idx = {
            "pattern": 0,
            "span": 1,
            "mismatches": 2,
            "unknown": 3,
            "gaps": 4,
            "gap1_pos": 5,
            "gap1_len": 6,
            "gap2_pos": 7,
            "gap2_len": 8,
            "cost": 9,
        }
        for name, idx in int_idx.items():
            setattr(self, name, np.concatenate([getattr(self, name), raw_int[:, idx].astype(np.int32)]))
        self.mm_mask = np.concatenate([self.mm_mask, raw_masks[:, 0]])
        self.unk_mask = np.concatenate([self.unk_mask, raw_masks[:, 1]])
        self.target = np.concatenate([self.target, raw_target])
        del cols

    def target_codes(self, site: int) -> np.ndarray:
        row = self.target[site]
        return row[: self.span[site]]


@dataclass
class Hits:
    """Hit rows: one per (genome, site start, site id). ``genome`` indexes the genomes in input order."""

    genome: np.ndarray
    pos: np.ndarray
    site: np.ndarray

    def __len__(self) -> int:
        return len(self.genome)

    @classmethod
    def concat(cls, parts: list[Hits]) -> Hits:
        if not parts:
            z = np.zeros(0, np.int32)
            return cls(z, z, z)
        return cls(
            np.concatenate([p.genome for p in parts]),
            np.concatenate([p.pos for p in parts]),
            np.concatenate([p.site for p in parts]),
        )


def pack_batch(seqs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate encoded sequences with a separator after each; returns (codes, genome_ends)."""
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    total = int(lengths.sum() + len(seqs))
    codes = np.empty(total, dtype=np.uint8)
    ends = np.empty(len(seqs), dtype=np.int64)
    o = 0
    for i, s in enumerate(seqs):
        codes[o : o + len(s)] = s
        o += len(s)
        ends[i] = o
        codes[o] = SEPARATOR
        o += 1
    return codes, ends
