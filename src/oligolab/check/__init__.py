"""`oligolab check`: does an assay still detect what it must (inclusivity, per genome, lineage and month),
which oligo is losing binding and why (mismatch positions from the 3' end, seed, PAM, Tm drop, the mutations
behind it), and what else it could detect (exclusivity against off-target collections).

Data flows one way, readers -> engine -> calls -> aggregates -> tables and report:

* :mod:`.options`: :class:`CheckInputs` (the files) and :class:`CheckOptions` (limits, rules, parallelism).
* :mod:`.chunks`: the collection read and cut into chunks (the unit of work and of stored results), with each
  genome's lineage, month and date; :mod:`.genomes`: genome batches for other capabilities (design).
* :mod:`.oligos`: the sequences searched (tails stripped, LAMP FIP/BIP halves, guides with their PAM/PFS).
* :mod:`.sites`: facts of each distinct site and its call by the shared site-call rule (:mod:`oligolab.sitecall`,
  the same rule `design` uses), Tm and ΔG on the template with its flanks.
* :mod:`.mutations`: the mutations under a weakened site or behind a lost one, named against the reference
  (adjacent substitutions as one event).
* :mod:`.assaycalls`: assay calls from oligo calls (roles, amplicon geometry, T7 transcript strand).
* :mod:`.checker`: :class:`Checker`, the per-batch work: search, the best site near the expected place (found by
  alignment whatever the search limit), design mismatches, calls.
* :mod:`.worker`: one chunk checked (identical genomes once) into rows and counts; :mod:`.rows`: the rows as
  Parquet parts and TSV lines; :mod:`.aggregates`: the counts.
* :mod:`.parallel`: where chunks run (this process, local worker processes, a Dask cluster); :mod:`.store`: chunk
  results on disk while a run goes on (resume after an interruption).
* :mod:`.pipeline`: :func:`check`, a whole check returning its result; :mod:`.offtarget`: exclusivity.
* :mod:`.tables`: the summary tables and ``summary.json``; :mod:`.report`: the HTML report; :mod:`.previous`: what
  changed since an earlier check of the same assays (``--previous``).
* :mod:`.outputs`: writes a result folder as one transaction; :func:`run_check` = check + write.
* :mod:`.cli`: the ``oligolab check`` command.

The work streams: genomes are read, cut into chunks, checked and stored chunk by chunk; only counts stay in memory,
so a million genomes need no more memory than ten (per worker).
"""

from __future__ import annotations

from ..knowledge import ASSAY_CALLS, CALLS
from .checker import BatchResult, Checker
from .genomes import genome_batches
from .offtarget import exclusivity
from .options import CheckInputs, CheckOptions
from .outputs import run_check, write_outputs
from .pipeline import CheckResult, check

__all__ = [
    "ASSAY_CALLS",
    "CALLS",
    "BatchResult",
    "CheckInputs",
    "CheckOptions",
    "CheckResult",
    "Checker",
    "check",
    "exclusivity",
    "genome_batches",
    "run_check",
    "write_outputs",
]
