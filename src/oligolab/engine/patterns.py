"""Oligos compiled for the engine (IUPAC masks, context positions, bit-parallel match masks) and the
engine's limits."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..sequences import IUPAC_MASK, UNKNOWN, reverse_complement

MAX_PATTERN = 64  #: longest pattern (context included), one machine word for the bit-parallel filter
MAX_GAPS = 2  #: most gap nucleotides per site the engine can search for
MAX_MISMATCHES = 8  #: most differences per site the engine can search for (every command's limit)


@dataclass
class PatternSet:
    """Oligos compiled for the engine: two pattern-strands per oligo (index ``2*i`` is +, ``2*i+1`` is -)."""

    names: list[str]
    sequences: list[str]  #: IUPAC, oligo orientation, context included
    context5: np.ndarray  #: number of 5' context positions per oligo
    context3: np.ndarray  #: number of 3' context positions per oligo
    lengths: np.ndarray = field(init=False)  #: per pattern-strand
    masks: np.ndarray = field(init=False)  #: (n_patterns, MAX_PATTERN) uint8 IUPAC masks, pattern orientation
    is_context: np.ndarray = field(init=False)  #: (n_patterns, MAX_PATTERN) bool
    peq: np.ndarray = field(init=False)  #: (n_patterns, 6) uint64 match masks per genome code

    def __post_init__(self) -> None:
        n = len(self.sequences)
        self.context5 = np.asarray(self.context5, dtype=np.int64)
        self.context3 = np.asarray(self.context3, dtype=np.int64)
        self.lengths = np.zeros(2 * n, dtype=np.int64)
        self.masks = np.zeros((2 * n, MAX_PATTERN), dtype=np.uint8)
        self.is_context = np.zeros((2 * n, MAX_PATTERN), dtype=np.bool_)
        self.peq = np.zeros((2 * n, 6), dtype=np.uint64)
        for i, seq in enumerate(self.sequences):
            seq = seq.upper().replace("U", "T")
            if not 1 <= len(seq) <= MAX_PATTERN:
                raise ValueError(f"pattern {self.names[i]!r} has {len(seq)} nt; the engine takes 1..{MAX_PATTERN}")
            ctx = np.zeros(len(seq), dtype=bool)
            ctx[: self.context5[i]] = True
            if self.context3[i]:
                ctx[len(seq) - self.context3[i] :] = True
            for strand, (s, c) in enumerate(((seq, ctx), (reverse_complement(seq), ctx[::-1]))):
                j = 2 * i + strand
                m = len(s)
                self.lengths[j] = m
                for pos, ch in enumerate(s):
                    mask = 15 if c[pos] else IUPAC_MASK[ch]
                    self.masks[j, pos] = mask
                    self.is_context[j, pos] = c[pos]
                    bit = np.uint64(1) << np.uint64(pos)
                    for code in range(4):
                        if mask & (1 << code):
                            self.peq[j, code] |= bit
                    if c[pos]:
                        self.peq[j, UNKNOWN] |= bit

    @property
    def n_patterns(self) -> int:
        return len(self.lengths)

    @property
    def max_length(self) -> int:
        return int(self.lengths.max()) if len(self.lengths) else 0

    @classmethod
    def from_oligos(cls, names: list[str], sequences: list[str], context5=None, context3=None) -> PatternSet:
        n = len(sequences)
        return cls(
            list(names),
            list(sequences),
            np.zeros(n, np.int64) if context5 is None else context5,
            np.zeros(n, np.int64) if context3 is None else context3,
        )
