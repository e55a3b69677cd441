"""Per-site sequence figures: GC, base runs, seed-duplex stability, immunostimulatory motifs."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from .chemistry import rc_rna


def gc_percent(seq: str) -> float:
    """GC content, percent."""
    return 100.0 * sum(ch in "GC" for ch in seq) / max(1, len(seq))


def longest_run(seq: str) -> int:
    """Longest run of one base."""
    best = run = 0
    prev = ""
    for ch in seq:
        run = run + 1 if ch == prev else 1
        prev = ch
        best = max(best, run)
    return best


@lru_cache(maxsize=65536)
def seed_duplex_dg(seed_rna: str) -> float:
    """ΔG (kcal/mol, 37 °C) of the guide seed (7 nt) paired with its complement (ViennaRNA duplexfold)."""
    import RNA

    return round(RNA.duplexfold(seed_rna, rc_rna(seed_rna)).energy, 2)


def immune_motifs(guide: str, sense: str, motifs: list[dict[str, Any]]) -> str:
    """Comma-separated immunostimulatory motifs (RNA letters) found in either strand."""
    return ",".join(m["motif"] for m in motifs if m["motif"] in guide or m["motif"] in sense)
