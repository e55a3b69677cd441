"""Per-site sequence figures, vectorised over all candidates: GC, base runs, seed-duplex stability,
immunostimulatory motifs."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..models.sirna_efficacy import duplex_dg


def letters(seqs: list[str], length: int) -> np.ndarray:
    """(n, length) byte codes of equal-length sequences."""
    if not seqs:
        return np.zeros((0, length), dtype=np.uint8)
    return np.frombuffer("".join(seqs).encode(), dtype=np.uint8).reshape(len(seqs), length)


def gc_percent(seqs: list[str], length: int) -> np.ndarray:
    """GC content of each sequence, percent."""
    b = letters(seqs, length)
    return 100.0 * np.isin(b, (ord("G"), ord("C"))).mean(1) if len(seqs) else np.zeros(0)


def longest_run(seqs: list[str], length: int) -> np.ndarray:
    """Longest run of one base in each sequence."""
    b = letters(seqs, length)
    best = np.ones(len(seqs), dtype=np.int64)
    cur = np.ones(len(seqs), dtype=np.int64)
    for j in range(1, length):
        cur = np.where(b[:, j] == b[:, j - 1], cur + 1, 1)
        best = np.maximum(best, cur)
    return best


def seed_duplex_dg(guides: list[str]) -> np.ndarray:
    """ΔG (kcal/mol, 37 °C) of each guide's seed (nt 2-8) paired with its complement: nearest-neighbour sum
    (Xia et al. 1998), as Ui-Tei et al. 2008 (Nucleic Acids Res 36:7100) rank seed-duplex stability; stronger
    (more negative) seed duplexes give more miRNA-like off-targets."""
    return np.round(duplex_dg([g[1:8] for g in guides]), 2)


def immune_motifs(guide: str, sense: str, motifs: list[dict[str, Any]]) -> str:
    """Comma-separated immunostimulatory motifs (RNA letters) found in either strand."""
    return ",".join(m["motif"] for m in motifs if m["motif"] in guide or m["motif"] in sense)
