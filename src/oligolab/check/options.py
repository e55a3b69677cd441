"""What a check is asked to do: its inputs (files) and its options (limits, rules, parallelism)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

ON_LOCUS_NT = 3000  #: a site within this distance of the reference site counts as the expected site


@dataclass
class CheckInputs:
    assays: list[str | Path]
    genomes: list[str | Path]
    metadata: str | Path | None = None
    reference: str | Path | None = None
    annotation: str | Path | None = None
    alias_key: str | Path | None = None
    off_targets: list[str | Path] = field(default_factory=list)
    previous: str | Path | None = None  #: the output folder of an earlier check, to report what changed since


@dataclass
class CheckOptions:
    max_mismatches: int = 3  #: differences per site the search finds anywhere; at most engine.MAX_MISMATCHES
    max_gaps: int = 2  #: gap nucleotides per site; at most engine.MAX_GAPS
    rules_path: str | None = None
    enzymes_dir: str | None = None
    batch_nt: int = 4_000_000  #: nucleotides per chunk (the unit of work and of stored results)
    threads: int | None = None  #: engine threads per worker (default: all cores with one worker, else 1)
    workers: int | None = None  #: local worker processes (None: here up to parallel.INLINE_NT nt, then every core)
    cluster: str | None = None  #: a Dask cluster: 'local:N' or a scheduler address such as tcp://host:8786
    lineage_from_id: bool | None = None  #: None = automatic (ids that look like Pango lineages)
    max_groups: int = 30
    device: str = "cpu"  #: 'cuda' runs the engine's filter on a GPU (same sites)
