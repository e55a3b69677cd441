"""`oligolab design`: CRISPR diagnostic assays (guides of any enzyme family in the enzyme files, with RPA, RT-LAMP
or PCR primers) that detect every genome of a collection, keep detecting variants the collection does not hold,
and nothing in the off-target collections, computed with the same engine and site-call rule as `oligolab check`;
and the rescue of an assay in use whose oligos variants escape.

Library entry points return results; :mod:`.cli` writes them (:mod:`.outputs`). :func:`design` returns a
:class:`DesignResult`; :func:`rescue` a :class:`~.rescue.RescueResult`. One module per concept:

* ``collection``: genomes (and near neighbours) projected onto the reference, one byte per genome and column;
* ``conservation``: per-column rates of unseen variation, survival of oligos and assays;
* ``candidates``: every guide with a valid PAM/PFS and the genomes it detects (the check's site-call rule);
* ``selection``: guide sets per window (coverage, then redundancy), ranked;
* ``primers`` with ``rpa``, ``lamp`` and ``pcr``: primers (degenerate where the collection varies) per chemistry;
* ``specificity``: off-target screen by the check; ``evaluate``: coverage by the check over every genome;
* ``scoring``: guide-RNA folding and activity; ``model``: designed oligos and assays;
* ``pipeline``: the steps of a design; ``rescue``: redesign of escaping oligos of an assay in use;
* ``order``: the kit order sheet; ``outputs`` and ``report``: the files; ``cli``: the command.
"""

from __future__ import annotations

from .pipeline import CHEMISTRIES, DesignInputs, DesignOptions, DesignResult, design
from .rescue import RescueResult, rescue

__all__ = ["CHEMISTRIES", "DesignInputs", "DesignOptions", "DesignResult", "RescueResult", "design", "rescue"]
