"""Shared fixtures: paths to the bundled real data and small cached subsets of it."""

from __future__ import annotations

import os
import re
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
# `make test-fast`: a few examples each, enough to run every reader's property once in the edit loop
settings.register_profile("fast", max_examples=10, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# Markers (registered in pyproject.toml) that `make test-fast` leaves out; the full `make test` runs everything.
# Browser and database tests are marked here by where they are, so a new test of that kind is marked too:
BROWSER_FILES = {"test_day_browser.py", "test_serve_browser.py"}        # a real Chromium through Selenium
DB_FAULT_FILES = {"test_serve_faults.py"}                                # database outages and restarts
# End-to-end files (real collections, whole designs, the service with its analyses, commands killed and rerun):
# `slow`, each test of them. A long test in another file carries @pytest.mark.slow itself or is named here.
SLOW_FILES = {"test_bowtie_parity.py", "test_check.py", "test_design_pipeline.py", "test_design_rescue.py",
              "test_sirna.py", "test_lab_integrity.py", "test_serve.py", "test_serve_accounts.py",
              "test_serve_release.py", "test_serve_security.py", "test_serve_tamper.py", "test_serve_hardening.py",
              "test_day_service.py", "test_day_release.py", "test_day_backup.py", "test_day_pages_ru.py",
              "test_day_i18n.py"}
SLOW_TESTS: set[str] = set()          # "file.py::test_name" of long tests in otherwise quick files


# `make fuzz` (HYPOTHESIS_PROFILE=fuzz): one line per reader test at the end, examples run, seconds, examples per
# second and the exception when one other than InputError escaped (the test then fails: the figure must be 0)
_FUZZ: dict[str, dict] = {}


def pytest_runtest_logreport(report):
    if report.when == "call" and "fuzz" in report.keywords:
        crash = getattr(getattr(report, "longrepr", None), "reprcrash", None)
        _FUZZ[report.nodeid] = {"seconds": report.duration,
                                "error": crash.message.splitlines()[0] if report.failed and crash else ""}


def pytest_runtest_teardown(item):
    if item.nodeid in _FUZZ:  # the hypothesis plugin's statistics of the test: "N passing, M failing, K invalid"
        stats = getattr(item, "hypothesis_statistics", "")
        _FUZZ[item.nodeid]["examples"] = sum(int(n) for n in re.findall(r"(\d+) (?:passing|failing)", stats))


def pytest_terminal_summary(terminalreporter):
    if not _FUZZ or settings.default.max_examples < 1000:   # only the long runs (`make fuzz`) print the table
        return
    w = terminalreporter.write_line
    w(f"fuzzing: {settings.default.max_examples:,} examples at most per test; load average "
      f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    w(f"{'test':<80} {'examples':>9} {'seconds':>8} {'per s':>7}  exception other than InputError")
    total = {"examples": 0, "seconds": 0.0}
    for nodeid, r in sorted(_FUZZ.items()):
        n = r.get("examples", 0)
        total["examples"] += n
        total["seconds"] += r["seconds"]
        w(f"{nodeid:<80} {n:>9,} {r['seconds']:>8.1f} {n / max(r['seconds'], 1e-9):>7.0f}  {r['error'] or '-'}")
    errors = sum(1 for r in _FUZZ.values() if r["error"])
    w(f"{len(_FUZZ)} reader tests, {total['examples']:,} examples in {total['seconds']:.0f} s "
      f"({total['examples'] / max(total['seconds'], 1e-9):.0f}/s); exceptions other than InputError: {errors}")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.name in BROWSER_FILES:
            item.add_marker(pytest.mark.browser)
        if item.path.name in DB_FAULT_FILES or "postgres" in item.nodeid.lower():
            item.add_marker(pytest.mark.db)
        if item.path.name in SLOW_FILES or f"{item.path.name}::{item.originalname}" in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)

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
