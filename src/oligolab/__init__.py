"""oligolab: check assays against genome collections, design CRISPR diagnostics and siRNAs, run the qPCR lab.

One package per capability over a small shared core (docs/developing.md); data flows one way, readers -> engine
-> calls -> aggregates -> reports, and each capability's ``cli.py`` writes what its library returns.

Shared core: :mod:`.cli` (the ``oligolab`` command; each capability registers its own), :mod:`.errors`
(``InputError``: file, line/record, problem, fix), :mod:`.sequences` (sequence and table readers, every
compression), :mod:`.assays` (assay tables and primer schemes), :mod:`.knowledge` (enzymes, tails and call rules
as data, ``knowledge/``), :mod:`.thermo` (duplex thermodynamics, RNA folding), :mod:`.sitecall` (the one
site-call rule), :mod:`.lineages` (Pango ancestry and grouping), :mod:`.annotation` (genes and amino-acid
changes), :mod:`.reports` (output folders as transactions, tables, HTML pages); ``engine/`` (the approximate-match
engine) and ``models/`` (trained models).

Capabilities: ``check/`` (``oligolab check``), ``design/`` (``oligolab design``), ``sirna/`` (``oligolab
sirna``), ``lab/`` (``oligolab lab``), ``service/`` (``oligolab serve``).
"""

__version__ = "0.1.0"
