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


@dataclass
class CheckOptions:
    max_mismatches: int = 3  #: differences per site (mismatches + gap nt); at most engine.MAX_MISMATCHES
    max_gaps: int = 2  #: gap nucleotides per site; at most engine.MAX_GAPS
    rules_path: str | None = None
    enzymes_dir: str | None = None
    batch_nt: int = 4_000_000
    threads: int | None = None
    lineage_from_id: bool | None = None  #: None = automatic (ids that look like Pango lineages)
    max_groups: int = 30
    shards: int = 1  #: genome shards checked in parallel processes (Dask)
    device: str = "cpu"  #: 'cuda' runs the engine's filter on a GPU (same sites)
    dask_scheduler: str | None = None  #: address of a Dask cluster to run the shards on
