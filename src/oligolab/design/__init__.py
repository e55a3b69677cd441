"""`oligolab design`: CRISPR diagnostic assays (Cas12a or Cas13a guides with RPA, RT-LAMP or PCR primers) that
detect every genome of a collection and nothing in the off-target collections, computed with the same engine
and calls as `oligolab check`.

Library entry points: :func:`design` (returns a :class:`DesignResult`) and :func:`run_design` (also writes every
output). One module per concept: ``collection`` (genomes in reference coordinates), ``candidates`` (guides),
``selection`` (guide sets), ``primers`` with ``rpa``, ``lamp`` and ``pcr``, ``specificity``, ``scoring``,
``evaluate`` (coverage by the check), ``order`` (order sheet), ``outputs`` and ``report``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from .pipeline import CHEMISTRIES, DesignInputs, DesignOptions, DesignResult, design

__all__ = ["CHEMISTRIES", "DesignInputs", "DesignOptions", "DesignResult", "design", "run_design"]


def run_design(inputs: DesignInputs, out_dir: str | Path, options: DesignOptions = DesignOptions(),
               progress: Callable[[str, float], None] | None = None) -> DesignResult:
    """Design assays and write every output into ``out_dir`` (atomically: an interrupted or failed run leaves
    earlier files as they were)."""
    from .outputs import write_outputs

    result = design(inputs, options, progress)
    result.outputs = write_outputs(result, out_dir)
    return result
