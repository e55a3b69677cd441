"""`oligolab check`: does an assay still detect what it must (inclusivity, per genome, lineage and month),
which oligo is losing binding and why (mismatch positions from the 3' end, seed, PAM, Tm drop, the mutations
behind it), and what else it could detect (exclusivity against off-target collections).

Data flows one way, readers -> engine -> calls -> aggregates -> tables and report:

* :mod:`.options`: :class:`CheckInputs` (the files) and :class:`CheckOptions` (limits, rules, parallelism).
* :mod:`.genomes`: genome FASTA records packed into engine batches; a collection split into shards.
* :mod:`.oligos`: the sequences searched (tails stripped, LAMP FIP/BIP halves, guides with their PAM/PFS).
* :mod:`.sites`: facts of each distinct site the engine found and its call by the shared site-call rule
  (:mod:`oligolab.sitecall`, the same rule `design` uses).
* :mod:`.mutations`: the mutations under a weakened site or behind a lost one, named against the reference.
* :mod:`.assaycalls`: assay calls from oligo calls (roles, amplicon geometry, T7 transcript strand).
* :mod:`.checker`: :class:`Checker`, the per-batch work (search, best site near the expected place, calls).
* :mod:`.aggregates`: counts kept in memory while per-genome rows stream to disk (:mod:`.rows`).
* :mod:`.offtarget`: exclusivity (sites and possible amplicons in off-target collections).
* :mod:`.tables`: the summary tables and ``summary.json``; :mod:`.report`: the HTML report.
* :mod:`.pipeline`: :func:`check`, a whole check in one process or in shards (Dask), returning the result.
* :mod:`.outputs`: writes a result folder as one transaction; :func:`run_check` = check + write.
* :mod:`.cli`: the ``oligolab check`` command.

The work streams: genomes are read, searched by the engine and called in batches; per-genome rows go to disk as
they are made and only counts stay in memory, so a million genomes need no more memory than ten.
"""

from __future__ import annotations

from ..knowledge import ASSAY_CALLS, CALLS
from .checker import BatchResult, Checker
from .genomes import genome_batches
from .offtarget import exclusivity
from .options import CheckInputs, CheckOptions
from .outputs import run_check, write_outputs
from .pipeline import CheckResult, check

__all__ = ["ASSAY_CALLS", "CALLS", "BatchResult", "CheckInputs", "CheckOptions", "CheckResult", "Checker",
           "check", "exclusivity", "genome_batches", "run_check", "write_outputs"]
