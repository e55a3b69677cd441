"""Shared fixtures: paths to the bundled real data and small cached subsets of it."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# Property-based tests of the readers: a few hundred examples each in CI ("ci"), many more under `make fuzz`
# ("fuzz", FUZZ_EXAMPLES per test). Mark such tests `@pytest.mark.fuzz`; `make fuzz` runs only those.
settings.register_profile("ci", max_examples=200, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.register_profile("fuzz", max_examples=int(os.environ.get("FUZZ_EXAMPLES", "20000")), deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
SARS = DATA / "sars-cov-2"
PANGO = SARS / "pango-consensus-genomes.fasta.zst"
GENBANK = SARS / "genbank-2020-genomes.fasta.xz"
GENBANK_META = SARS / "genbank-2020-metadata.tsv"
REFERENCE = SARS / "NC_045512.2.fasta"
ANNOTATION = SARS / "reference-annotation.gb"
ALIAS_KEY = SARS / "pango-alias-key.json"
DIAG_ASSAYS = SARS / "assays" / "diagnostic-rt-pcr-assays.csv"
ARTIC = SARS / "assays" / "artic-v5.3.2.primer.bed"
NEIGHBOURS = DATA / "coronavirus-neighbours" / "human-coronavirus-references.fasta"


@lru_cache(maxsize=4)
def pango_records(n: int | None = None, names: tuple[str, ...] | None = None):
    """The first ``n`` Pango consensus genomes (or those named), gaps removed."""
    from oligolab.sequences import read_fasta

    out = []
    for rec in read_fasta(PANGO):
        if names is None or rec.id in names:
            out.append(rec)
        if n is not None and len(out) >= n:
            break
    return out


@pytest.fixture(scope="session")
def reference():
    from oligolab.sequences import read_fasta

    return next(iter(read_fasta(REFERENCE)))
