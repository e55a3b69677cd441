"""The approximate-match engine: every binding site of many oligos in many genomes, both strands, with up to
``k`` differences (mismatches plus gap nucleotides), at most ``g`` of them gap nucleotides (insertions or
deletions in the genome relative to the oligo).

How it is fast on real collections
----------------------------------
Genome collections are highly redundant (3,585 SARS-CoV-2 lineage genomes, 107 million positions, hold only
about 280,000 distinct 40-mers). The engine keys every genome position by the window of ``W`` bases that
starts there (``W`` = longest pattern + ``g``): a site starting at a position depends only on that window.
Windows are looked up in a hash table; only windows never seen before are searched, and their sites are
cached. The search itself runs Myers' bit-parallel edit-distance algorithm over the stretches of new windows
(a complete filter: an alignment with ``m`` mismatches and ``d`` gap nucleotides has edit distance at most
``m + d <= k``), and every candidate start is verified with a banded dynamic programme that enforces the two
budgets separately and records mismatch, unknown-base and gap positions.

Conventions
-----------
* Genome codes: 0..3 = A, C, G, T; 4 = unknown (N or another ambiguity code): never a match, counted as an
  *unknown* position of the site (and against the mismatch budget, as bowtie does); 5 = separator.
* Patterns are IUPAC masks. Positions flagged as *context* (for example a Cas12a PAM written as ``NNNN``
  before the spacer) match anything but the separator, cost nothing, and their genome bases are reported.
* Each oligo is searched as itself (strand ``+``: the genome's top strand reads like the oligo) and as its
  reverse complement (strand ``-``). Masks are reported in pattern orientation; :mod:`oligolab.check`
  turns them into positions from the oligo's 3' end.
* Alignment cost: mismatches + 2 x gap nucleotides (a bulge costs more than a mismatch); ties prefer fewer
  gaps, then the smaller genome span. Terminal gaps are not allowed: both ends of the oligo pair with bases.
* Budgets: mismatches (unknowns included) + gap nucleotides <= ``k``, gap nucleotides <= ``g``. Counting gaps
  against the same budget keeps short oligos from "binding" anywhere with a few mismatches plus a bulge.
* With ``g = 0`` the hit set is the set of all ungapped alignments with <= k mismatches, the same as
  ``bowtie -v k -a`` (tested). With gaps, every ungapped site is kept and a gapped site is kept only where it
  does not overlap an ungapped site or a cheaper gapped site of the same oligo and strand.

Modules
-------
* :mod:`.patterns`: :class:`PatternSet` (oligos compiled to IUPAC masks and bit-parallel match masks) and the
  engine's limits (:data:`MAX_MISMATCHES`, :data:`MAX_GAPS`, :data:`MAX_PATTERN`); every command takes its
  limits from here.
* :mod:`.batch`: what goes in and comes out: :func:`pack_batch`, :class:`Hits`, :class:`SiteTable`.
* :mod:`.kernels`: the numba kernels shared by the CPU and CUDA paths (Myers filter, banded verification).
* :mod:`.cache`: the window cache and :class:`Engine` (the streaming search); :func:`search` for one batch.
* :mod:`.seed`: :class:`SeedEngine`, a seed index for large non-redundant texts (transcriptomes).
* :mod:`.cuda`: the optional GPU filter (``Engine(..., device="cuda")``).
"""

from __future__ import annotations

from .batch import Hits, SiteTable, pack_batch
from .cache import Engine, search
from .patterns import MAX_GAPS, MAX_MISMATCHES, MAX_PATTERN, PatternSet
from .seed import SeedEngine

__all__ = [
    "MAX_GAPS",
    "MAX_MISMATCHES",
    "MAX_PATTERN",
    "Engine",
    "Hits",
    "PatternSet",
    "SeedEngine",
    "SiteTable",
    "pack_batch",
    "search",
]
