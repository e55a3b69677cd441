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
# Long tests in otherwise quick files (3 s or more of wall time each in a run of the rest, measured with the 2 cores
# shared at load 16-20; a parametrized test as a whole), and the module fixtures that make a file's tests long:
SLOW_TESTS: dict[str, set[str]] = {
    "test_bad_input.py": {"test_a_compression_suffix_on_a_plain_genome_file_is_said_once", "test_fuzz_read_annotation",
                          "test_metadata_ids_missing_from_fasta_is_a_warning",
                          "test_zstd_cut_in_half_is_refused_naming_the_byte"},
    "test_day_qc_trend.py": {"test_control_points_from_a_real_analysed_run"},
    "test_day_worklist.py": {"test_a_run_laid_out_by_the_worklist_is_analysed_per_specimen"},
    "test_design_bad_input.py": {"test_no_candidate_in_a_tiny_region"},
    "test_design_units.py": {"test_guide_prescores_equal_check_calls", "test_primer_prescores_equal_check_calls",
                             "test_projection_reproduces_the_pango_alignment"},
    "test_engine.py": {"test_cuda_path_gives_the_same_sites", "test_gapped_sites_match_an_exhaustive_oracle",
                       "test_seed_index_engine_finds_the_same_sites",
                       "test_ungapped_equals_brute_force_on_real_genomes"},
    "test_lab_audit.py": {"test_overrides_flow_into_results_and_signature"},
    "test_lab_calling.py": {"test_shipped_demo_plate_is_invalid_because_its_ntc_amplifies"},
    "test_lab_cli.py": {"test_analyze_review_override_sign_audit", "test_multi_run_file_writes_one_folder_per_run",
                        "test_sign_refusal_names_the_real_reason"},
    "test_lab_curves.py": {"test_flat_and_drifting_real_baselines_are_not_called_amplified",
                           "test_noise_rises_that_fool_the_linregpcr_criteria_are_rejected"},
    "test_lab_determinism.py": {"test_files_follow_the_umask", "test_same_files_under_different_hash_seeds"},
    "test_lab_exports.py": {"test_lab_export_fhir_and_csv"},
    "test_lab_fuzz.py": {"test_fuzz_each_format", "test_fuzz_plate_maps"},
    "test_lab_instruments.py": {"test_rdes_example_and_round_trip"},
    "test_lab_interpret.py": {"test_amplifying_ntc_invalidates_the_run"},
    "test_lab_rdml.py": {"test_every_shipped_run_end_to_end"},
    "test_lab_realworld.py": {"test_every_run_file_is_analysed_or_refused_with_the_fix",
                              "test_no_clearly_amplified_curve_is_called_not_amplified",
                              "test_wells_the_instrument_calls_undetermined_are_rarely_called_amplified"},
    "test_models_cas12a.py": {"test_held_out_spearman_reproduces_recorded_figure",
                              "test_inference_does_not_import_torch"},
    "test_models_sirna.py": {"test_shipped_model_reproduces_recorded_held_out",
                             "test_transcript_fast_path_matches_per_context"},
    "test_output_folder.py": {"test_a_command_on_a_full_disk_says_so_in_one_line_and_leaves_nothing",
                              "test_kill_at_any_moment_leaves_previous_or_new_result"},
    "test_readers_fuzz.py": {"test_fuzz_read_genbank_in_every_compression"},
    "test_sirna_inputs.py": {"test_outputs_do_not_depend_on_the_hash_seed"},
    "test_sirna_score.py": {"test_givosiran_is_scored_as_the_drug", "test_perfect_matches_score_as_in_the_design"},
    "test_sirna_transcriptome.py": {"test_ensembl_chry_annotation_as_gtf_and_gff3",
                                    "test_index_records_sources_and_is_reused",
                                    "test_many_7mer_m8_utr_sites_move_a_candidate_down",
                                    "test_offtargets_in_a_real_transcriptome_carry_regions",
                                    "test_several_targets_in_one_run"},
}
SLOW_FIXTURES: dict[str, set[str]] = {"test_lab_limits.py": {"refused"}, "test_lab_report.py": {"quantstudio"},
                                      "test_sirna_score.py": {"scored"}}


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
        name = item.path.name
        if (name in SLOW_FILES or item.originalname in SLOW_TESTS.get(name, ())
                or SLOW_FIXTURES.get(name, set()) & set(getattr(item, "fixturenames", ()))):
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
