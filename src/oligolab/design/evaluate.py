"""Coverage of designed assays computed by `oligolab check` itself: the shortlisted assays are run through the
check's :class:`~oligolab.check.Checker` over every target genome (one streaming pass for all of them), and
the per-genome assay calls (detected / at risk / no data / not detected) are what the design reports and ranks
by. Running `oligolab check` on the written assay table gives the same calls.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..assays import AssaySet
from ..check import ASSAY_CALLS, Checker, CheckOptions, genome_batches
from ..sequences import SeqRecord


@dataclass
class CheckCoverage:
    """Assay calls (codes into ``ASSAY_CALLS``) for every genome: ``calls[genome, assay]``."""

    assay_names: list[str]
    genome_ids: list[str]
    calls: np.ndarray
    oligo_names: list[str] = field(default_factory=list)  #: searched oligos (FIP/BIP halves as NAME:F1c ...)
    oligo_calls: np.ndarray | None = None  #: (genomes, searched oligos) oligo call codes (knowledge.CALLS)

    def counts(self, assay: int, rows: np.ndarray | None = None) -> dict[str, int]:
        c = self.calls[:, assay] if rows is None else self.calls[rows, assay]
        return {name: int((c == k).sum()) for k, name in enumerate(ASSAY_CALLS)}

    def index(self, name: str) -> int:
        return self.assay_names.index(name)


def check_coverage(
    assays: AssaySet,
    genome_paths: list[str | Path],
    reference: SeqRecord | None,
    options: CheckOptions,
    keep: Callable[[str], bool] | None = None,
    progress: Callable[[int], None] | None = None,
) -> CheckCoverage:
    """Per-genome assay calls of ``assays`` by the check machinery (``keep`` selects genomes by id)."""
    checker = Checker(assays, reference=reference, options=options)
    ids: list[str] = []
    parts: list[np.ndarray] = []
    oligo_parts: list[np.ndarray] = []
    try:
        for batch in genome_batches(genome_paths, options.batch_nt, keep):
            res = checker.process(batch.codes, batch.ends, batch.unknown_runs)[1]
            parts.append(res.assay_call.copy())
            oligo_parts.append(res.oligo_call.copy())
            ids += [r.id for r in batch.records]
            if progress is not None:
                progress(len(ids))
    finally:
        checker.close()
    calls = np.concatenate(parts) if parts else np.zeros((0, len(assays.assays)), np.int8)
    oligo_calls = np.concatenate(oligo_parts) if oligo_parts else np.zeros((0, len(checker.oligos)), np.int8)
    return CheckCoverage([a.name for a in assays.assays], ids, calls, [o.name for o in checker.oligos], oligo_calls)
